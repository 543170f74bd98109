"""TensorRT on an NVIDIA GPU: the generator (FP16 by default) and the CAUSE step (FP32).

Engines are built by :mod:`engine.backends.tensorrt_build` from the same ONNX files the
CPU runtimes use. They are looked up beside the ONNX file (where ``avatar
export --trt`` writes them) and in the cache folder, and built into the cache
folder on first use (minutes for the generator, once per GPU model, TensorRT
version and weights).

Each engine runs in an :class:`~engine.backends.tensorrt_runner.EngineRunner`
(its own CUDA stream, buffers allocated once, CUDA graphs for shapes that
come back); this module adapts it to the two interfaces, and the generator's
outputs can stay on the device for the CUDA compositor
(:meth:`TensorRTGenerator.device_slices`).

Nothing here imports tensorrt or touches CUDA at import time: constructing a
backend without a GPU or the gpu extra raises BackendUnavailable that says so.
"""

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import cast

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
from engine.backends.tensorrt_runner import EngineRunner

ENGINE_CACHE_SUBDIR = "tensorrt"
"""Folder under the cache where engines built on first use go."""

log = logging.getLogger(__name__)


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
