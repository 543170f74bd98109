"""The fused post-processing step on the GPU: face layers that are already on the device in, frames out.

The CUDA twin of ``kernels.compose.compose_frame`` for a batch: where a
generator runs on the GPU (TensorRT), its colour and attention maps stay there
and one ``postprocess`` launch composes every session's frame and its I420
(``ImageKernels.postprocess``); only the finished frames come back to the host,
for the encoder. What does not change between frames (each portrait, its I420,
the feather, a head's weight map) is uploaded once and kept as long as the host
array it came from lives.
"""

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kernels.compose import ComposedFrame, I420Planes, layer_feather
from kernels.geometry import CropBox
from kernels.items import I420Ref, ImageRef, PostprocessJob, motion_ref
from kernels.launch import ImageKernels, address
from kernels.layers import HeadMotion


@dataclass(frozen=True)
class DeviceFace:
    """One session's frame: its portrait on the host, its face layers on the device.

    Attributes:
        portrait: uint8 (H, W, 3), C-contiguous, H and W even; uploaded once.
        portrait_i420: its I420 planes (``rgb_to_i420``); uploaded once.
        box: the crop box the layers cover.
        color: device address of float32 (3, S, S) in [-1, 1], contiguous.
        mask: device address of float32 (1, S, S) in [0, 1], contiguous.
        shift: float32 (2, S, S) on the host (uploaded with the frame), or None.
        motion: the head's motion, or None (its weight map is uploaded once).
    """

    portrait: np.ndarray
    portrait_i420: I420Planes
    box: CropBox
    color: int
    mask: int
    shift: np.ndarray | None = None
    motion: HeadMotion | None = None


class DeviceCompositor:
    """Composes batches of frames with the CUDA kernels, on its own stream.

    kernels: the compiled kernels (``ImageKernels``) of the GPU the layers are on.
    Not thread-safe: one caller at a time (the render scheduler's worker).
    """

    def __init__(self, kernels: ImageKernels) -> None:
        self.kernels = kernels
        self.device = kernels.device
        self.stream = self.device.create_stream()
        self._kept: dict[int, tuple[weakref.ref[np.ndarray], Any]] = {}

    def _host(self, array: np.ndarray) -> Any:
        return self.kernels.core.Buffer.from_handle(array.ctypes.data, array.nbytes, owner=array)

    def _upload(self, array: np.ndarray) -> Any:
        """A new device buffer holding ``array`` (made contiguous)."""
        array = np.ascontiguousarray(array)
        buffer = self.device.allocate(array.nbytes, stream=self.stream)
        buffer.copy_from(self._host(array), stream=self.stream)
        return buffer

    def _kept_upload(self, array: np.ndarray, *, parts: Sequence[np.ndarray] | None = None) -> Any:
        """The device copy of a host array that does not change, uploaded on first use.

        ``parts``: upload these, packed one after the other, in place of ``array``
        (the key; e.g. the Y plane standing for all three planes).
        """
        key = id(array)
        found = self._kept.get(key)
        if found is not None and found[0]() is array:
            return found[1]
        packed = array if parts is None else np.concatenate([np.ascontiguousarray(p).ravel() for p in parts])
        buffer = self._upload(packed)
        self._kept[key] = (weakref.ref(array, lambda _: self._kept.pop(key, None)), buffer)
        return buffer

    def compose(self, faces: Sequence[DeviceFace], size: int) -> list[ComposedFrame]:
        """One frame per face (layers of side ``size``), RGB and I420, on the host; waits for the GPU."""
        if not faces:
            return []
        feather = self._kept_upload(layer_feather(size))
        jobs, outputs, frame_buffers = [], [], []
        for face in faces:
            height, width = face.portrait.shape[:2]
            portrait = self._kept_upload(face.portrait)
            i420 = self._kept_upload(face.portrait_i420[0], parts=face.portrait_i420)
            rgb_out = self.device.allocate(face.portrait.nbytes, stream=self.stream)
            rgb_out.copy_from(portrait, stream=self.stream)
            i420_out = self.device.allocate(height * width * 3 // 2, stream=self.stream)
            i420_out.copy_from(i420, stream=self.stream)
            shift = None if face.shift is None else self._upload(np.asarray(face.shift, dtype=np.float32))
            motion = None
            if face.motion is not None:
                weight = self._kept_upload(np.asarray(face.motion.weight, dtype=np.float32))
                motion = motion_ref(face.motion, address(weight))
            jobs.append(
                PostprocessJob(
                    portrait=ImageRef.packed(address(portrait), height, width),
                    box=face.box,
                    color=face.color,
                    mask=face.mask,
                    shift=0 if shift is None else address(shift),
                    motion=motion,
                    rgb=ImageRef.packed(address(rgb_out), height, width),
                    i420=I420Ref.packed(address(i420_out), height, width),
                )
            )
            outputs.append((rgb_out, i420_out, height, width))
            frame_buffers.append(shift)  # kept alive until the launch has run
        self.kernels.postprocess(jobs, feather, stream=self.stream, size=size)
        frames = [self._download(*output) for output in outputs]
        self.stream.sync()
        return frames

    def _download(self, rgb_out: Any, i420_out: Any, height: int, width: int) -> ComposedFrame:
        rgb = np.empty((height, width, 3), np.uint8)
        packed = np.empty(height * width * 3 // 2, np.uint8)
        rgb_out.copy_to(self._host(rgb), stream=self.stream)
        i420_out.copy_to(self._host(packed), stream=self.stream)
        luma, chroma = height * width, (height // 2) * (width // 2)
        planes = (
            packed[:luma].reshape(height, width),
            packed[luma : luma + chroma].reshape(height // 2, width // 2),
            packed[luma + chroma :].reshape(height // 2, width // 2),
        )
        return ComposedFrame(rgb=rgb, i420=planes)
