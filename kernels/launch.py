"""Launch the image kernels on a CUDA GPU through NVIDIA's cuda.core (NVRTC + driver API).

Importing this module touches neither the GPU nor cuda.core; ``ImageKernels(...)``
does (it needs the gpu extra: ``pip install 'avatar-engine[gpu]'``, i.e. cuda-python with
cuda.core >= 1.0 and an NVRTC library such as the ``nvidia-cuda-nvrtc`` wheel).

Every kernel takes a batch: one item per session, described by the dataclasses
of ``kernels.items`` with device addresses. The items are packed into a small
table (56 to 224 bytes each), copied to the device on the caller's stream and
freed stream-ordered after the launch, so the call never blocks and never
races with work on other streams. Buffers may be given as cuda.core ``Buffer``
objects or as raw device addresses (``int``).
"""

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from kernels.items import (
    KERNELS_DIR,
    I420Job,
    PostprocessJob,
    PreprocessJob,
    pack_i420,
    pack_postprocess,
    pack_preprocess,
)

PROGRAMS: dict[str, tuple[str, ...]] = {
    "preprocess.cu": ("preprocess_f32", "preprocess_f16"),
    "postprocess.cu": ("postprocess",),
    "i420.cu": ("rgb_to_i420",),
}
"""CUDA source (in ``kernels/``) -> the ``extern "C"`` kernels it defines."""

PREPROCESS_BLOCK = (32, 8, 1)  # threads over (u, v) of the crop
BLOCKS_2X2 = (32, 4, 1)  # threads over 2x2 pixel blocks (postprocess, rgb_to_i420)
MAX_BATCH = 65535  # grid.z

Stream = Any  # cuda.core.Stream (typed loosely: cuda.core is imported lazily)
DeviceBuffer = Any  # cuda.core.Buffer or an int device address


def import_cuda_core() -> ModuleType:
    """``cuda.core`` (>= 1.0, where the API left ``experimental``), or an ImportError saying what to get."""
    try:
        import cuda.core as core
    except ImportError as exc:
        raise ImportError(
            "the CUDA kernels need NVIDIA's cuda-python (cuda.core); install the gpu extra: "
            "pip install 'avatar-engine[gpu]'"
        ) from exc
    if not hasattr(core, "Program"):
        raise ImportError(
            f"cuda.core {getattr(core, '__version__', '?')} is too old (need >= 1.0); "
            "install the gpu extra: pip install 'avatar-engine[gpu]'"
        )
    return core


def program_options(core: ModuleType, source: str, arch: str) -> Any:
    """NVRTC options for ``source``, for ``arch`` (``"sm_90"``: cubin for that GPU).

    No FMA contraction (``fma=False``, like ``nvcc --fmad=false``), IEEE division
    and denormals kept: the arithmetic in ``image_ops.cuh`` already uses explicit
    round-to-nearest intrinsics, so these only keep any other float code in the
    sources exact too.
    """
    return core.ProgramOptions(
        name=source,
        arch=arch,
        std="c++17",
        fma=False,
        ftz=False,
        prec_div=True,
        include_path=str(KERNELS_DIR),
    )


def compile_program(core: ModuleType, source: str, arch: str) -> Any:
    """The cubin (a cuda.core ``ObjectCode``) of ``kernels/<source>`` for ``arch``; needs no GPU."""
    code = (KERNELS_DIR / source).read_text()
    return core.Program(code, "c++", program_options(core, source, arch)).compile("cubin")


def address(buffer: DeviceBuffer) -> int:
    """The device address of a cuda.core ``Buffer``, or an ``int`` address as is."""
    return int(buffer.handle) if hasattr(buffer, "handle") else int(buffer)


def _check_size(buffer: DeviceBuffer, nbytes: int, what: str) -> None:
    if hasattr(buffer, "size") and buffer.size < nbytes:
        raise ValueError(f"{what} buffer holds {buffer.size} bytes, needs {nbytes}")


def _check_batch(count: int) -> None:
    if count > MAX_BATCH:
        raise ValueError(f"batch of {count} items exceeds the grid limit of {MAX_BATCH}")


class ImageKernels:
    """The image kernels of ``kernels/*.cu``, compiled with NVRTC for one GPU.

    Creating it makes the device's primary context current on the calling
    thread; launch from that thread (or make the context current first).
    Programs compile on first use (NVRTC, well under a second each).

    Args:
        device_id: the CUDA device ordinal.
        core: the ``cuda.core`` module to use; default: imported here
            (``import_cuda_core``). The tests pass a CPU stand-in.
    """

    def __init__(self, device_id: int = 0, *, core: ModuleType | None = None) -> None:
        self._core = core or import_cuda_core()
        self._device = self._core.Device(device_id)
        self._device.set_current()
        self._arch = f"sm_{self._device.arch}"
        self._kernels: dict[str, Any] = {}

    @property
    def device(self) -> Any:
        """The cuda.core ``Device`` the kernels run on."""
        return self._device

    @property
    def core(self) -> ModuleType:
        """The ``cuda.core`` module in use (its ``Buffer`` wraps host memory for copies)."""
        return self._core

    def _kernel(self, name: str) -> Any:
        if name not in self._kernels:
            source = next(s for s, names in PROGRAMS.items() if name in names)
            program = compile_program(self._core, source, self._arch)
            for kernel_name in PROGRAMS[source]:
                self._kernels[kernel_name] = program.get_kernel(kernel_name)
        return self._kernels[name]

    def _launch(
        self,
        stream: Stream,
        name: str,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        records: np.ndarray,
        *args: Any,
    ) -> None:
        """Copy ``records`` to a device table on ``stream``, launch ``name(table, *args)``, free the table."""
        core = self._core
        table = self._device.allocate(records.nbytes, stream=stream)
        # An async copy from pageable host memory is staged by the driver before
        # the call returns (CUDA's API synchronisation notes): `records` may go then.
        host = core.Buffer.from_handle(records.ctypes.data, records.nbytes, owner=records)
        table.copy_from(host, stream=stream)
        core.launch(stream, core.LaunchConfig(grid=grid, block=block), self._kernel(name), table, *args)
        table.close(stream)  # freed after the kernel, in stream order

    def preprocess(
        self,
        jobs: Sequence[PreprocessJob],
        out: DeviceBuffer,
        *,
        stream: Stream,
        size: int = 128,
        dtype: str = "float32",
    ) -> None:
        """Crop, resize and normalise each job's portrait into the generator's batch input.

        Args:
            jobs: B items: a uint8 (H, W, 3) device portrait (any strides) and its box.
            out: device buffer of (B, 3, size, size) ``dtype`` ("float32" or
                "float16"), contiguous; receives RGB in [-1, 1].
            stream: the cuda.core ``Stream`` to run on.
            size: the crop side in pixels.
        """
        kernel = {"float32": "preprocess_f32", "float16": "preprocess_f16"}.get(dtype)
        if kernel is None:
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        if not jobs:
            return
        _check_batch(len(jobs))
        _check_size(out, len(jobs) * 3 * size * size * np.dtype(dtype).itemsize, "preprocess output")
        bx, by, _ = PREPROCESS_BLOCK
        grid = (math.ceil(size / bx), math.ceil(size / by), len(jobs))
        records = pack_preprocess(jobs)
        self._launch(stream, kernel, grid, PREPROCESS_BLOCK, records, np.int32(size), address(out))

    def postprocess(
        self,
        jobs: Sequence[PostprocessJob],
        feather: DeviceBuffer,
        *,
        stream: Stream,
        size: int = 128,
    ) -> None:
        """Compose each job's face layers into its portrait and convert, in one pass per face region.

        The CUDA twin of ``kernels.reference.compose`` followed by
        ``rgb_to_i420``. Writes only the pixels around each job's compose rect
        (the 2x2 blocks that cover it): the output frames must already hold the
        portrait and its I420 (``rgb_to_i420``, once per session and output buffer).

        Args:
            jobs: B items (``PostprocessJob``: portrait, box, colour, mask and
                shift addresses, head motion, rgb and/or I420 outputs).
            feather: device float32 (size, size) in [0, 1] (``feather_mask``).
            stream: the cuda.core ``Stream`` to run on.
            size: the side S of the face layers.
        """
        if not jobs:
            return
        _check_batch(len(jobs))
        _check_size(feather, size * size * 4, "feather")
        records = pack_postprocess(jobs)
        blocks_x = int(np.max((records["x_stop"] + 1) // 2 - records["x_start"] // 2))
        blocks_y = int(np.max((records["y_stop"] + 1) // 2 - records["y_start"] // 2))
        if blocks_x <= 0 or blocks_y <= 0:
            return  # every box lies outside its portrait
        tx, ty, _ = BLOCKS_2X2
        grid = (math.ceil(blocks_x / tx), math.ceil(blocks_y / ty), len(jobs))
        self._launch(stream, "postprocess", grid, BLOCKS_2X2, records, address(feather), np.int32(size))

    def rgb_to_i420(self, jobs: Sequence[I420Job], *, stream: Stream) -> None:
        """Convert whole uint8 (H, W, 3) frames (H, W even) to I420, one item per frame."""
        if not jobs:
            return
        _check_batch(len(jobs))
        blocks_x = max(job.rgb.width // 2 for job in jobs)
        blocks_y = max(job.rgb.height // 2 for job in jobs)
        if blocks_x == 0 or blocks_y == 0:
            return  # empty frames
        tx, ty, _ = BLOCKS_2X2
        grid = (math.ceil(blocks_x / tx), math.ceil(blocks_y / ty), len(jobs))
        self._launch(stream, "rgb_to_i420", grid, BLOCKS_2X2, pack_i420(jobs))
