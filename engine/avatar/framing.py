"""Framing: which part of the photo the video shows.

``portrait`` shows the whole photo (a head-and-shoulders portrait, the face
small in a call tile). ``head`` and ``head-wide`` show a square or a 16:9
window around the head, the face box about ``FACE_HEIGHT_FRACTION`` of the
frame's height (dlib's box runs from the brows to the chin: with the forehead
the face is about half the frame). The window is cut from the photo at its own
resolution, before anything else is prepared, so every output (WebRTC, mp4,
WebSocket frames) simply gets a smaller picture with the face larger in it;
the server scales it to ``--size`` like any portrait.
"""

from typing import Literal, get_args

import numpy as np

from engine.avatar.face_box import FaceBox

Framing = Literal["portrait", "head", "head-wide"]
FRAMINGS: tuple[str, ...] = get_args(Framing)
FACE_HEIGHT_FRACTION = 0.4
"""The face box's height as a fraction of a head frame's height."""
FACE_CENTRE_HEIGHT = 0.52
"""Where the face box's centre sits in a head frame, from the top, as a fraction of its height."""
ASPECTS: dict[str, float] = {"head": 1.0, "head-wide": 16 / 9}
"""Width / height of each head framing."""


def framing_window(face: FaceBox, height: int, width: int, framing: Framing) -> tuple[int, int, int, int]:
    """The window ``(x0, y0, window width, window height)`` of a ``height`` x ``width`` photo to show.

    Whole pixels, even offsets and sizes, inside the photo. Too large a window for the
    photo is shrunk (aspect kept) rather than padded; it is then moved, not
    shrunk further, away from an edge it would cross, so the face sits off
    centre near a photo's edge.
    """
    if framing == "portrait":
        return 0, 0, width, height
    if framing not in ASPECTS:
        raise ValueError(f"unknown framing {framing!r}; expected one of {', '.join(FRAMINGS)}")
    aspect = ASPECTS[framing]
    window_h = face.height / FACE_HEIGHT_FRACTION
    window_h = min(window_h, height, width / aspect)
    window_w = window_h * aspect
    even_w, even_h = max(2, int(window_w) // 2 * 2), max(2, int(window_h) // 2 * 2)
    centre_x = face.x + face.width / 2
    centre_y = face.y + face.height / 2
    # Even offsets: the crop box (rounded half to even) and the 2x2 chroma blocks fall as in the whole photo.
    x0 = min(max(round((centre_x - even_w / 2) / 2) * 2, 0), (width - even_w) // 2 * 2)
    y0 = min(max(round((centre_y - FACE_CENTRE_HEIGHT * even_h) / 2) * 2, 0), (height - even_h) // 2 * 2)
    return x0, y0, even_w, even_h


def frame_portrait(portrait: np.ndarray, face: FaceBox, framing: Framing) -> tuple[np.ndarray, FaceBox]:
    """The framed picture (a view of ``portrait``, even sizes) and the face box in its pixels.

    portrait: uint8 (H, W, 3), H and W even and >= 2 (``prepare_avatar`` makes them so).
    """
    height, width = portrait.shape[:2]
    x0, y0, window_w, window_h = framing_window(face, height, width, framing)
    moved = FaceBox(face.x - x0, face.y - y0, face.width, face.height, face.score)
    return portrait[y0 : y0 + window_h, x0 : x0 + window_w], moved
