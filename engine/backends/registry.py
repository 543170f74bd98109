"""Backends by name: a dict of factories, not an if/elif chain."""

from collections.abc import Callable
from dataclasses import dataclass

from engine.backends.base import AUStepBackend, GeneratorBackend
from engine.backends.model_files import ModelSource, load_torch_network, onnx_file

DEFAULT_BACKEND = "openvino"
"""Measured faster than ONNX Runtime on the generator on our 2-core CPU:
bench/results/backends-*.json, produced by ``python -m bench.backends``."""


@dataclass(frozen=True)
class BackendOptions:
    """How a runtime is set up.

    threads: intra-op threads per network (the dev and CI machines have 2 cores).
    precision: generator arithmetic, ``f32``, ``bf16`` (OpenVINO only) or ``f16``
        (TensorRT only); CAUSE always runs in f32 because it is cheap and its
        streaming must match offline.
    """

    threads: int = 2
    precision: str = "f32"


def _torch(gen: ModelSource, cause: ModelSource, opts: BackendOptions) -> tuple[GeneratorBackend, AUStepBackend]:
    from engine.backends.torch_backend import TorchAUStep, TorchGenerator

    return (
        TorchGenerator(load_torch_network(gen), threads=opts.threads),
        TorchAUStep(load_torch_network(cause), threads=opts.threads),
    )


def _onnxruntime(
    gen: ModelSource, cause: ModelSource, opts: BackendOptions
) -> tuple[GeneratorBackend, AUStepBackend]:
    from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep, OnnxRuntimeGenerator

    if opts.precision != "f32":
        raise ValueError(f"onnxruntime runs f32 only here, not {opts.precision}; use --backend openvino for bf16")
    return (
        OnnxRuntimeGenerator(onnx_file(gen), threads=opts.threads),
        OnnxRuntimeAUStep(onnx_file(cause), threads=opts.threads),
    )


def _openvino(gen: ModelSource, cause: ModelSource, opts: BackendOptions) -> tuple[GeneratorBackend, AUStepBackend]:
    from engine.backends.openvino_backend import OpenVinoAUStep, OpenVinoGenerator

    if opts.precision not in ("f32", "bf16"):
        raise ValueError(f"openvino precision must be f32 or bf16, not {opts.precision}")
    return (
        OpenVinoGenerator(onnx_file(gen), threads=opts.threads, precision=opts.precision),  # type: ignore[arg-type]
        OpenVinoAUStep(onnx_file(cause), threads=opts.threads),
    )


def _tensorrt(gen: ModelSource, cause: ModelSource, opts: BackendOptions) -> tuple[GeneratorBackend, AUStepBackend]:
    from engine.backends.tensorrt_backend import create_tensorrt_backends

    return create_tensorrt_backends(gen, cause, precision=opts.precision)


BACKENDS: dict[str, Callable[[ModelSource, ModelSource, BackendOptions], tuple[GeneratorBackend, AUStepBackend]]] = {
    "torch": _torch,
    "onnxruntime": _onnxruntime,
    "openvino": _openvino,
    "tensorrt": _tensorrt,
}


def create_backends(
    name: str, generator: ModelSource, cause: ModelSource, options: BackendOptions | None = None
) -> tuple[GeneratorBackend, AUStepBackend]:
    """The generator and CAUSE runtimes of backend ``name``."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}") from None
    return factory(generator, cause, options or BackendOptions())
