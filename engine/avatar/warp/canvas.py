"""Face layers while they are drawn: where each pixel takes the photo from, and the colour painted over it.

The warp renderer never resamples the photo itself: it says, per crop pixel,
where the photo is to be read (a shift) and what colour covers it, and the
compositor reads the photo at its own full resolution
(``kernels.reference.compose``). A pixel shows::

    (1 - alpha) * photo(position + shift) + alpha * colour

The fills paint over that with two operations: :meth:`Canvas.paint` (colour
over what is there) and :meth:`Canvas.show_photo_in_place` (the photo as
photographed, unmoved: what sits behind the face surface, the teeth and the
eyeballs, stays with the skull while lips and lids slide over it).
"""

from dataclasses import dataclass

import numpy as np

from kernels.layers import FaceLayers

MIN_SHIFT_PX = 0.05
"""Shifts shorter than this (portrait pixels) are dropped from the finished layers."""


@dataclass
class Canvas:
    """Layers of side S in crop pixels.

    Attributes:
        shift: float32 (S, S, 2), ``(dx, dy)`` crop pixels: where each pixel reads the photo.
        colour: float32 (S, S, 3), RGB 0..255, meaningful where ``alpha`` > 0.
        alpha: float32 (S, S) in [0, 1]: the colour's weight over the photo.
    """

    shift: np.ndarray
    colour: np.ndarray
    alpha: np.ndarray

    @classmethod
    def of_shift(cls, shift: np.ndarray) -> "Canvas":
        """A canvas showing the photo through ``shift`` (S, S, 2), no colour yet."""
        size = shift.shape[0]
        return cls(
            np.asarray(shift, dtype=np.float32),
            np.zeros((size, size, 3), np.float32),
            np.zeros((size, size), np.float32),
        )

    def paint(self, rows: slice, cols: slice, colour: np.ndarray, alpha: np.ndarray) -> None:
        """Paint ``colour`` ((3,) or (h, w, 3), 0..255) with coverage ``alpha`` (h, w) over the window."""
        before = self.alpha[rows, cols]
        after = before + alpha * (1.0 - before)
        mixed = self.colour[rows, cols] * (before * (1.0 - alpha))[..., None] + np.multiply(colour, alpha[..., None])
        self.colour[rows, cols] = mixed / np.maximum(after, 1e-12)[..., None]
        self.alpha[rows, cols] = after

    def show_photo_in_place(self, rows: slice, cols: slice, weight: np.ndarray) -> None:
        """Move the window towards the unmoved photo by ``weight`` (h, w) in [0, 1]: 1 shows it as photographed."""
        keep = (1.0 - weight).astype(np.float32)
        self.shift[rows, cols] *= keep[..., None]
        self.alpha[rows, cols] *= keep

    def layers(self, portrait_px_per_crop_px: float) -> FaceLayers:
        """The finished layers: colour in [-1, 1], attention ``1 - alpha``, shift in portrait pixels.

        Shifts shorter than ``MIN_SHIFT_PX`` portrait pixels become 0: they cannot
        be seen, and the compositor does no work for pixels that do not change.
        """
        shift = self.shift.transpose(2, 0, 1) * np.float32(portrait_px_per_crop_px)
        shift[:, np.hypot(shift[0], shift[1]) < MIN_SHIFT_PX] = 0.0
        return FaceLayers(
            color=np.ascontiguousarray(self.colour.transpose(2, 0, 1) / np.float32(127.5) - np.float32(1)),
            mask=np.ascontiguousarray((1.0 - self.alpha)[None], dtype=np.float32),
            shift=np.ascontiguousarray(shift),
        )
