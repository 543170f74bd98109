"""Backends by name: one :class:`BackendSpec` per runtime (what it runs, its defaults, its factory)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from engine.backends.base import AUStepBackend, BackendUnavailable, GeneratorBackend
from engine.backends.model_files import ModelSource, load_torch_network, onnx_file
from engine.errors import UsageError

DEFAULT_BACKEND = "openvino"
"""Measured faster than ONNX Runtime on the generator on our 2-core CPU:
bench/results/backends-*.json, produced by ``python -m bench.backends``."""


AU_THREADS = 1
"""Threads for a CAUSE step on the CPU runtimes. A step is too small to split:
a second thread costs CPU for no gain in wall time (bench/README.md, "CPU
serving setup"); the AU worker runs 50 steps a second per session."""


@dataclass(frozen=True)
class BackendOptions:
    """How a runtime is set up (``engine.backends.selection.default_options`` picks them per backend).

    threads: intra-op threads per generator run. CAUSE runs on ``AU_THREADS``,
        except under torch, whose thread count is one setting for the process.
    streams: generator runs that may overlap, each on its own thread
        (OpenVINO only; 1 elsewhere).
    precision: generator arithmetic, ``f32``, ``bf16`` or ``int8`` (OpenVINO only;
        int8 runs a generator quantized beforehand) or ``f16`` (TensorRT only);
        CAUSE always runs in f32 because it is cheap and its streaming must
        match offline.
    """

    threads: int = 1
    streams: int = 1
    precision: str = "f32"

    def __post_init__(self) -> None:
        if self.threads < 1 or self.streams < 1:
            raise UsageError(f"threads and streams must be at least 1, got {self.threads} and {self.streams}")

    def describe(self) -> str:
        """One line for the logs, e.g. ``generator bf16, 2 runs at once x 1 thread``."""
        runs = f"{self.streams} runs at once x " if self.streams > 1 else ""
        return f"generator {self.precision}, {runs}{self.threads} thread{'s' if self.threads > 1 else ''}"


Factory = Callable[[ModelSource, ModelSource, BackendOptions], tuple[GeneratorBackend, AUStepBackend]]
"""Builds the generator and CAUSE runtimes from the two model sources and the options."""


@dataclass(frozen=True)
class BackendSpec:
    """Everything selection, the options and the scheduler know about one runtime, in one place.

    name: the ``--backend`` value.
    factory: builds both runtimes; it may assume ``precision`` is one of
        ``precisions`` and ``streams`` is 1 unless ``parallel_runs``.
    precisions: generator arithmetic it runs; the first is the default
        (OpenVINO's bf16 is picked at run time, where the CPU has it:
        ``engine.backends.selection.default_precision``).
    parallel_runs: whether several generator calls may be in flight at once
        (``streams`` > 1, each on its own thread).
    default_max_batch: frames per generator call when none is asked for.
    """

    name: str
    factory: Factory
    precisions: tuple[str, ...] = ("f32",)
    parallel_runs: bool = False
    default_max_batch: int = 1

    def check(self, options: BackendOptions) -> None:
        """UsageError when ``options`` ask for what this runtime does not do."""
        check_streams(self.name, options.streams)
        if options.precision not in self.precisions:
            *others, last = self.precisions
            listed = f"{', '.join(others)} or {last}" if others else last
            runners = [name for name, other in BACKENDS.items() if options.precision in other.precisions]
            hint = f"; {options.precision} needs --backend {' or '.join(runners)}" if runners else ""
            raise UsageError(f"{self.name} runs the generator in {listed}, not {options.precision}{hint}")


def check_streams(backend: str, streams: int) -> None:
    """UsageError when ``streams`` > 1 is asked of a backend that runs one generator call at a time."""
    spec = BACKENDS.get(backend)
    if streams != 1 and (spec is None or not spec.parallel_runs):
        parallel = ", ".join(name for name, other in BACKENDS.items() if other.parallel_runs)
        raise UsageError(f"{backend} runs one generator call at a time; --streams > 1 needs --backend {parallel}")


def _torch(gen: ModelSource, cause: ModelSource, opts: BackendOptions) -> tuple[GeneratorBackend, AUStepBackend]:
    from engine.backends.torch_backend import TorchAUStep, TorchGenerator

    return (
        TorchGenerator(load_torch_network(gen), threads=opts.threads),
        TorchAUStep(load_torch_network(cause), threads=opts.threads),
    )


def _onnxruntime(gen: ModelSource, cause: ModelSource, opts: BackendOptions) -> tuple[GeneratorBackend, AUStepBackend]:
    from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep, OnnxRuntimeGenerator

    return (
        OnnxRuntimeGenerator(onnx_file(gen), threads=opts.threads),
        OnnxRuntimeAUStep(onnx_file(cause), threads=AU_THREADS),
    )


def _openvino(gen: ModelSource, cause: ModelSource, opts: BackendOptions) -> tuple[GeneratorBackend, AUStepBackend]:
    """OpenVINO for the generator; CAUSE on ONNX Runtime, which steps it for a quarter of the CPU time.

    A CAUSE step is a few small convolutions on 1-2 hops, so per-call overhead
    is most of its cost, and ONNX Runtime's is the smaller (figures in
    bench/README.md, "CPU serving setup").
    """
    from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep
    from engine.backends.openvino_backend import OpenVinoGenerator, Precision

    return (
        OpenVinoGenerator(
            _openvino_generator_file(gen, opts.precision),
            threads=opts.threads,
            precision=cast(Precision, opts.precision),
            streams=opts.streams,
        ),
        OnnxRuntimeAUStep(onnx_file(cause), threads=AU_THREADS),
    )


def _openvino_generator_file(gen: ModelSource, precision: str) -> Path:
    """The file OpenVINO loads: an IR as given; for int8, the IR built from the generator's ONNX file."""
    if gen.is_openvino_ir:
        assert gen.path is not None
        return gen.path
    onnx = onnx_file(gen)
    if precision != "int8":
        return onnx
    from engine.backends.openvino_int8 import find_int8_ir

    int8 = find_int8_ir(onnx)
    if int8 is None:
        given = f" --generator {gen.path}" if gen.path is not None else ""
        raise BackendUnavailable(
            f"no int8 generator built from {onnx} yet; build it once (needs pip install 'avatar-engine[quantize]'): "
            f"avatar quantize{given}"
        )
    return int8


def _tensorrt(gen: ModelSource, cause: ModelSource, opts: BackendOptions) -> tuple[GeneratorBackend, AUStepBackend]:
    from engine.backends.tensorrt_backend import create_tensorrt_backends

    return create_tensorrt_backends(gen, cause, precision=opts.precision)


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("torch", _torch),
        BackendSpec("onnxruntime", _onnxruntime),
        BackendSpec("openvino", _openvino, precisions=("f32", "bf16", "int8"), parallel_runs=True),
        BackendSpec("tensorrt", _tensorrt, precisions=("f16", "f32"), default_max_batch=8),
    )
}
"""Every runtime, by ``--backend`` name."""


def create_backends(
    name: str, generator: ModelSource, cause: ModelSource, options: BackendOptions | None = None
) -> tuple[GeneratorBackend, AUStepBackend]:
    """The generator and CAUSE runtimes of backend ``name`` (``options`` None: its defaults for serving)."""
    try:
        spec = BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}") from None
    if options is None:
        from engine.backends.selection import default_options  # selection imports this module

        options = default_options(name)
    spec.check(options)
    return spec.factory(generator, cause, options)
