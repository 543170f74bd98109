"""The fused post-processing step, on the CPU: face layers in, a finished frame in RGB and I420 out.

One step per frame and session: compose the face layers into the portrait at
its full resolution (``reference.compose``: head motion, upsampled attention,
colour and shift, feathered edge) and bring the frame's I420 up to date
(``reference.update_i420``: only the 2x2 blocks around the changed rect).

Two implementations compute the same bytes. Where a C++ compiler is found, the
``postprocess`` kernel's own per-pixel code built for the CPU
(``kernels.host_build``, compiled once into the cache, a few seconds at most)
runs it: one pass over the pixels instead of numpy's many whole-array passes,
which matters with head motion, whose box is twice the face's
(``bench/README.md`` has the figures), and it runs without the GIL. Without a
compiler, or with ``AVATAR_HOST_KERNELS=0``, the numpy functions of
``reference`` do. The CUDA twin is ``kernels.launch.ImageKernels.postprocess``
for a batch of sessions on the GPU; ``tests/kernels`` hold all three equal.
"""

import logging
import os
from dataclasses import dataclass
from functools import cache

import numpy as np

from kernels.geometry import CropBox
from kernels.host_build import HostBuildError, HostOps, load_host_ops
from kernels.layers import FaceLayers, HeadMotion
from kernels.reference import compose, compose_rect, feather_mask, update_i420

logger = logging.getLogger(__name__)

HOST_KERNELS_VARIABLE = "AVATAR_HOST_KERNELS"
"""Set to ``0`` to compose with numpy even where a C++ compiler is found."""

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
    host = host_kernels()
    if host is not None:
        rgb = portrait.copy()
        i420 = (portrait_i420[0].copy(), portrait_i420[1].copy(), portrait_i420[2].copy())
        host.postprocess([portrait], [box], [layers], feather, motions=[motion], frames=[rgb], planes=[i420])
        return ComposedFrame(rgb=rgb, i420=i420)
    rgb = compose(portrait, box, layers, feather, motion)
    height, width = portrait.shape[:2]
    rect = compose_rect(box, height, width, None if motion is None else motion.box)
    return ComposedFrame(rgb=rgb, i420=update_i420(portrait_i420, rgb, rect))


def compose_rgb(portrait: np.ndarray, box: CropBox, layers: FaceLayers, feather: np.ndarray) -> np.ndarray:
    """``reference.compose`` (RGB only, no head motion, any feather), by the compiled kernel where there is one.

    For callers that need no I420, such as the enrolment's synthesizer, which
    composes a batch of training targets every step.
    """
    host = host_kernels()
    if host is None:
        return compose(portrait, box, layers, feather)
    rgb = portrait.copy()
    host.postprocess([portrait], [box], [layers], feather, frames=[rgb])
    return rgb


@cache
def host_kernels() -> HostOps | None:
    """The compiled post-processing kernel for the CPU, built on first use; None: compose with numpy.

    Called once when a renderer is made, so that the build happens before the first frame is due.
    """
    if os.environ.get(HOST_KERNELS_VARIABLE, "1") == "0":
        logger.info("composing frames with numpy (%s=0)", HOST_KERNELS_VARIABLE)
        return None
    try:
        return load_host_ops()
    except HostBuildError as exc:
        logger.warning("composing frames with numpy, about 3x slower with head motion: %s", str(exc).splitlines()[0])
        return None
