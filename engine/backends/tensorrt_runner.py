"""A generic TensorRT engine runner: numpy in, numpy out, on its own CUDA stream, with CUDA graphs.

Knows nothing of the avatar's networks (:mod:`engine.backends.tensorrt_backend`
adapts it to the generator and CAUSE interfaces). Device buffers for every
input and output are allocated once for the largest shapes of the engine's
profile and reused (outputs can stay there: :meth:`EngineRunner.on_device`),
host staging buffers are page-locked so that copies are asynchronous, and a
shape that comes back is captured into a CUDA graph so that later calls launch
the whole network at once instead of kernel by kernel (NVIDIA's cuda-python,
``cuda.bindings.runtime``).

Nothing here imports tensorrt or touches CUDA at import time: constructing a
runner without a GPU or the gpu extra raises BackendUnavailable that says so.
"""

import ctypes
import logging
import math
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.base import BackendUnavailable
from engine.backends.tensorrt_build import TENSORRT_REQUIREMENT

CUDA_GRAPH_AFTER_RUNS = 2
"""A shape is captured into a CUDA graph on its second run: the batch sizes a
steady set of sessions repeats get graphs, one-off shapes do not."""
MAX_CUDA_GRAPHS = 16
"""Captured shapes per engine. Each has its own execution context (TensorRT
keeps shape-dependent state in a context, so a graph must not share one with
other shapes); contexts share one scratch block, so each costs little memory."""

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
