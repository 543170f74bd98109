"""What a face renderer hands to the compositor: layers at crop resolution, and the head's motion.

A renderer (the GANimation generator, the instant warp renderer) draws at a
small square resolution S over the crop box. Composing at the portrait's own
resolution (``kernels.reference.compose``) keeps every pixel the renderer
leaves alone as sharp as the photo: the layers say *what changes*, the photo
supplies everything else.
"""

from dataclasses import dataclass

import numpy as np

from kernels.geometry import CropBox


@dataclass(frozen=True)
class FaceLayers:
    """One frame of a face at crop resolution S, over the avatar's crop box.

    Attributes:
        color: float32 (3, S, S), RGB in [-1, 1]: the colour C drawn where the
            photo is not kept (GANimation's colour map, the warp renderer's
            mouth interior and eyelids).
        mask: float32 (1, S, S) in [0, 1]: the attention A, how much of the
            photo is kept (1: the photo, 0: ``color``), as GANimation defines it.
        shift: float32 (2, S, S) or None: where each crop pixel takes the photo
            from, ``(dx, dy)`` in *portrait* pixels (the warp renderer's
            landmark-driven motion); None for no motion (the generator's case).
    """

    color: np.ndarray
    mask: np.ndarray
    shift: np.ndarray | None = None

    @property
    def size(self) -> int:
        """S, the side of the layers in pixels."""
        return int(self.color.shape[-1])

    def __post_init__(self) -> None:
        size = self.color.shape[-1]
        shapes_ok = self.color.shape == (3, size, size) and self.mask.shape == (1, size, size)
        if not shapes_ok or (self.shift is not None and self.shift.shape != (2, size, size)):
            shift = None if self.shift is None else self.shift.shape
            raise ValueError(
                f"expected color (3, S, S), mask (1, S, S) and shift (2, S, S) or None; "
                f"got {self.color.shape}, {self.mask.shape}, {shift}"
            )


@dataclass(frozen=True)
class HeadMotion:
    """A small rigid motion of the head, blended into a still background.

    Output pixel centre ``p`` shows the (unmoved) composed picture at
    ``p + m(p) * (matrix @ [p, 1] - p)``: ``matrix`` maps a pixel of the moved
    head back to where it was in the photo, and ``m`` (the ``weight`` map, 1 on
    the head, 0 on the body, the background and at its own border) says how
    much each pixel follows the head. The weight falls off smoothly, so the
    neck and the background around the head stretch a little instead of tearing.

    Attributes:
        matrix: float32 (2, 3), portrait pixels: row 0 gives the source x,
            row 1 the source y, of an output pixel centre (x, y, 1).
        box: the square region ``weight`` covers, portrait pixels.
        weight: float32 (M, M) in [0, 1], exactly 0 on its outermost pixels.
    """

    matrix: np.ndarray
    box: CropBox
    weight: np.ndarray

    def __post_init__(self) -> None:
        size = self.weight.shape[0]
        if self.matrix.shape != (2, 3) or self.weight.shape != (size, size) or size < 2:
            raise ValueError(f"expected matrix (2, 3) and weight (M, M), got {self.matrix.shape}, {self.weight.shape}")
