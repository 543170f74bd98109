"""The two interfaces every runtime implements.

Arrays cross this boundary as numpy float32 so that the pipeline never needs to
know which runtime, or which device, computes them.
"""

from abc import ABC, abstractmethod

import numpy as np

from engine.errors import EngineError


class BackendUnavailable(EngineError, RuntimeError):
    """A runtime cannot be used here (its package is missing, or it needs a GPU)."""


class GeneratorBackend(ABC):
    """Runs the GANimation generator on a batch of face crops."""

    name: str
    parallel_runs: int = 1
    """How many ``run`` calls may be in flight at once, from different threads;
    the render scheduler renders that many batches at once."""

    @abstractmethod
    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Animate ``images`` with ``aus``.

        Args:
            images: (B, 3, 128, 128) float32 RGB in [-1, 1].
            aus: (B, 17) float32 AU intensities in 0..5 (the backend scales them
                by 1/5 as the network expects).

        Returns:
            color (B, 3, 128, 128) in [-1, 1] and attention mask (B, 1, 128, 128)
            in [0, 1]; the caller blends ``mask * images + (1 - mask) * color``.
        """


class AUStepBackend(ABC):
    """Runs one streaming step of the causal CAUSE network with explicit state."""

    name: str
    lookahead_hops: int

    @abstractmethod
    def initial_state(self, batch_size: int) -> list[np.ndarray]:
        """The zero left context a new stream starts from."""

    @abstractmethod
    def step(self, mel: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Consume ``mel`` (B, k, 80) log-mel hops; return raw causal outputs (B, k, 17)
        in 0..5 (not yet shifted by the lookahead) and the new state."""
