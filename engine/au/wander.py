"""Slow, aperiodic wandering signals: the stuff of idle motion, a pure function of time and seed.

Each channel is a sum of ``N_SINES`` sines whose frequencies are drawn in a
band (incommensurate, so the sum never repeats within any time a session
lasts) with random phases, scaled so that the channel stays in -1..1.
"""

import numpy as np

N_SINES = 3


class Wander:
    """``n_channels`` independent wandering signals in -1..1, frequencies in ``low_hz..high_hz``."""

    def __init__(self, n_channels: int, *, low_hz: float, high_hz: float, seed: int, stream: int) -> None:
        rng = np.random.default_rng([seed, stream])
        self._angular_hz = 2.0 * np.pi * rng.uniform(low_hz, high_hz, size=(n_channels, N_SINES))
        self._phase = rng.uniform(0.0, 2.0 * np.pi, size=(n_channels, N_SINES))
        self._weight = rng.uniform(0.5, 1.0, size=(n_channels, N_SINES))
        self._weight /= self._weight.sum(axis=1, keepdims=True)

    def __call__(self, time_s: float) -> np.ndarray:
        """(n_channels,) float64 values in -1..1 at ``time_s``."""
        return (self._weight * np.sin(self._angular_hz * time_s + self._phase)).sum(axis=1)
