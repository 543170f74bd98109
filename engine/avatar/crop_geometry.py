"""From a face box to the square region of the portrait that the generator sees.

Alignment: none beyond a square box, like the reference. GANimation's crops
are a tight face box resized to 128x128, with no rotation or landmark warping;
we also take an axis-aligned square from the detector's box, with no rotation,
so a tilted head stays tilted (the generator was trained on such crops). We
differ in one way, on purpose: the square is larger than the face box
(``CROP_MARGIN``), because the crop is pasted back into the portrait through a
feathered edge, and that edge must fall on hair, neck and background rather
than on the face; the generator sees the face at 1/1.6 of the crop side
instead of filling it (``margin=1.0`` gives the reference's tight crop).
"""

from engine.avatar.face_box import FaceBox
from kernels.geometry import CropBox

CROP_MARGIN = 1.6
"""Crop side / the face box's longer side. With ``CROP_SHIFT_DOWN`` and the
default feather (flat from 13 % of the side inwards), the part pasted
unblended holds the whole face box plus 0.15 of its height below it (the chin,
which dlib's box cuts, and some of an open jaw); the ramp covers hair, ears
and neck."""

CROP_SHIFT_DOWN = 0.06
"""Crop centre below the face box centre, as a fraction of the box height.
dlib's box sits high on the face: on the astronaut its top is 4 px above the
brows and its bottom 8 px above the chin (68-point landmarks, 88 px box), and
the jaw opens downwards, so the crop moves down (not up) a little."""


def crop_box_for_face(
    face: FaceBox,
    height: int,
    width: int,
    *,
    margin: float = CROP_MARGIN,
    shift_down: float = CROP_SHIFT_DOWN,
) -> CropBox:
    """The square crop around ``face`` in a ``height`` x ``width`` portrait.

    Side ``margin * max(face.width, face.height)``, centred at the face box
    centre moved down by ``shift_down * face.height``, then kept inside the
    portrait: shrunk to the portrait's shorter side if larger, and moved (not
    shrunk) away from an edge it would cross, so the face is off-centre rather
    than padded. Coordinates are rounded to whole pixels, so the pasted
    rectangle is the box itself.
    """
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    size = min(round(margin * max(face.width, face.height)), height, width)
    size = max(size, 1)
    centre_x = face.x + face.width / 2
    centre_y = face.y + face.height / 2 + shift_down * face.height
    x0 = min(max(round(centre_x - size / 2), 0), width - size)
    y0 = min(max(round(centre_y - size / 2), 0), height - size)
    return CropBox(float(x0), float(y0), float(size))
