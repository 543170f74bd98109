"""ONNX Runtime on the CPU."""

from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.base import AUStepBackend, BackendUnavailable, GeneratorBackend
from engine.backends.model_files import NetworkKind, loading
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


def _session(path: Path, threads: int, kind: NetworkKind) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime (a core dependency)") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle intra-op threads spin by default, taking the cores the other stages
    # need: with 2 simulated sessions (width 16) late frames fell from 37.5 % to 17.5 % without
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with loading(path, kind, "ONNX Runtime"):
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRuntimeGenerator(GeneratorBackend):
    name = "onnxruntime"

    def __init__(self, onnx_path: Path, *, threads: int) -> None:
        self._session = _session(onnx_path, threads, "generator")

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        color, mask = self._session.run(list(GENERATOR_OUTPUTS), generator_feed(images, aus))
        return color, mask


class OnnxRuntimeAUStep(AUStepBackend):
    name = "onnxruntime"

    def __init__(self, onnx_path: Path, *, threads: int) -> None:
        self._session = _session(onnx_path, threads, "cause")
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.lookahead_hops = parse_lookahead(metadata.get(LOOKAHEAD_METADATA_KEY), onnx_path)
        inputs = {i.name: i for i in self._session.get_inputs()}
        self._state_names = cause_state_inputs(list(inputs))
        self._state_shapes = [inputs[n].shape for n in self._state_names]
        self._outputs = [CAUSE_AU_OUTPUT, *cause_state_outputs(len(self._state_names))]

    def initial_state(self, batch_size: int) -> list[np.ndarray]:
        return [np.zeros((batch_size, *shape[1:]), np.float32) for shape in self._state_shapes]

    def step(self, mel: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        feed = {CAUSE_MEL_INPUT: np.ascontiguousarray(mel, dtype=np.float32)}
        feed.update(zip(self._state_names, state))
        au, *new_state = self._session.run(self._outputs, feed)
        return au, new_state
