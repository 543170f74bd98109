"""Landmark displacement fields of the 17 action units: the one table, in one place.

Each AU moves some of the 68 landmarks. :data:`AU_TABLE` gives, for every AU,
the displacement of each moved point **at intensity 5** (FACS "E", maximum), as
``(lateral, up)`` in units of the inter-ocular distance (IOD, ~63 mm on an
adult, so 0.1 IOD ~ 6 mm):

* ``lateral`` > 0 moves a point away from the face midline, < 0 towards it;
* ``up`` > 0 moves it towards the forehead, < 0 towards the chin.

Entries are written for the image-left half and the midline only; the other
half is their mirror image (:data:`engine.avatar.face68.MIRROR`), so every AU
is symmetric. The displacement of an AU scales **linearly** with
``intensity / 5``, and the displacements of simultaneous AUs **add**.

One AU is not a fixed shift: AU45 (blink) moves each upper-lid point a
fraction :data:`BLINK_CLOSURE` * ``intensity / 5`` of the way to the lower-lid
point below it, *after* the other AUs have moved both, so a blink closes the
eye whatever its opening in the photo and whatever AU06/AU07 did to the lower
lid. The lids stop just short of touching so that no triangle of the warp
turns inside out.

The AUs are absolute targets: 0 is a relaxed face. The photo's own
expression (:func:`engine.avatar.photo_aus.estimate_photo_aus`) is where the
landmarks start, so the displacement is the table times ``target - photo``, which
may be negative: a smiling photo driven with AU12 = 0 loses its smile, lips
apart in the photo close at AU25 = 0, and the photo's own AUs give the photo back.

Magnitudes follow the FACS manual's appearance changes (Ekman, Friesen &
Hager 2002) scaled to typical maximal excursions: brows rise ~8 mm (0.12 IOD),
lip corners pull ~7 mm up and out in a broad smile, the jaw drops ~2 cm at
the chin for AU26 (a relaxed open jaw; AU27, mouth stretch, is not in the
set), lips part ~7 mm for AU25 alone. They were checked by eye on a contact
sheet of the astronaut portrait.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY, AU_NAMES, N_AUS
from engine.avatar.face68 import (
    IMAGE_LEFT_OR_MIDLINE,
    MIRROR,
    N_LANDMARKS,
    SIDE,
    UPPER_LID_TO_LOWER_LID,
    FaceFrame,
)

BLINK_CLOSURE = 0.95
"""Fraction of the lid gap that AU45=5 closes (the rest is left so triangles keep their orientation)."""


def au_vector(intensities: Mapping[str, float]) -> np.ndarray:
    """(17,) float64 AU vector from ``{"AU12": 5.0, ...}``; AUs not named are 0."""
    vector = np.zeros(N_AUS)
    for name, value in intensities.items():
        if name not in AU_NAMES:
            raise ValueError(f"unknown AU {name!r}; expected one of {', '.join(AU_NAMES)}")
        vector[AU_NAMES.index(name)] = value
    return vector


Shift = tuple[float, float]
"""(lateral, up) displacement in IOD units at intensity 5."""

AU_TABLE: dict[str, dict[int, Shift]] = {
    # Inner brow raiser (frontalis, medial): inner brow ends up, obliquely.
    "AU01": {21: (0.0, 0.12), 20: (0.0, 0.09), 19: (0.0, 0.05), 18: (0.0, 0.02)},
    # Outer brow raiser (frontalis, lateral): outer brow ends up, arching.
    "AU02": {17: (0.01, 0.11), 18: (0.0, 0.11), 19: (0.0, 0.08), 20: (0.0, 0.04), 21: (0.0, 0.01)},
    # Brow lowerer (corrugator, procerus): brows down and drawn together; lids follow a little.
    "AU04": {
        21: (-0.06, -0.08), 20: (-0.04, -0.08), 19: (-0.02, -0.06), 18: (-0.01, -0.04), 17: (0.0, -0.02),
        37: (0.0, -0.01), 38: (0.0, -0.015),
    },
    # Upper lid raiser: the upper lid retracts, more sclera shows above the iris.
    "AU05": {37: (0.0, 0.045), 38: (0.0, 0.045), 36: (0.0, 0.005), 39: (0.0, 0.005)},
    # Cheek raiser (orbicularis oculi, orbital): cheeks lift, lower lid pushed up, crow's feet.
    "AU06": {
        40: (0.0, 0.035), 41: (0.0, 0.035), 36: (0.0, 0.01),
        1: (0.0, 0.03), 2: (0.0, 0.035), 3: (0.0, 0.03), 4: (0.0, 0.015), 48: (0.0, 0.01),
    },
    # Lid tightener (orbicularis oculi, palpebral): lids narrow, mostly the lower lid rises.
    "AU07": {40: (0.0, 0.045), 41: (0.0, 0.045), 37: (0.0, -0.02), 38: (0.0, -0.02), 36: (-0.005, 0.005)},
    # Nose wrinkler: nose wings and upper lip pulled up, inner brows lowered, lower lid pushed up.
    "AU09": {
        31: (0.01, 0.07), 32: (0.0, 0.06), 33: (0.0, 0.05), 30: (0.0, 0.03), 29: (0.0, 0.015),
        21: (-0.02, -0.05), 20: (-0.01, -0.03), 40: (0.0, 0.02), 41: (0.0, 0.02),
        49: (0.0, 0.03), 50: (0.0, 0.04), 51: (0.0, 0.04), 61: (0.0, 0.035), 62: (0.0, 0.035),
    },
    # Upper lip raiser: the upper lip's centre rises (squarish), nose wings lift slightly.
    "AU10": {
        50: (0.0, 0.08), 51: (0.0, 0.08), 49: (0.0, 0.06), 48: (0.0, 0.02),
        61: (0.0, 0.075), 62: (0.0, 0.08), 60: (0.0, 0.02), 31: (0.01, 0.025), 32: (0.0, 0.02),
    },
    # Lip corner puller (zygomaticus major): corners up and out, lips stretched along a curve.
    "AU12": {
        48: (0.09, 0.11), 60: (0.08, 0.10), 49: (0.04, 0.05), 59: (0.04, 0.06), 61: (0.03, 0.04),
        67: (0.03, 0.05), 50: (0.01, 0.02), 58: (0.01, 0.03), 57: (0.0, 0.015), 66: (0.0, 0.015),
        3: (0.01, 0.02), 4: (0.01, 0.02),
    },
    # Dimpler (buccinator): corners tightened and pulled back into the cheek, a little sideways;
    # the lips thin near the corners.
    "AU14": {
        48: (0.035, 0.005), 60: (0.03, 0.0), 49: (0.015, -0.01), 59: (0.015, 0.01),
        61: (0.01, 0.0), 67: (0.01, 0.0),
    },
    # Lip corner depressor (depressor anguli oris): corners pulled down, the lips bow downwards.
    "AU15": {
        48: (0.01, -0.09), 60: (0.01, -0.08), 49: (0.0, -0.03), 59: (0.0, -0.05), 61: (0.0, -0.02),
        67: (0.0, -0.03), 58: (0.0, -0.015), 4: (0.0, -0.01), 5: (0.0, -0.01),
    },
    # Chin raiser (mentalis): chin boss and lower lip pushed up, the mouth bows down at the corners.
    "AU17": {
        8: (0.0, 0.05), 7: (0.0, 0.045), 6: (0.0, 0.03), 5: (0.0, 0.01),
        57: (0.0, 0.07), 58: (0.0, 0.06), 59: (0.0, 0.035), 66: (0.0, 0.05), 67: (0.0, 0.04),
        48: (0.0, -0.015), 60: (0.0, -0.01), 51: (0.0, 0.01), 62: (0.0, 0.01),
    },
    # Lip stretcher (risorius): corners pulled sideways, lips flattened and elongated.
    "AU20": {
        48: (0.10, -0.015), 60: (0.09, -0.01), 49: (0.05, -0.005), 59: (0.05, 0.0), 61: (0.04, 0.0),
        67: (0.04, 0.0), 50: (0.015, -0.005), 58: (0.015, 0.005), 51: (0.0, -0.01), 57: (0.0, 0.01),
        4: (0.01, 0.0), 5: (0.01, 0.0),
    },
    # Lip tightener (orbicularis oris): lips narrowed, their red parts thinned and rolled in.
    "AU23": {
        48: (-0.05, 0.0), 60: (-0.04, 0.0), 49: (-0.03, -0.015), 59: (-0.03, 0.015),
        61: (-0.02, 0.0), 67: (-0.02, 0.0), 50: (-0.01, -0.02), 58: (-0.01, 0.02),
        51: (0.0, -0.025), 57: (0.0, 0.025),
    },
    # Lips part: the inner lips separate, mostly the lower lip going down; the jaw stays.
    "AU25": {
        61: (0.0, 0.02), 62: (0.0, 0.025), 49: (0.0, 0.01), 50: (0.0, 0.015), 51: (0.0, 0.015),
        67: (0.0, -0.08), 66: (0.0, -0.09), 59: (0.0, -0.055), 58: (0.0, -0.065), 57: (0.0, -0.065),
        60: (0.01, -0.01),
    },
    # Jaw drop: mandible lowered; chin, lower lip, lower teeth and lower jaw contour go down,
    # the upper lip stays with the skull, the lower face lengthens and narrows slightly.
    "AU26": {
        8: (0.0, -0.32), 7: (-0.01, -0.30), 6: (-0.02, -0.26), 5: (-0.02, -0.19), 4: (-0.015, -0.11),
        3: (-0.01, -0.05), 2: (0.0, -0.015),
        57: (0.0, -0.28), 58: (-0.005, -0.27), 59: (-0.01, -0.2), 66: (0.0, -0.27), 67: (-0.01, -0.25),
        48: (-0.015, -0.09), 60: (-0.015, -0.09), 62: (0.0, 0.005),
    },
    # Blink: geometric, see the module docstring and BLINK_CLOSURE.
    "AU45": {},
}  # fmt: skip
"""Displacement at intensity 5 of each moved landmark, (lateral, up) in IOD, image-left half + midline."""


def _basis() -> np.ndarray:
    """AU_TABLE as a (17, 68, 2) array of (lateral, up) IOD shifts, mirrored to both halves."""
    basis = np.zeros((N_AUS, N_LANDMARKS, 2))
    for k, name in enumerate(AU_NAMES):
        for index, shift in AU_TABLE[name].items():
            if index not in IMAGE_LEFT_OR_MIDLINE:
                raise ValueError(f"{name}: point {index} is on the image-right half; write its mirror")
            if SIDE[index] == 0 and shift[0] != 0:
                raise ValueError(f"{name}: midline point {index} cannot move sideways symmetrically")
            basis[k, index] = shift
            basis[k, MIRROR[index]] = shift
    return basis


BASIS = _basis()
"""(17, 68, 2): AU_TABLE as an array, (lateral, up) in IOD at intensity 5."""

_AU45 = AU_NAMES.index("AU45")


def au_displacements(landmarks: np.ndarray, aus: np.ndarray, photo_aus: np.ndarray | None = None) -> np.ndarray:
    """Pixel displacement of each landmark for an AU vector.

    landmarks: (68, 2) ``(x, y)`` pixels of the face as photographed.
    aus: (17,) target intensities 0..5 in :data:`AU_NAMES` order (clipped to that range).
    photo_aus: (17,) the photo's own intensities, 0..5 (default: all 0, a
        relaxed photo); the blink ignores it (the photo's eyes are open).

    Returns (68, 2) float64 ``(dx, dy)`` in pixels: the sum over AUs of
    ``(target - photo) / 5`` times the table entry, converted through the face
    frame (IOD scale, head roll), plus the blink closure.
    """
    aus = np.clip(np.asarray(aus, dtype=np.float64), 0.0, AU_MAX_INTENSITY)
    if aus.shape != (N_AUS,):
        raise ValueError(f"expected {N_AUS} AU intensities, got shape {aus.shape}")
    start = (
        np.zeros(N_AUS) if photo_aus is None else np.clip(np.asarray(photo_aus, dtype=np.float64), 0, AU_MAX_INTENSITY)
    )
    landmarks = np.asarray(landmarks, dtype=np.float64)
    frame = FaceFrame.from_landmarks(landmarks)
    weights = (aus - start) / AU_MAX_INTENSITY
    weights[_AU45] = 0.0  # the blink is not a shift, see below
    lateral_up = np.tensordot(weights, BASIS, axes=1)  # (68, 2)
    lateral_up[:, 0] *= SIDE  # "away from the midline" -> along the frame's lateral axis
    shift = frame.to_pixels(lateral_up)
    moved = landmarks + shift
    upper, lower = UPPER_LID_TO_LOWER_LID.T
    shift[upper] += aus[_AU45] / AU_MAX_INTENSITY * BLINK_CLOSURE * (moved[lower] - moved[upper])
    return shift
