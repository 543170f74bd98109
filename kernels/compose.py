"""The fused post-processing step, on the CPU: face layers in, a finished frame in RGB and I420 out.

One step per frame and session: compose the face layers into the portrait at
its full resolution (``reference.compose``: head motion, upsampled attention,
colour and shift, feathered edge) and bring the frame's I420 up to date
(``reference.update_i420``: only the 2x2 blocks around the changed rect). The
numpy functions of ``reference`` are the implementation here; the CUDA twin is
``kernels.launch.ImageKernels.postprocess``, which computes the same bytes for a
batch of sessions on the GPU (``tests/kernels`` hold the two equal).
"""

from dataclasses import dataclass
from functools import cache

import numpy as np

from kernels.geometry import CropBox
from kernels.layers import FaceLayers, HeadMotion
from kernels.reference import compose, compose_rect, feather_mask, update_i420

I420Planes = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Y (H, W), U (H/2, W/2), V (H/2, W/2), uint8, BT.601 limited range (``reference.rgb_to_i420``)."""


@dataclass(frozen=True)
class ComposedFrame:
    """A finished picture: ``rgb`` uint8 (H, W, 3) and the same picture as ``i420`` planes."""

    rgb: np.ndarray
    i420: I420Planes


@cache
def layer_feather(size: int) -> np.ndarray:
    """The feather for layers of side ``size``: ``feather_mask(size)``, computed once, read-only."""
    feather = feather_mask(size)
    feather.setflags(write=False)
    return feather


def compose_frame(
    portrait: np.ndarray,
    portrait_i420: I420Planes,
    box: CropBox,
    layers: FaceLayers,
    motion: HeadMotion | None = None,
) -> ComposedFrame:
    """Compose one frame and its I420, with the feather of the layers' size.

    Args:
        portrait: uint8 (H, W, 3), H and W even.
        portrait_i420: ``rgb_to_i420(portrait)``, computed once per portrait.
        box: the crop box the layers cover.
        layers: the face at crop resolution.
        motion: the head's motion, or None.
    """
    feather = layer_feather(layers.size)
    rgb = compose(portrait, box, layers, feather, motion)
    height, width = portrait.shape[:2]
    rect = compose_rect(box, height, width, None if motion is None else motion.box)
    return ComposedFrame(rgb=rgb, i420=update_i420(portrait_i420, rgb, rect))
