"""A CPU stand-in for the part of cuda.core that kernels/launch.py uses.

"Device" memory is host memory, copies are memmoves, and ``launch`` runs the
real kernel bodies of ``kernels/*.cu`` over the requested grid through
``grid_emulation.cpp``. Kernel arguments are converted as cuda.core converts
them (a ``Buffer`` or a Python ``int`` is a pointer, ``np.int32`` an int, a
Python ``float`` a double) and checked against the kernel's C signature, so a
launcher that passes the wrong type or order fails here as it would misbehave
on a GPU. Only what the launcher and ``tests/kernels/gpu_ops.py`` call exists.
"""

import ctypes
import functools
from pathlib import Path
from typing import Any

import numpy as np

from kernels.host_build import build_host_library

EMULATION = Path(__file__).resolve().parent / "grid_emulation.cpp"
UNWRITTEN = 0xCD  # fresh allocations hold this byte, as garbage would


class Dim3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint), ("y", ctypes.c_uint), ("z", ctypes.c_uint)]


SIGNATURES: dict[str, tuple[Any, ...]] = {
    "preprocess_f32": (ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p),
    "preprocess_f16": (ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p),
    "postprocess": (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32),
    "rgb_to_i420": (ctypes.c_void_p,),
}
"""Kernel -> the C types of its parameters, in order."""


class Buffer:
    """Memory at an address: owned (a fresh allocation) or borrowed (``from_handle``)."""

    def __init__(self, address: int, size: int, keep: object) -> None:
        self._address, self._size, self._keep = address, size, keep
        self.closed = False

    @property
    def handle(self) -> int:
        if self.closed:
            raise RuntimeError("buffer used after close")
        return self._address

    @property
    def size(self) -> int:
        return self._size

    @staticmethod
    def from_handle(ptr: int, size: int, mr: object = None, owner: object = None, *, stream: object = None) -> "Buffer":
        return Buffer(int(ptr), size, owner)

    def copy_from(self, src: "Buffer", *, stream: "Stream") -> None:
        if src.size != self.size:
            raise ValueError(f"copy of {src.size} bytes into a buffer of {self.size}")
        ctypes.memmove(self.handle, src.handle, self.size)

    def copy_to(self, dst: "Buffer", *, stream: "Stream") -> None:
        dst.copy_from(self, stream=stream)

    def close(self, stream: "Stream | None" = None) -> None:
        self.closed = True


class Stream:
    def sync(self) -> None:
        """Work runs at once on the CPU: nothing to wait for."""


class Device:
    arch = "90"

    def __init__(self, device_id: int = 0) -> None:
        self.device_id = device_id

    @staticmethod
    def get_all_devices() -> tuple["Device", ...]:
        return (Device(0),)

    def set_current(self) -> None:
        """One CPU, always current."""

    def create_stream(self) -> Stream:
        return Stream()

    def allocate(self, size: int, *, stream: Stream) -> Buffer:
        storage = np.full(size, UNWRITTEN, np.uint8)
        return Buffer(storage.ctypes.data, size, storage)


class ProgramOptions:
    def __init__(self, **options: Any) -> None:
        self.options = options


class ObjectCode:
    def __init__(self, kernels: tuple[str, ...]) -> None:
        self._kernels = kernels

    def get_kernel(self, name: str) -> str:
        if name not in self._kernels:
            raise KeyError(f"no kernel {name!r} in this program")
        return name


class Program:
    """'Compiles' a source by listing its kernels: the emulation library has them all built."""

    def __init__(self, code: str, code_type: str, options: ProgramOptions) -> None:
        if code_type != "c++":
            raise ValueError(code_type)
        self._kernels = tuple(k for k in SIGNATURES if f"void {k}(" in code)

    def compile(self, target_type: str) -> ObjectCode:
        if target_type != "cubin":
            raise ValueError(target_type)
        return ObjectCode(self._kernels)


class LaunchConfig:
    def __init__(self, grid: tuple[int, int, int], block: tuple[int, int, int]) -> None:
        self.grid, self.block = grid, block


def _c_argument(value: Any) -> Any:
    """cuda.core's conversion of one kernel argument, as a ctypes value."""
    if isinstance(value, Buffer):
        return ctypes.c_void_p(value.handle)
    if isinstance(value, bool | np.bool_):
        raise TypeError("bool kernel arguments are not used here")
    if isinstance(value, int):
        return ctypes.c_void_p(value)  # cuda.core: a Python int is a pointer
    if isinstance(value, np.int32):
        return ctypes.c_int32(int(value))
    if isinstance(value, float):
        return ctypes.c_double(value)
    raise TypeError(f"unsupported kernel argument type {type(value).__name__}")


@functools.cache
def emulation() -> ctypes.CDLL:
    """The emulation library, built (or found in the cache) and loaded once."""
    return ctypes.CDLL(str(build_host_library(EMULATION)))


def launch(stream: Stream, config: LaunchConfig, kernel: str, *args: Any) -> None:
    expected = SIGNATURES[kernel]
    converted = [_c_argument(a) for a in args]
    got = tuple(type(a) for a in converted)
    if got != expected:
        raise TypeError(f"{kernel} takes {expected}, launched with {got}")
    if len(config.grid) != 3 or len(config.block) != 3 or 0 in config.grid or 0 in config.block:
        raise ValueError(f"bad launch configuration grid={config.grid} block={config.block}")
    function = getattr(emulation(), f"emulate_{kernel}")
    function.argtypes = (Dim3, Dim3, *expected)
    function(Dim3(*config.grid), Dim3(*config.block), *converted)
