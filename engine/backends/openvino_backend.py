"""OpenVINO on the CPU, in float32 or bfloat16 (on CPUs with AVX-512 BF16 or AMX)."""

from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.backends.base import AUStepBackend, BackendUnavailable, GeneratorBackend
from engine.backends.onnx_io import (
    CAUSE_AU_OUTPUT,
    CAUSE_MEL_INPUT,
    GENERATOR_OUTPUTS,
    LOOKAHEAD_METADATA_KEY,
    cause_state_inputs,
    cause_state_outputs,
    generator_feed,
    parse_lookahead,
)

Precision = Literal["f32", "bf16"]


def _core() -> Any:
    try:
        import openvino as ov
    except ImportError as exc:
        raise BackendUnavailable("openvino is not installed: pip install openvino") from exc
    return ov.Core()


def _compile(core: Any, model: Any, threads: int, precision: Precision) -> Any:
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise BackendUnavailable("this CPU has no bfloat16 support; use --precision f32")
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": precision,
    }
    return core.compile_model(model, "CPU", config)


def _run(request: Any, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Infer and copy the outputs out (OpenVINO reuses their memory on the next call)."""
    request.infer(feed)
    return [np.array(request.get_tensor(name).data, copy=True) for name in outputs]


class OpenVinoGenerator(GeneratorBackend):
    name = "openvino"

    def __init__(self, onnx_path: Path, *, threads: int, precision: Precision = "f32") -> None:
        core = _core()
        self._request = _compile(core, core.read_model(str(onnx_path)), threads, precision).create_infer_request()

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        color, mask = _run(self._request, list(GENERATOR_OUTPUTS), generator_feed(images, aus))
        return color, mask


class OpenVinoAUStep(AUStepBackend):
    name = "openvino"

    def __init__(self, onnx_path: Path, *, threads: int, precision: Precision = "f32") -> None:
        core = _core()
        model = core.read_model(str(onnx_path))
        key = ["framework", LOOKAHEAD_METADATA_KEY]
        recorded = model.get_rt_info(key).astype(str) if model.has_rt_info(key) else None
        self.lookahead_hops = parse_lookahead(recorded, onnx_path)
        compiled = _compile(core, model, threads, precision)
        self._request = compiled.create_infer_request()
        inputs = {port.get_any_name(): port for port in compiled.inputs}
        self._state_names = cause_state_inputs(list(inputs))
        self._state_tails = [
            tuple(int(d.get_length()) for d in inputs[n].get_partial_shape()[1:]) for n in self._state_names
        ]
        self._outputs = [CAUSE_AU_OUTPUT, *cause_state_outputs(len(self._state_names))]

    def initial_state(self, batch_size: int) -> list[np.ndarray]:
        return [np.zeros((batch_size, *tail), np.float32) for tail in self._state_tails]

    def step(self, mel: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        feed = {CAUSE_MEL_INPUT: np.ascontiguousarray(mel, dtype=np.float32)}
        feed.update(zip(self._state_names, state))
        au, *new_state = _run(self._request, self._outputs, feed)
        return au, new_state
