"""TensorRT on an NVIDIA GPU: the generator (FP16 by default) and the CAUSE step (FP32).

Engines are built by :mod:`engine.backends.tensorrt_build` from the same ONNX files the
CPU runtimes use. They are looked up beside the ONNX file (where ``avatar
export --trt`` writes them) and in the cache folder, and built into the cache
folder on first use (minutes for the generator, once per GPU model, TensorRT
version and weights).

Each engine runs in an :class:`EngineRunner` on its own CUDA stream (NVIDIA's
cuda-python, ``cuda.bindings.runtime``): device buffers for every input and
output are allocated once for the largest shapes of the engine's profile and
reused (the generator's outputs can stay there for the CUDA compositor:
:meth:`TensorRTGenerator.device_slices`), host staging buffers are page-locked so that copies are asynchronous,
and a shape that comes back is captured into a CUDA graph so that later calls
launch the whole network at once instead of kernel by kernel.

Nothing here imports tensorrt or touches CUDA at import time: constructing a
backend without a GPU or the gpu extra raises BackendUnavailable that says so.
"""

import ctypes
import dataclasses
import logging
import math
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from engine.backends.base import AUStepBackend, BackendUnavailable, GeneratorBackend
from engine.backends.model_files import ModelSource, cache_dir, onnx_file
from engine.backends.onnx_io import (
    CAUSE_AU_OUTPUT,
    CAUSE_MEL_INPUT,
    GENERATOR_INPUTS,
    LOOKAHEAD_METADATA_KEY,
    cause_state_inputs,
    cause_state_outputs,
    generator_feed,
    parse_lookahead,
)
from engine.backends.selection import tensorrt_unavailable_reason
from engine.backends.tensorrt_build import (
    CAUSE_SPEC,
    GENERATOR_SPEC,
    TENSORRT_REQUIREMENT,
    EnginePrecision,
    EngineSpec,
    TensorRTUnavailable,
    build_engine,
    engine_file_name_for,
)

CUDA_GRAPH_AFTER_RUNS = 2
"""A shape is captured into a CUDA graph on its second run: the batch sizes a
steady set of sessions repeats get graphs, one-off shapes do not."""
MAX_CUDA_GRAPHS = 16
"""Captured shapes per engine. Each has its own execution context (TensorRT
keeps shape-dependent state in a context, so a graph must not share one with
other shapes); contexts share one scratch block, so each costs little memory."""
ENGINE_CACHE_SUBDIR = "tensorrt"

log = logging.getLogger(__name__)

ShapeKey = tuple[tuple[int, ...], ...]
"""The shapes of an engine's inputs, in input order: what a CUDA graph is captured for."""
DeviceTensor = tuple[int, tuple[int, ...]]
"""A tensor left on the GPU: its device address and shape."""


def _import_cuda() -> tuple[Any, Any]:
    """``tensorrt`` and ``cuda.bindings.runtime``, or BackendUnavailable saying what to install."""
    try:
        import tensorrt
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise BackendUnavailable(f"{TENSORRT_REQUIREMENT} ({exc})") from exc
    error, count = cudart.cudaGetDeviceCount()
    if int(error) != 0 or count < 1:
        raise BackendUnavailable(f"{TENSORRT_REQUIREMENT} (no usable CUDA GPU: {getattr(error, 'name', error)})")
    return tensorrt, cudart


def _check(result: tuple[Any, ...]) -> Any:
    """Unpack a cuda-python result ``(error, *values)``, raising on any error."""
    error, *values = result
    if int(error) != 0:
        raise RuntimeError(f"CUDA call failed: {getattr(error, 'name', error)}")
    return values[0] if len(values) == 1 else tuple(values)


@dataclass
class _CapturedShape:
    """A CUDA graph of one engine run at one input shape, and the context it was captured from."""

    context: Any
    executable: Any
    output_shapes: dict[str, tuple[int, ...]]


class EngineRunner:
    """One serialized TensorRT engine, run synchronously from numpy on its own CUDA stream.

    ``run`` copies the inputs into page-locked staging buffers and on to the
    device (async), executes (``execute_async_v3``, or a CUDA graph for a
    shape already seen ``CUDA_GRAPH_AFTER_RUNS`` times), copies the outputs
    back (async) and waits for the stream. Calls are serialized by a lock:
    one stream and one set of buffers per engine.
    """

    def __init__(self, engine_path: Path, *, max_graphs: int = MAX_CUDA_GRAPHS) -> None:
        trt, cudart = _import_cuda()
        self._trt, self._cudart = trt, cudart
        self._max_graphs = max_graphs
        self._lock = threading.Lock()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise RuntimeError(
                f"TensorRT could not load {engine_path} (built by another TensorRT version or for another GPU?); "
                "delete it and it is rebuilt"
            )
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        profiles = {n: engine.get_tensor_profile_shape(n, 0) for n in self.inputs}
        self.min_shapes = {n: tuple(profiles[n][0]) for n in self.inputs}
        self.max_shapes = {n: tuple(profiles[n][2]) for n in self.inputs}
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._stream = _check(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking))
        # One scratch block for every context of this engine: they only ever run one at a time, on one stream.
        self._scratch_bytes = int(engine.device_memory_size_v2)
        self._scratch = _check(cudart.cudaMalloc(self._scratch_bytes)) if self._scratch_bytes else 0
        self._context = self._new_context()
        largest: ShapeKey = tuple(self.max_shapes[n] for n in self.inputs)
        largest_outputs = self._set_shapes(self._context, largest)
        largest_shapes = {**self.max_shapes, **largest_outputs}
        elements = {n: math.prod(largest_shapes[n]) for n in names}
        self._device = {n: _check(cudart.cudaMalloc(elements[n] * self._dtypes[n].itemsize)) for n in names}
        self._host_pointers = {n: _check(cudart.cudaMallocHost(elements[n] * self._dtypes[n].itemsize)) for n in names}
        self._host = {n: _pinned_array(self._host_pointers[n], elements[n], self._dtypes[n]) for n in names}
        self._bind(self._context)
        self._current_key: ShapeKey = largest
        self._current_outputs = largest_outputs
        self._runs: Counter[ShapeKey] = Counter()
        self._graphs: dict[ShapeKey, _CapturedShape] = {}
        self._not_capturable: set[ShapeKey] = set()

    @property
    def graph_count(self) -> int:
        """Shapes captured into CUDA graphs so far."""
        return len(self._graphs)

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on ``feed`` (every input by name, within the profile); return every output as a float32 copy."""
        cudart = self._cudart
        with self._lock:
            output_shapes = self._enqueue(feed)
            results = {}
            for name in self.outputs:
                shape = output_shapes[name]
                staged = self._host[name][: math.prod(shape)].reshape(shape)
                _check(
                    cudart.cudaMemcpyAsync(
                        staged.ctypes.data,
                        self._device[name],
                        staged.nbytes,
                        cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                        self._stream,
                    )
                )
                results[name] = staged
            _check(cudart.cudaStreamSynchronize(self._stream))
            return {name: staged.astype(np.float32, copy=True) for name, staged in results.items()}

    @contextmanager
    def on_device(self, feed: dict[str, np.ndarray]) -> Iterator[dict[str, DeviceTensor]]:
        """Run on ``feed`` and leave the outputs on the GPU: ``{name: (device address, shape)}``.

        The outputs are complete when the block starts (the engine's stream is
        synchronised, so kernels on any other stream may read them) and stay
        valid until it ends: the runner is held for the whole block, so no
        other run overwrites them. Output dtypes are the engine's (float32 for
        our generator engines, f16 ones included).
        """
        with self._lock:
            output_shapes = self._enqueue(feed)
            _check(self._cudart.cudaStreamSynchronize(self._stream))
            yield {name: (int(self._device[name]), output_shapes[name]) for name in self.outputs}

    def _enqueue(self, feed: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
        """Copy ``feed`` in and launch the engine on its stream (the caller holds the lock); the output shapes."""
        key: ShapeKey = tuple(tuple(np.shape(feed[n])) for n in self.inputs)
        self._check_profile(key)
        cudart = self._cudart
        for name in self.inputs:
            array = feed[name]
            staged = self._host[name][: array.size].reshape(array.shape)
            np.copyto(staged, array, casting="same_kind")
            _check(
                cudart.cudaMemcpyAsync(
                    self._device[name],
                    staged.ctypes.data,
                    staged.nbytes,
                    cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                    self._stream,
                )
            )
        self._runs[key] += 1
        captured = self._graphs.get(key)
        if captured is not None:
            _check(cudart.cudaGraphLaunch(captured.executable, self._stream))
            return captured.output_shapes
        if self._should_capture(key):
            return self._run_and_capture(key)
        return self._run_plain(key)

    def close(self) -> None:
        """Release the graphs, contexts, buffers and stream; the runner cannot be used afterwards."""
        cudart = self._cudart
        with self._lock:
            _check(cudart.cudaStreamSynchronize(self._stream))
            for captured in self._graphs.values():
                _check(cudart.cudaGraphExecDestroy(captured.executable))
            self._graphs.clear()
            self._context = None
            for pointer in self._device.values():
                _check(cudart.cudaFree(pointer))
            for pointer in self._host_pointers.values():
                _check(cudart.cudaFreeHost(pointer))
            if self._scratch:
                _check(cudart.cudaFree(self._scratch))
            _check(cudart.cudaStreamDestroy(self._stream))

    def _check_profile(self, key: ShapeKey) -> None:
        for name, shape in zip(self.inputs, key):
            low, high = self.min_shapes[name], self.max_shapes[name]
            if len(shape) != len(low) or not all(a <= s <= b for a, s, b in zip(low, shape, high)):
                raise ValueError(
                    f"{name} of shape {shape} is outside this engine's profile ({low} to {high}); "
                    "build the engine with a larger profile (engine.backends.tensorrt_build)"
                )

    def _new_context(self) -> Any:
        """An execution context that uses the shared scratch block instead of allocating its own."""
        context = self._engine.create_execution_context(self._trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        context.set_device_memory(self._scratch, self._scratch_bytes)
        return context

    def _bind(self, context: Any) -> None:
        for name, pointer in self._device.items():
            context.set_tensor_address(name, pointer)

    def _set_shapes(self, context: Any, key: ShapeKey) -> dict[str, tuple[int, ...]]:
        """Set the input shapes on ``context``; return the output shapes they imply."""
        for name, shape in zip(self.inputs, key):
            if not context.set_input_shape(name, shape):
                raise ValueError(f"TensorRT refused shape {shape} for {name}")
        return {name: tuple(context.get_tensor_shape(name)) for name in self.outputs}

    def _execute(self, context: Any) -> None:
        if not context.execute_async_v3(int(self._stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed; see its log above")

    def _should_capture(self, key: ShapeKey) -> bool:
        return (
            self._runs[key] >= CUDA_GRAPH_AFTER_RUNS
            and len(self._graphs) < self._max_graphs
            and key not in self._not_capturable
        )

    def _run_plain(self, key: ShapeKey) -> dict[str, tuple[int, ...]]:
        """Run on the shared context, changing its shapes only when they differ from the last run's."""
        if key != self._current_key:
            self._current_outputs = self._set_shapes(self._context, key)
            self._current_key = key
        self._execute(self._context)
        return self._current_outputs

    def _run_and_capture(self, key: ShapeKey) -> dict[str, tuple[int, ...]]:
        """Run ``key`` on a new context (this call's outputs), then capture that context into a CUDA graph.

        TensorRT does one-off work on a context's first run at a new shape,
        which must stay out of the graph; trtexec runs once before capturing for
        the same reason (TensorRT samples/common/sampleInference.cpp). If the
        capture fails (an engine can hold operations that cannot be captured),
        the shape keeps running without a graph, as trtexec does.
        """
        cudart = self._cudart
        context = self._new_context()
        output_shapes = self._set_shapes(context, key)
        self._bind(context)
        self._execute(context)
        _check(cudart.cudaStreamSynchronize(self._stream))
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal  # as trtexec captures
        _check(cudart.cudaStreamBeginCapture(self._stream, mode))
        enqueued = context.execute_async_v3(int(self._stream))
        error, graph = cudart.cudaStreamEndCapture(self._stream)
        if not enqueued or int(error) != 0:
            if int(error) == 0:
                _check(cudart.cudaGraphDestroy(graph))
            cudart.cudaGetLastError()  # clear the failed capture's error so later calls do not see it
            self._not_capturable.add(key)
            log.warning("TensorRT engine run at %s cannot be captured into a CUDA graph; running it without", key)
            return output_shapes
        executable = _check(cudart.cudaGraphInstantiate(graph, 0))
        _check(cudart.cudaGraphDestroy(graph))
        self._graphs[key] = _CapturedShape(context, executable, output_shapes)
        return output_shapes


def _pinned_array(pointer: int, elements: int, dtype: np.dtype) -> np.ndarray:
    """A flat numpy view of ``elements`` items of page-locked host memory at ``pointer``."""
    raw = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_uint8))
    return np.ctypeslib.as_array(raw, (elements * dtype.itemsize,)).view(dtype)


class TensorRTGenerator(GeneratorBackend):
    """The generator engine (``runner``); batches beyond the engine's largest are run in slices."""

    name = "tensorrt"

    def __init__(self, engine_path: Path) -> None:
        self.runner = EngineRunner(engine_path)
        self._max_batch = self.runner.max_shapes[GENERATOR_INPUTS[0]][0]

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = generator_feed(images, aus)
        parts = [
            self.runner.run({name: array[start : start + self._max_batch] for name, array in feed.items()})
            for start in range(0, len(images), self._max_batch)
        ]
        return (np.concatenate([p["color"] for p in parts]), np.concatenate([p["mask"] for p in parts]))

    def device_slices(self, images: np.ndarray, aus: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
        """Run the batch, leaving colour and attention on the GPU for the CUDA compositor.

        Yields ``(start, stop, color address, mask address)`` per slice of at
        most the engine's largest batch: float32 (stop - start, 3, 128, 128) and
        (stop - start, 1, 128, 128), contiguous, valid until the next item is
        asked for (:meth:`EngineRunner.on_device` holds the engine meanwhile).
        """
        feed = generator_feed(images, aus)
        for start in range(0, len(images), self._max_batch):
            part = {name: array[start : start + self._max_batch] for name, array in feed.items()}
            with self.runner.on_device(part) as outputs:
                yield start, start + len(part[GENERATOR_INPUTS[0]]), outputs["color"][0], outputs["mask"][0]

    def close(self) -> None:
        """Free its GPU memory, stream and graphs now (a serving process keeps backends to the end)."""
        self.runner.close()


class TensorRTAUStep(AUStepBackend):
    """The CAUSE step engine (``runner``); more hops than it takes at once run in order, state carried."""

    name = "tensorrt"

    def __init__(self, engine_path: Path, *, lookahead_hops: int) -> None:
        self.runner = EngineRunner(engine_path)
        self.lookahead_hops = lookahead_hops
        self._state_names = cause_state_inputs(self.runner.inputs)
        self._state_tails = [self.runner.max_shapes[n][1:] for n in self._state_names]
        self._outputs = [CAUSE_AU_OUTPUT, *cause_state_outputs(len(self._state_names))]
        self._max_hops = self.runner.max_shapes[CAUSE_MEL_INPUT][1]

    def initial_state(self, batch_size: int) -> list[np.ndarray]:
        return [np.zeros((batch_size, *tail), np.float32) for tail in self._state_tails]

    def step(self, mel: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        aus = []
        for start in range(0, mel.shape[1], self._max_hops):
            feed = {CAUSE_MEL_INPUT: mel[:, start : start + self._max_hops], **dict(zip(self._state_names, state))}
            result = self.runner.run(feed)
            aus.append(result[CAUSE_AU_OUTPUT])
            state = [result[name] for name in self._outputs[1:]]
        return np.concatenate(aus, axis=1), state

    def close(self) -> None:
        """Free its GPU memory, stream and graphs now (a serving process keeps backends to the end)."""
        self.runner.close()


def engine_for(onnx_path: Path, spec: EngineSpec) -> Path:
    """The engine file for ``onnx_path``: found beside it or in the cache folder, else built into the cache."""
    try:
        name = engine_file_name_for(onnx_path, spec)
        cache = cache_dir() / ENGINE_CACHE_SUBDIR
        for folder in (onnx_path.parent, cache):
            if (folder / name).is_file():
                return folder / name
        log.warning(
            "building the TensorRT engine for %s (%s) once, into %s: minutes for the generator",
            onnx_path.name,
            spec.describe(),
            cache,
        )
        return build_engine(onnx_path, spec, cache / name)
    except TensorRTUnavailable as exc:
        raise BackendUnavailable(str(exc)) from exc


def create_tensorrt_backends(
    generator: ModelSource, cause: ModelSource, *, precision: str
) -> tuple[TensorRTGenerator, TensorRTAUStep]:
    """Both networks on TensorRT, the generator at ``precision`` (``f16`` or ``f32``), CAUSE at f32."""
    if precision not in ("f16", "f32"):
        raise ValueError(f"tensorrt runs the generator in f16 or f32, not {precision}")
    unavailable = tensorrt_unavailable_reason()
    if unavailable is not None:  # checked before any ONNX export, which can take seconds
        raise BackendUnavailable(f"{TENSORRT_REQUIREMENT} ({unavailable})")
    generator_onnx, cause_onnx = onnx_file(generator), onnx_file(cause)
    spec = dataclasses.replace(GENERATOR_SPEC, precision=cast(EnginePrecision, precision))
    generator_engine = engine_for(generator_onnx, spec)
    cause_engine = engine_for(cause_onnx, CAUSE_SPEC)
    return TensorRTGenerator(generator_engine), TensorRTAUStep(cause_engine, lookahead_hops=_lookahead(cause_onnx))


def _lookahead(cause_onnx: Path) -> int:
    """The lookahead recorded in the CAUSE export's metadata (engines carry no metadata)."""
    import onnx

    metadata = {prop.key: prop.value for prop in onnx.load(str(cause_onnx)).metadata_props}
    return parse_lookahead(metadata.get(LOOKAHEAD_METADATA_KEY), cause_onnx)
