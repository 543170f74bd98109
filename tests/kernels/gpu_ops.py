"""``ImageKernels`` behind the host build's numpy interface, so one test body checks both.

Each call uploads its numpy inputs to the GPU (strided portraits keep their
strides: the bytes they span go up as they are), launches on one stream and
downloads the outputs. Test support only: it synchronises after every call.
"""

import ctypes
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from kernels.geometry import CropBox
from kernels.host_build import I420Planes
from kernels.items import I420Job, I420Ref, ImageRef, PostprocessJob, PreprocessJob, motion_ref
from kernels.launch import ImageKernels, address, import_cuda_core
from kernels.layers import FaceLayers, HeadMotion


class GpuOps:
    """The CUDA kernels on numpy arrays, the same methods as ``kernels.host_build.HostOps``."""

    def __init__(self, core: ModuleType | None = None) -> None:
        """``core``: the cuda.core module (default: imported), or tests' CPU stand-in."""
        self._core = core or import_cuda_core()
        self.kernels = ImageKernels(0, core=self._core)
        self.device = self.kernels.device
        self.stream = self.device.create_stream()

    def _host(self, array: np.ndarray) -> Any:
        return self._core.Buffer.from_handle(array.ctypes.data, array.nbytes, owner=array)

    def upload(self, array: np.ndarray) -> Any:
        array = np.ascontiguousarray(array)
        buffer = self.device.allocate(array.nbytes, stream=self.stream)
        buffer.copy_from(self._host(array), stream=self.stream)
        return buffer

    def download(self, buffer: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        out = np.empty(shape, dtype)
        buffer.copy_to(self._host(out), stream=self.stream)
        self.stream.sync()
        return out

    def upload_image(self, image: np.ndarray) -> tuple[Any, ImageRef]:
        """The bytes ``image`` spans, on the device, and the same view of them there."""
        low, high = np.lib.array_utils.byte_bounds(image)
        span = np.ctypeslib.as_array((ctypes.c_ubyte * (high - low)).from_address(low))
        buffer = self.upload(span)
        start = address(buffer) + image.ctypes.data - low
        height, width = image.shape[:2]
        return buffer, ImageRef(start, height, width, tuple(image.strides))  # type: ignore[arg-type]

    def preprocess(
        self,
        portraits: Sequence[np.ndarray],
        boxes: Sequence[CropBox],
        *,
        size: int = 128,
        dtype: type[np.floating] = np.float32,
    ) -> np.ndarray:
        uploads = [self.upload_image(p) for p in portraits]
        shape = (len(portraits), 3, size, size)
        out = self.device.allocate(int(np.prod(shape)) * np.dtype(dtype).itemsize, stream=self.stream)
        jobs = [PreprocessJob(ref, box) for (_, ref), box in zip(uploads, boxes, strict=True)]
        self.kernels.preprocess(jobs, out, stream=self.stream, size=size, dtype=np.dtype(dtype).name)
        return self.download(out, shape, dtype)

    def postprocess(
        self,
        portraits: Sequence[np.ndarray],
        boxes: Sequence[CropBox],
        layers: Sequence[FaceLayers],
        feather: np.ndarray,
        *,
        motions: Sequence[HeadMotion | None] | None = None,
        frames: Sequence[np.ndarray] | None = None,
        planes: Sequence[I420Planes] | None = None,
    ) -> None:
        count = len(portraits)
        motions = motions if motions is not None else [None] * count
        uploads = [self.upload_image(p) for p in portraits]
        kept: list[Any] = []

        def device(array: np.ndarray | None) -> int:
            if array is None:
                return 0
            kept.append(self.upload(np.asarray(array, dtype=np.float32)))
            return address(kept[-1])

        frame_buffers = [] if frames is None else [self.upload(f) for f in frames]
        plane_buffers = [] if planes is None else [[self.upload(p) for p in trio] for trio in planes]
        jobs = []
        for i in range(count):
            height, width = portraits[i].shape[:2]
            rgb = None if frames is None else ImageRef.packed(address(frame_buffers[i]), height, width)
            i420 = None
            if planes is not None:
                y, u, v = (address(b) for b in plane_buffers[i])
                i420 = I420Ref(y, u, v, width, width // 2)
            motion = motions[i]
            jobs.append(
                PostprocessJob(
                    portrait=uploads[i][1],
                    box=boxes[i],
                    color=device(layers[i].color),
                    mask=device(layers[i].mask),
                    shift=device(layers[i].shift),
                    motion=None if motion is None else motion_ref(motion, device(motion.weight)),
                    rgb=rgb,
                    i420=i420,
                )
            )
        feather_buffer = self.upload(np.asarray(feather, dtype=np.float32))
        self.kernels.postprocess(jobs, feather_buffer, stream=self.stream, size=feather.shape[0])
        for frame, buffer in zip(frames or (), frame_buffers):
            frame[...] = self.download(buffer, frame.shape, np.uint8)
        for trio, buffers in zip(planes or (), plane_buffers):
            for plane, buffer in zip(trio, buffers):
                plane[...] = self.download(buffer, plane.shape, np.uint8)

    def rgb_to_i420(self, frames: Sequence[np.ndarray]) -> list[I420Planes]:
        uploads = [self.upload_image(f) for f in frames]
        outputs = []
        jobs = []
        for frame, (_, ref) in zip(frames, uploads):
            height, width = frame.shape[:2]
            buffer = self.device.allocate(height * width * 3 // 2, stream=self.stream)
            outputs.append((buffer, height, width))
            jobs.append(I420Job(ref, I420Ref.packed(address(buffer), height, width)))
        self.kernels.rgb_to_i420(jobs, stream=self.stream)
        result = []
        for buffer, height, width in outputs:
            flat = self.download(buffer, (height * width * 3 // 2,), np.uint8)
            luma, chroma = height * width, (height // 2) * (width // 2)
            result.append(
                (
                    flat[:luma].reshape(height, width),
                    flat[luma : luma + chroma].reshape(height // 2, width // 2),
                    flat[luma + chroma :].reshape(height // 2, width // 2),
                )
            )
        return result
