"""OpenVINO on the CPU for the generator, in float32, bfloat16 (on CPUs with AVX-512 BF16 or AMX) or int8.

int8 runs an IR quantized beforehand (``engine.backends.openvino_int8``); the
operations it leaves unquantized run in bf16 where the CPU has it, else f32.

CAUSE steps run on ONNX Runtime even in the openvino backend (see
``engine.backends.registry``: per call, OpenVINO costs four times the CPU).

Thread pinning is off. OpenVINO pins its inference threads to cores by
default, and every compiled model pins from core 0 on: the threads of two
streams, or of two processes, end up sharing one core while the other idles:
two inferences at once each took about twice as long pinned as unpinned, and
the throughput simulation left several times more frames late (figures in
bench/README.md, "CPU serving setup").
"""

import queue
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.backends.base import BackendUnavailable, GeneratorBackend
from engine.backends.model_files import loading
from engine.backends.onnx_io import GENERATOR_OUTPUTS, generator_feed
from engine.errors import ModelFileError

Precision = Literal["f32", "bf16", "int8"]


def _core() -> Any:
    try:
        import openvino as ov
    except ImportError as exc:
        raise BackendUnavailable("openvino is not installed: pip install openvino") from exc
    return ov.Core()


def bf16_supported() -> bool:
    """Whether OpenVINO can run bfloat16 on this CPU (AVX-512 BF16 or AMX); False without openvino."""
    try:
        return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except BackendUnavailable:
        return False


def _compile(core: Any, model: Any, threads: int, precision: Precision, streams: int = 1) -> Any:
    """Compile for ``streams`` inferences at once, ``threads`` threads each."""
    has_bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if precision == "bf16" and not has_bf16:
        raise BackendUnavailable("this CPU has no bfloat16 support; use --precision f32")
    if precision == "int8":
        from engine.backends.openvino_int8 import is_int8_model

        if not is_int8_model(model):
            raise ModelFileError("--precision int8 needs the quantized generator that avatar quantize makes")
        precision = "bf16" if has_bf16 else "f32"  # for what the quantization left in floating point
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": streams,
        "INFERENCE_NUM_THREADS": threads * streams,
        "ENABLE_CPU_PINNING": False,
        "INFERENCE_PRECISION_HINT": precision,
    }
    return core.compile_model(model, "CPU", config)


def _run(request: Any, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Infer and copy the outputs out (OpenVINO reuses their memory on the next call)."""
    request.infer(feed)
    return [np.array(request.get_tensor(name).data, copy=True) for name in outputs]


class OpenVinoGenerator(GeneratorBackend):
    """``streams`` inference requests on one compiled model: that many ``run`` calls may overlap.

    On a busy CPU server, parallel single-threaded runs serve more sessions
    than one multi-threaded run at a time: a run split over threads waits at
    each layer for its slowest thread, and the other stages (CAUSE, colour
    conversion, encoding) keep taking cores from it.
    """

    name = "openvino"

    def __init__(self, model_path: Path, *, threads: int, precision: Precision = "f32", streams: int = 1) -> None:
        """``model_path``: the generator as ONNX, or as an OpenVINO IR (``.xml``; int8 needs a quantized one)."""
        if threads < 1 or streams < 1:
            raise ValueError(f"threads and streams must be at least 1, got {threads} and {streams}")
        core = _core()
        with loading(model_path, "generator", "OpenVINO"):
            model = core.read_model(str(model_path))
        compiled = _compile(core, model, threads, precision, streams)
        self.parallel_runs = streams
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(streams):
            request = compiled.create_infer_request()
            # OpenVINO's bindings (pybind11) look numpy's C API up once, on the first call that makes an
            # array, and two threads making that first call together deadlock: one waits for the GIL while
            # holding the lookup's once-flag, the other holds the GIL waiting on that flag (a server hung so on
            # its first two frames). Making the first such call here, on one thread, settles the lookup.
            _ = request.get_tensor(GENERATOR_OUTPUTS[0]).data
            self._idle.put(request)

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        request = self._idle.get()
        try:
            color, mask = _run(request, list(GENERATOR_OUTPUTS), generator_feed(images, aus))
        finally:
            self._idle.put(request)
        return color, mask
