"""Finding the face in a portrait with dlib's HOG frontal face detector."""

from functools import cache

import dlib
import numpy as np

from engine.avatar.errors import NoFaceError
from engine.avatar.face_box import FaceBox

UPSAMPLE_STEPS = (0, 1)
"""Upsampling passes to try, in order, until one finds a face. At 0 dlib finds
faces of about 80 px and larger (times in bench/README.md); one 2x upsampling
finds faces down to about 40 px but costs 4x
and fires more on non-faces (on the astronaut it adds a 0.12-score box on the
suit), so it is only the fallback."""

SCORE_THRESHOLD = 0.0
"""dlib's ``adjust_threshold``: keep detections whose score exceeds this (0 is
the detector's own operating point)."""


@cache
def _detector() -> "dlib.fhog_object_detector":
    """The detector, built on first use (not at import) and shared: it is read-only."""
    return dlib.get_frontal_face_detector()


def detect_face(portrait: np.ndarray) -> FaceBox:
    """Find the main face: the largest detected box (ties: the higher score).

    Args:
        portrait: uint8 (H, W, 3) RGB.

    Returns:
        The face box in portrait pixels, with dlib's score. dlib's box is
        tight: its top is about at the brows and its bottom near the chin
        (on the astronaut: top 4 px above the brows, bottom 8 px above the chin).

    Raises:
        NoFaceError: no face at any of ``UPSAMPLE_STEPS``; the message says how
            to give the box by hand.
    """
    image = np.ascontiguousarray(portrait)
    for upsample in UPSAMPLE_STEPS:
        rectangles, scores, _ = _detector().run(image, upsample, SCORE_THRESHOLD)
        if len(rectangles):
            boxes = [
                FaceBox(
                    float(rect.left()),
                    float(rect.top()),
                    float(rect.width()),
                    float(rect.height()),
                    float(score),
                )
                for rect, score in zip(rectangles, scores, strict=True)
            ]
            return max(boxes, key=lambda box: (box.width * box.height, box.score))
    height, width = portrait.shape[:2]
    raise NoFaceError(
        f"no face found in the portrait ({width}x{height} px). Give the face box by hand "
        f"with --face-box x,y,w,h (left, top, width, height in pixels of this "
        f"{width}x{height} image), e.g. --face-box {width // 4},{height // 4},"
        f"{width // 2},{height // 2}"
    )
