"""Build TensorRT engines from our ONNX exports, and name them so that a cached one is found again.

An engine is specific to the GPU model, the TensorRT version, the ONNX graph
and the build settings; its file name records all four, so a cache folder can
hold engines for several GPUs and a changed checkpoint never picks up a stale
engine::

    generator-f16-b1-8-64-NVIDIA-H100-80GB-HBM3-trt11.4.0.106-0123456789abcdef-v1.engine

Precision: TensorRT 11 builds strongly typed networks only (the ``FP16``
builder flag is gone), so an ``f16`` engine is built from the ONNX graph
rewritten by :func:`engine.backends.onnx_fp16.to_float16`; it still takes and returns
float32. ``f32`` engines run with TF32 disabled, so that they agree with the
CPU runtimes to float32 rounding. The generator is built ``f16`` by default (it
is the compute: ~10 GMAC a frame at the reference width); CAUSE ``f32``
(0.3 M parameters, launch-bound, and its streaming must equal its offline
output, as on the CPU: ``engine.backends.registry``).

Optimization profiles are explicit: the batch axis (sessions rendered
together) and, for CAUSE, the hops axis (10 ms mel hops per step) each get a
``(min, opt, max)``; other axes are fixed by the export. A timing cache file per
GPU and TensorRT version (beside the engines) makes rebuilds fast.

Needs ``tensorrt`` and an NVIDIA GPU (the ``gpu`` extra); everything else in
this module (names, profiles) is pure and importable anywhere.
"""

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.errors import EngineError

ENGINE_FORMAT_VERSION = 1
"""Bumped whenever the build recipe changes (the FP16 rewrite, builder flags), so cached engines are rebuilt."""
TENSORRT_REQUIREMENT = "TensorRT engines need an NVIDIA GPU and the gpu extra: pip install 'avatar-engine[gpu]'"
"""The one sentence every TensorRT failure starts with, whatever is missing."""

NetworkName = Literal["generator", "cause"]
EnginePrecision = Literal["f16", "f32"]
Range = tuple[int, int, int]
"""(min, opt, max) of one dynamic axis: TensorRT supports every size from min to max and tunes for opt."""


class TensorRTUnavailable(EngineError, RuntimeError):
    """TensorRT cannot be used here: it is not installed, or there is no GPU."""


@dataclass(frozen=True, kw_only=True)
class EngineSpec:
    """What one engine is built for; every field is part of its file name.

    Attributes:
        network: which of our two ONNX graphs.
        precision: ``f16`` (float16 arithmetic, float32 inputs and outputs) or ``f32``.
        batch: (min, opt, max) batch size, axis 0 of every input.
        hops: (min, opt, max) mel hops per step, axis 1 of CAUSE's ``mel`` input;
            ``None`` for the generator, whose other axes are fixed.
    """

    network: NetworkName
    precision: EnginePrecision
    batch: Range
    hops: Range | None = None

    def __post_init__(self) -> None:
        for axis, values in (("batch", self.batch), ("hops", self.hops)):
            if values is not None and not 1 <= values[0] <= values[1] <= values[2]:
                raise ValueError(f"{axis} must be (min, opt, max) with 1 <= min <= opt <= max, got {values}")
        if (self.hops is None) != (self.network == "generator"):
            raise ValueError("hops is the CAUSE step's second axis: give it for cause, not for generator")

    @property
    def tag(self) -> str:
        """The build settings as a file-name fragment, e.g. ``f16-b1-8-64`` or ``f32-b1-1-64-h1-2-16``."""
        parts = [self.precision, "b" + "-".join(map(str, self.batch))]
        if self.hops is not None:
            parts.append("h" + "-".join(map(str, self.hops)))
        return "-".join(parts)

    def describe(self) -> str:
        axes = f"batch {self.batch[0]}..{self.batch[2]} (opt {self.batch[1]})"
        if self.hops is not None:
            axes += f", hops {self.hops[0]}..{self.hops[2]} (opt {self.hops[1]})"
        return f"{self.network} {self.precision}, {axes}"


GENERATOR_SPEC = EngineSpec(network="generator", precision="f16", batch=(1, 8, 64))
"""Up to 64 sessions in one render; tuned for 8, a busy but typical tick."""
CAUSE_SPEC = EngineSpec(network="cause", precision="f32", batch=(1, 1, 64), hops=(1, 2, 16))
"""Today each session steps alone, two hops per 20 ms audio packet; up to 64 streams and 160 ms at once."""
SPECS: dict[str, EngineSpec] = {"generator": GENERATOR_SPEC, "cause": CAUSE_SPEC}


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _slug(text: str) -> str:
    """Letters, digits, dots and dashes only: GPU names contain spaces and slashes."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def engine_file_name(spec: EngineSpec, *, gpu_name: str, tensorrt_version: str, onnx_sha256: str) -> str:
    """The cache file name of ``spec`` built from the ONNX file with hash ``onnx_sha256`` on this GPU and TensorRT."""
    return (
        f"{spec.network}-{spec.tag}-{_slug(gpu_name)}-trt{_slug(tensorrt_version)}"
        f"-{onnx_sha256[:16]}-v{ENGINE_FORMAT_VERSION}.engine"
    )


def timing_cache_file_name(*, gpu_name: str, tensorrt_version: str) -> str:
    """Kernel timings are valid for one GPU model and TensorRT version, shared by all our engines."""
    return f"timing-{_slug(gpu_name)}-trt{_slug(tensorrt_version)}.cache"


def profile_shapes(
    input_shapes: dict[str, tuple[int, ...]], spec: EngineSpec
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shape of every network input, from its shape with -1 for dynamic axes.

    Axis 0 is the batch; a dynamic axis 1 is the hops axis (CAUSE's ``mel``).
    Raises ValueError for any other dynamic axis, or hops the spec does not give.
    """
    profiles = {}
    for name, shape in input_shapes.items():
        rows: list[list[int]] = [list(shape), list(shape), list(shape)]
        for axis, size in enumerate(shape):
            if size != -1:
                continue
            if axis == 0:
                values = spec.batch
            elif axis == 1 and spec.hops is not None:
                values = spec.hops
            else:
                raise ValueError(f"input {name!r} has a dynamic axis {axis} that {spec.network} engines do not expect")
            for row, value in zip(rows, values):
                row[axis] = value
        profiles[name] = (tuple(rows[0]), tuple(rows[1]), tuple(rows[2]))
    return profiles


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or TensorRTUnavailable saying what to install."""
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(f"{TENSORRT_REQUIREMENT} (import tensorrt failed: {exc})") from exc
    return tensorrt


def gpu_name() -> str:
    """Name of CUDA device 0 (where engines are built and run), or TensorRTUnavailable."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise TensorRTUnavailable(f"{TENSORRT_REQUIREMENT} (import cuda.bindings failed: {exc})") from exc
    error, properties = cudart.cudaGetDeviceProperties(0)
    if int(error) != 0:
        raise TensorRTUnavailable(f"{TENSORRT_REQUIREMENT} (no usable CUDA GPU: {error.name})")
    return bytes(properties.name).split(b"\0")[0].decode()


def engine_file_name_for(onnx_path: Path, spec: EngineSpec) -> str:
    """The engine file name for ``onnx_path`` and ``spec`` on this machine's GPU and TensorRT."""
    trt = import_tensorrt()
    return engine_file_name(
        spec, gpu_name=gpu_name(), tensorrt_version=trt.__version__, onnx_sha256=file_sha256(onnx_path)
    )


def build_engine(onnx_path: Path, spec: EngineSpec, target: Path) -> Path:
    """Build the engine for ``onnx_path`` and ``spec`` into ``target``; returns ``target``.

    A build takes from seconds (CAUSE) to minutes (the generator over 64 batch
    sizes). It reads and updates the timing cache beside ``target``. Files
    appear atomically, so an interrupted build never leaves a truncated engine
    that a later run would take for a cached one.

    Raises:
        TensorRTUnavailable: no tensorrt, no cuda-python or no GPU.
        RuntimeError: TensorRT could not parse the graph or build the engine.
    """
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # STRONGLY_TYPED: the graph's tensor types decide precision (TensorRT 10 needs the flag
    # for that; TensorRT 11 is always strongly typed and ignores it).
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(_onnx_bytes(onnx_path, spec.precision)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for name, (smallest, typical, largest) in profile_shapes(inputs, spec).items():
        profile.set_shape(name, smallest, typical, largest)
    config.add_optimization_profile(profile)
    if spec.precision == "f32":
        config.clear_flag(trt.BuilderFlag.TF32)
    cache_path = target.with_name(timing_cache_file_name(gpu_name=gpu_name(), tensorrt_version=trt.__version__))
    timing_cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(timing_cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine for {onnx_path} ({spec.describe()}); see its log above")
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, bytes(serialized))
    _write_atomically(cache_path, bytes(config.get_timing_cache().serialize()))
    return target


def _onnx_bytes(onnx_path: Path, precision: EnginePrecision) -> bytes:
    """The graph TensorRT parses: the file as is for f32, its float16 rewrite for f16."""
    if precision == "f32":
        return onnx_path.read_bytes()
    try:
        import onnx
    except ImportError as exc:
        raise TensorRTUnavailable(f"{TENSORRT_REQUIREMENT} (f16 engines need onnx: {exc})") from exc
    from engine.backends.onnx_fp16 import to_float16

    return to_float16(onnx.load(str(onnx_path))).SerializeToString()


def _write_atomically(target: Path, data: bytes) -> None:
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)
