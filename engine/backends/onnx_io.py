"""Names of the inputs and outputs in our ONNX exports, and the generator's input scaling, shared by every runtime."""

import numpy as np

from engine.au import AU_MAX_INTENSITY
from engine.errors import ModelFileError

GENERATOR_INPUTS = ("images", "aus")
GENERATOR_OUTPUTS = ("color", "mask")
CAUSE_MEL_INPUT = "mel"
CAUSE_AU_OUTPUT = "au"
LOOKAHEAD_METADATA_KEY = "lookahead_hops"
"""ONNX metadata_props key: a CAUSE step graph cannot run correctly without knowing
how many hops its outputs lag behind its inputs, so the export records it."""


def parse_lookahead(value: str | None, path: object) -> int:
    """The lookahead recorded in a CAUSE ONNX file, or a clear error if it is missing."""
    if value is None:
        raise ModelFileError(
            f"{path} has no '{LOOKAHEAD_METADATA_KEY}' metadata, so it is not a CAUSE step graph of ours "
            "(export one with `avatar export`, or give the CAUSE checkpoint)"
        )
    return int(value)


def cause_state_inputs(names: list[str]) -> list[str]:
    """The ``state_<i>`` input names of a CAUSE step graph, in index order."""
    states = [n for n in names if n.startswith("state_")]
    return sorted(states, key=lambda n: int(n.split("_")[1]))


def cause_state_outputs(count: int) -> list[str]:
    return [f"new_state_{i}" for i in range(count)]


def generator_feed(images: np.ndarray, aus: np.ndarray) -> dict[str, np.ndarray]:
    """Network inputs: contiguous float32, AUs scaled from 0..5 to the [0, 1] GANimation expects."""
    return {
        "images": np.ascontiguousarray(images, dtype=np.float32),
        "aus": np.ascontiguousarray(aus, dtype=np.float32) / np.float32(AU_MAX_INTENSITY),
    }
