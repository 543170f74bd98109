"""Geometry shared by the image ops and the avatar: the square crop box."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CropBox:
    """A square region of the portrait that maps onto the model's crop.

    Coordinates are portrait pixels, edge convention: pixel ``(x, y)`` covers
    ``[x, x + 1) x [y, y + 1)`` and its centre is ``(x + 0.5, y + 0.5)``. The box
    covers ``[x0, x0 + size) x [y0, y0 + size)``; it may be fractional and may
    extend past the portrait (the ops clamp samples to the edge).
    """

    x0: float
    y0: float
    size: float

    def __post_init__(self) -> None:
        if not self.size > 0:
            raise ValueError(f"CropBox size must be > 0, got {self.size}")
