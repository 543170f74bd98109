"""``--backend auto``: TensorRT where a CUDA GPU and the gpu extra are present, else the CPU default.

The choice comes with its reason, printed as one line, so that a slow run on a
GPU machine (extra not installed) or a surprising pick is explained where it
happens. Probing loads the NVIDIA driver library only when asked, never at
import time, and needs no GPU package: on a GPU machine without the gpu extra
it can still say that a GPU is there and what to install.
"""

import ctypes
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from engine.backends.model_files import ModelSource, onnx_path
from engine.backends.registry import BACKENDS, DEFAULT_BACKEND, BackendOptions, check_streams
from engine.errors import UsageError

AUTO = "auto"
TENSORRT = "tensorrt"
OPENVINO = "openvino"
_CUDA_DRIVER_LIBRARY = "libcuda.so.1"
"""The NVIDIA driver's CUDA library on Linux; absent on machines without the driver."""
_CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"
"""cgroup v2: "<quota> <period>" in microseconds, or "max <period>" for no limit."""
_GPU_PACKAGES = {"tensorrt": "tensorrt", "cuda.bindings": "cuda-python"}
"""Modules the TensorRT backend imports, and the package that brings each."""


@dataclass(frozen=True)
class BackendChoice:
    """A runtime to use and why it was picked."""

    name: str
    reason: str

    def describe(self) -> str:
        """The one line to print, e.g. ``backend: openvino (no CUDA GPU found: tensorrt needs one)``."""
        return f"backend: {self.name} ({self.reason})"


def cuda_gpu_names() -> list[str]:
    """Names of the CUDA GPUs the NVIDIA driver reports; empty without driver or GPU.

    Asks the driver API directly (``cuInit``, ``cuDeviceGetCount``,
    ``cuDeviceGetName``) through ctypes, so it works before anything from the
    gpu extra is installed.
    """
    try:
        driver = ctypes.CDLL(_CUDA_DRIVER_LIBRARY)
    except OSError:
        return []
    if driver.cuInit(0) != 0:
        return []
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    names = []
    for ordinal in range(count.value):
        device = ctypes.c_int(0)
        name = ctypes.create_string_buffer(256)
        if driver.cuDeviceGet(ctypes.byref(device), ordinal) == 0 and driver.cuDeviceGetName(name, 256, device) == 0:
            names.append(name.value.decode(errors="replace"))
    return names


def tensorrt_unavailable_reason() -> str | None:
    """Why the TensorRT backend cannot run here, or ``None`` when it can (a GPU and the gpu extra)."""
    return _probe()[1]


def select_backend(requested: str) -> BackendChoice:
    """Resolve ``requested`` (a registry name or ``auto``) to a runtime, with the reason."""
    if requested != AUTO:
        if requested not in BACKENDS:
            raise UsageError(f"unknown backend {requested!r}; choose one of: {AUTO}, {', '.join(BACKENDS)}")
        return BackendChoice(requested, "asked for with --backend")
    gpus, unavailable = _probe()
    if unavailable is not None:
        return BackendChoice(DEFAULT_BACKEND, unavailable)
    return BackendChoice(TENSORRT, f"CUDA GPU {gpus[0]} and TensorRT found")


def default_precision(backend: str, generator: ModelSource | None = None) -> str:
    """Generator precision for ``backend`` when the user gives none.

    The first of the backend's ``BackendSpec.precisions`` (f16 on TensorRT, f32
    elsewhere), except on OpenVINO: int8 where an int8 generator was made from
    exactly ``generator``'s weights (shipped with the default weights; built
    by ``avatar quantize`` for others, which refuses to keep one that loses
    quality), the least CPU per frame; else bf16 where the CPU runs it
    natively (AVX-512 BF16 or AMX): faster than f32, its blended crops close
    to f32 (``python -m bench backends``; figures in bench/README.md).
    """
    if backend == OPENVINO:
        if generator is not None and has_int8_generator(generator):
            return "int8"
        from engine.backends.openvino_backend import bf16_supported

        return "bf16" if bf16_supported() else "f32"
    return BACKENDS[backend].precisions[0]


def has_int8_generator(generator: ModelSource) -> bool:
    """Whether an int8 OpenVINO generator exists for ``generator``'s weights (nothing is exported to find out)."""
    if generator.is_openvino_ir:
        return False
    from engine.backends.openvino_int8 import find_int8_ir

    return find_int8_ir(onnx_path(generator)) is not None


def default_max_batch(backend: str) -> int:
    """Most frames the scheduler puts in one generator call on ``backend`` by default.

    A GPU runs a batch of 8 in little more than the time of one. A CPU runtime
    does not: per image a batch costs about what single frames do, and a batch
    occupies one stream while the others idle; in the throughput simulation,
    batching left more frames late than rendering each frame as it came
    (``python -m bench throughput``; figures in bench/README.md).
    """
    return BACKENDS[backend].default_max_batch


CORES_PER_CPU_SESSION = 2
"""Cores one 25 fps session needs when the networks run on the CPU, by default (``default_max_sessions``)."""
GPU_MAX_SESSIONS = 4
"""The default session limit with the generator on a GPU: not measured on one yet, so the old default."""


def default_max_sessions(backend: str) -> int:
    """How many sessions a server admits when ``--max-sessions`` is not given.

    On the CPU, one per ``CORES_PER_CPU_SESSION`` cores this process may use
    (``usable_cores``), at least one: on a 2-core VM one session keeps its
    frames on time (within a frame interval of their audio) and two do not
    (``python -m bench throughput`` and ``peers``; bench/README.md), and a
    session past what the CPU holds makes every session late, not only
    itself. Raise it with ``--max-sessions`` where later frames are
    acceptable. On TensorRT, ``GPU_MAX_SESSIONS``.
    """
    if backend == TENSORRT:
        return GPU_MAX_SESSIONS
    return max(1, usable_cores() // CORES_PER_CPU_SESSION)


def usable_cores() -> int:
    """CPU cores this process may keep busy: its affinity mask, capped by a cgroup v2 CPU quota.

    A container started with ``--cpus 2`` on a 64-core host sees 64 cores in
    its mask but may only use two; one stream per visible core would then
    queue 64 runs on two cores' worth of time.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path(_CGROUP_CPU_MAX).read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def default_options(
    backend: str,
    *,
    threads: int | None = None,
    streams: int | None = None,
    precision: str | None = None,
    serving: bool = True,
    generator: ModelSource | None = None,
) -> BackendOptions:
    """``backend``'s options with every value not given filled with its default.

    Serving on a backend with parallel runs (OpenVINO): one thread per
    generator run and one run per core at once (streams), so that a busy server keeps every core on its own frame;
    given ``threads`` alone, as many streams as the cores hold, at least one.
    Not serving (``avatar render``: one frame at a time), and on the other
    backends: one run at a time on every core. ValueError for streams > 1
    where the backend runs one call at a time. ``generator``: the weights the
    generator will run, for the default precision (``default_precision``).
    """
    cores = usable_cores()
    spec = BACKENDS.get(backend)
    if spec is not None and spec.parallel_runs and serving:
        threads = threads or 1
        streams = streams or max(1, cores // threads)
    else:
        threads = threads or cores
        streams = streams or 1
    check_streams(backend, streams)
    return BackendOptions(
        threads=threads, streams=streams, precision=precision or default_precision(backend, generator)
    )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package (cuda) is missing
        return False


def _probe() -> tuple[list[str], str | None]:
    """The CUDA GPUs found, and why TensorRT cannot run (``None`` when it can)."""
    gpus = cuda_gpu_names()
    if not gpus:
        return gpus, "no CUDA GPU found: tensorrt needs one"
    missing = [package for module, package in _GPU_PACKAGES.items() if not _importable(module)]
    if missing:
        return (
            gpus,
            f"CUDA GPU {gpus[0]} found, but {' and '.join(missing)} not installed: pip install 'avatar-engine[gpu]'",
        )
    return gpus, None
