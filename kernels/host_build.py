"""The kernels' per-pixel functions built for the CPU, to test them without a GPU.

``host_ops.cpp`` loops over pixels the way one kernel launch does and calls the
same ``image_ops.cuh`` functions as the CUDA threads; this module compiles it
with the host C++ compiler into a shared library (``-ffp-contract=off``, no
fast-math: the float32 roundings of the reference), caches it by a hash of the
sources and flags, and exposes it on numpy arrays through ctypes.

The library lives in ``$AVATAR_CACHE_DIR/kernels``, else
``$XDG_CACHE_HOME/avatar-engine/kernels``, else ``~/.cache/avatar-engine/kernels``;
never in the source tree.
"""

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kernels.geometry import CropBox
from kernels.items import (
    KERNELS_DIR,
    I420Job,
    I420Ref,
    ImageRef,
    PostprocessJob,
    PreprocessJob,
    motion_ref,
    pack_i420,
    pack_postprocess,
    pack_preprocess,
)
from kernels.layers import FaceLayers, HeadMotion

HOST_OPS = "host_ops.cpp"
CXX_FLAGS = (
    "-O2",
    "-std=c++17",
    "-fPIC",
    "-shared",
    "-ffp-contract=off",  # no FMA contraction: one rounding per operation, as the reference
    "-fno-fast-math",
    "-Wall",
    "-Wextra",
    "-Werror",
) + (
    # SSE4.1 has instructions for floorf and rintf (roundss), which the compositor calls for every
    # tap; without it g++ emits slow sequences or calls. IEEE-exact either way: the bytes do not change.
    ("-msse4.1",) if platform.machine().lower() in ("x86_64", "amd64") else ()
)

I420Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


class HostBuildError(RuntimeError):
    """The host C++ compiler is missing or rejected the sources."""


def cache_dir() -> Path:
    """Where the built library goes (see the module docstring)."""
    root = os.environ.get("AVATAR_CACHE_DIR")
    if root:
        return Path(root) / "kernels"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "avatar-engine" / "kernels"


def find_compiler() -> str | None:
    """``$CXX``, else ``g++``, else ``c++`` on the PATH; None if there is none."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def kernel_sources() -> list[Path]:
    """The files in ``KERNELS_DIR`` a host build may include: ``*.cuh``, ``*.cu``, ``*.cpp``."""
    return sorted(p for pattern in ("*.cuh", "*.cu", "*.cpp") for p in KERNELS_DIR.glob(pattern))


def build_host_library(
    source: Path | None = None, *, compiler: str | None = None, directory: Path | None = None
) -> Path:
    """Compile a C++ source against ``KERNELS_DIR`` into a shared library, unless already built.

    Args:
        source: the C++ file (default ``KERNELS_DIR / "host_ops.cpp"``); it may
            include any kernel source by name (``-I KERNELS_DIR``).
        compiler: the C++ compiler (default ``find_compiler()``).
        directory: where libraries go (default ``cache_dir()``).

    Returns:
        ``<source stem>-<hash>.so`` in ``directory``, the hash covering the
        compiler, the flags, ``source`` and every kernel source. Written to a
        temporary name first and renamed, so concurrent builds never load a
        half-written file.

    Raises:
        HostBuildError: no compiler, or the compiler failed (its message included).
    """
    source = source or KERNELS_DIR / HOST_OPS
    compiler = compiler or find_compiler()
    if compiler is None:
        raise HostBuildError("no C++ compiler found (set CXX or install g++)")
    digest = hashlib.sha256(" ".join((compiler, *CXX_FLAGS)).encode())
    for path in (source, *kernel_sources()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    directory = directory or cache_dir()
    target = directory / f"{source.stem}-{digest.hexdigest()[:16]}.so"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        built = Path(scratch) / target.name
        command = [compiler, *CXX_FLAGS, f"-I{KERNELS_DIR}", str(source), "-o", str(built)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise HostBuildError(f"cannot run the C++ compiler {compiler!r}: {exc}") from exc
        if result.returncode != 0:
            raise HostBuildError(f"{' '.join(command)} failed:\n{result.stderr}")
        os.replace(built, target)
    return target


def _pointer(array: np.ndarray) -> int:
    return array.ctypes.data


class HostOps:
    """The kernels' arithmetic on the CPU, on numpy arrays, one call per kernel launch.

    Inputs may have any strides where the kernels accept strides (portraits,
    frames); crop tensors are made contiguous, as the kernels expect.
    """

    def __init__(self, library: Path) -> None:
        self._lib = ctypes.CDLL(str(library))
        pointer, count = ctypes.c_void_p, ctypes.c_int
        self._lib.host_preprocess_f32.argtypes = (pointer, count, count, pointer)
        self._lib.host_preprocess_f16.argtypes = (pointer, count, count, pointer)
        self._lib.host_postprocess.argtypes = (pointer, count, pointer, count)
        self._lib.host_rgb_to_i420.argtypes = (pointer, count)
        self._lib.host_f32_to_f16_bits.argtypes = (pointer, ctypes.c_longlong, pointer)
        self._lib.host_layout.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
        self._lib.host_layout.restype = ctypes.c_longlong

    def layout(self, struct: str, field: str = "") -> int:
        """Byte offset of ``struct.field`` as compiled; ``sizeof(struct)`` for ""; -1 if unknown."""
        return int(self._lib.host_layout(struct.encode(), field.encode()))

    def f32_to_f16(self, values: np.ndarray) -> np.ndarray:
        """``f32_to_f16_bits`` on each value of a float32 array; returns float16, same shape."""
        values = np.ascontiguousarray(values, dtype=np.float32)
        out = np.empty(values.shape, np.float16)
        self._lib.host_f32_to_f16_bits(_pointer(values), values.size, _pointer(out))
        return out

    def preprocess(
        self,
        portraits: Sequence[np.ndarray],
        boxes: Sequence[CropBox],
        *,
        size: int = 128,
        dtype: type[np.floating] = np.float32,
    ) -> np.ndarray:
        """Kernel ``preprocess_f32`` / ``preprocess_f16``: (B, 3, size, size) of ``dtype`` in [-1, 1]."""
        records = pack_preprocess(
            [PreprocessJob(ImageRef.of_array(p), box) for p, box in zip(portraits, boxes, strict=True)]
        )
        out = np.empty((len(records), 3, size, size), dtype)
        if out.dtype not in (np.float16, np.float32):
            raise ValueError(f"dtype must be float32 or float16, got {out.dtype}")
        function = self._lib.host_preprocess_f16 if out.dtype == np.float16 else self._lib.host_preprocess_f32
        function(_pointer(records), len(records), size, _pointer(out))
        return out

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
        """Kernel ``postprocess``: compose and convert, in place into ``frames`` / ``planes``.

        Args:
            portraits: uint8 (H, W, 3) per item, any strides.
            boxes: each item's crop box.
            layers: each item's face layers at side S.
            feather: float32 (S, S), shared.
            motions: each item's head motion or None (default: none for all).
            frames: uint8 (H, W, 3) per item holding the portrait; the compose
                rect is rewritten. Any strides.
            planes: (Y, U, V) uint8 C-contiguous planes per item holding the
                portrait's I420; the 2x2 blocks around the compose rect are rewritten.
        """
        count = len(portraits)
        motions = motions if motions is not None else [None] * count
        kept: list[np.ndarray] = []

        def keep(array: np.ndarray | None) -> int:
            if array is None:
                return 0
            kept.append(np.ascontiguousarray(array, dtype=np.float32))
            return _pointer(kept[-1])

        feather = np.ascontiguousarray(feather, dtype=np.float32)
        jobs = [
            PostprocessJob(
                portrait=ImageRef.of_array(portraits[i]),
                box=boxes[i],
                color=keep(layers[i].color),
                mask=keep(layers[i].mask),
                shift=keep(layers[i].shift),
                motion=None if (motion := motions[i]) is None else motion_ref(motion, keep(motion.weight)),
                rgb=None if frames is None else ImageRef.of_array(frames[i]),
                i420=None if planes is None else _i420_ref(planes[i]),
            )
            for i in range(count)
        ]
        records = pack_postprocess(jobs)
        self._lib.host_postprocess(_pointer(records), count, _pointer(feather), feather.shape[0])

    def rgb_to_i420(self, frames: Sequence[np.ndarray]) -> list[I420Planes]:
        """Kernel ``rgb_to_i420``: (Y (H, W), U (H/2, W/2), V (H/2, W/2)) uint8 per frame."""
        planes = [empty_i420(*frame.shape[:2]) for frame in frames]
        records = pack_i420([I420Job(ImageRef.of_array(f), _i420_ref(p)) for f, p in zip(frames, planes, strict=True)])
        self._lib.host_rgb_to_i420(_pointer(records), len(records))
        return planes


def empty_i420(height: int, width: int) -> I420Planes:
    """Uninitialised uint8 planes Y (height, width), U and V (height // 2, width // 2)."""
    chroma = (height // 2, width // 2)
    return np.empty((height, width), np.uint8), np.empty(chroma, np.uint8), np.empty(chroma, np.uint8)


def _i420_ref(planes: I420Planes) -> I420Ref:
    y, u, v = planes
    for plane in planes:
        if plane.dtype != np.uint8 or not plane.flags.c_contiguous:
            raise ValueError("I420 planes must be C-contiguous uint8")
    if u.strides[0] != v.strides[0]:
        raise ValueError(f"U and V planes must share a pitch, got {u.strides[0]} and {v.strides[0]}")
    return I420Ref(_pointer(y), _pointer(u), _pointer(v), y.strides[0], u.strides[0])


def load_host_ops() -> HostOps:
    """Build (or reuse) the host library and load it."""
    return HostOps(build_host_library())
