"""The face box: where the face is in the portrait, detected or given by hand."""

import math
from dataclasses import dataclass

from engine.errors import UsageError


@dataclass(frozen=True)
class FaceBox:
    """An axis-aligned face rectangle in portrait pixels.

    ``x``, ``y`` are the left and top edges, ``width``, ``height`` the extent
    (pixel (x, y) covers [x, x + 1) x [y, y + 1); x grows right, y grows down).
    ``score`` is the detector's confidence (dlib's SVM margin, > 0 for a
    detection, typically 0..3), None when the box was given by hand.
    """

    x: float
    y: float
    width: float
    height: float
    score: float | None = None

    def __post_init__(self) -> None:
        if not (self.width > 0 and self.height > 0):
            raise UsageError(f"face box width and height must be > 0, got {self.width}x{self.height}")


def parse_face_box(text: str) -> FaceBox:
    """Parse ``"x,y,w,h"`` (left, top, width, height in portrait pixels) into a FaceBox.

    The pixels are those of the portrait as loaded (``load_portrait`` shrinks
    images whose longest side exceeds its ``max_side_px``). Numbers may be
    fractional; x and y must be >= 0, w and h > 0. Raises ``ValueError`` with a
    message meant for the user.
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 4:
        raise UsageError(
            f"face box {text!r}: expected four comma-separated numbers x,y,w,h "
            f"(left, top, width, height in pixels), e.g. 120,80,200,200"
        )
    try:
        x, y, width, height = (float(part) for part in parts)
    except ValueError:
        raise UsageError(f"face box {text!r}: x,y,w,h must be numbers, e.g. 120,80,200,200") from None
    if not all(math.isfinite(value) for value in (x, y, width, height)):
        raise UsageError(f"face box {text!r}: x,y,w,h must be finite numbers")
    if x < 0 or y < 0:
        raise UsageError(f"face box {text!r}: x and y (left and top) must be >= 0")
    if width <= 0 or height <= 0:
        raise UsageError(f"face box {text!r}: w and h (width and height) must be > 0")
    return FaceBox(x, y, width, height)
