"""Smoothing of the AU stream: a one-euro filter per AU (Casiez, Roussel and Vogel, CHI 2012).

The speech-driven AUs jitter by small amounts from frame to frame; a fixed
low-pass would trade that jitter for lag on every movement. The one-euro
filter adapts its cutoff to the speed of the signal: at rest it is a first
order low-pass at ``min_cutoff_hz`` (jitter removed), and the faster an AU
moves the higher the cutoff (``min_cutoff_hz + beta * |speed|``), so a mouth
opening on a syllable keeps up.

Added latency: a first-order low-pass at cutoff ``f`` delays a slowly moving
signal by ``1 / (2 pi f)`` (the steady-state lag of a ramp), so at most
``max_lag_s()`` = ``1 / (2 pi min_cutoff_hz)`` and less for fast movements.
The figures measured on ramps and steps are in bench/README.md ("Liveness").
"""

import math

import numpy as np

DEFAULT_MIN_CUTOFF_HZ = 4.0
DEFAULT_BETA = 0.5
"""Cutoff added per AU-intensity-per-second of speed, Hz / (1/s)."""
DEFAULT_SPEED_CUTOFF_HZ = 1.0


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    """The smoothing factor of a discrete first-order low-pass at ``cutoff_hz`` sampled every ``dt_s``."""
    tau_s = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau_s / dt_s)


class OneEuroFilter:
    """Filters (n,) vectors arriving every ``1 / rate_hz`` seconds, each element on its own."""

    def __init__(
        self,
        *,
        rate_hz: float,
        min_cutoff_hz: float = DEFAULT_MIN_CUTOFF_HZ,
        beta: float = DEFAULT_BETA,
        speed_cutoff_hz: float = DEFAULT_SPEED_CUTOFF_HZ,
    ) -> None:
        if min(rate_hz, min_cutoff_hz, speed_cutoff_hz) <= 0.0 or beta < 0.0:
            raise ValueError("rate and cutoffs must be positive and beta non-negative")
        self._dt_s = 1.0 / rate_hz
        self._min_cutoff_hz = min_cutoff_hz
        self._beta = beta
        self._speed_alpha = _alpha(speed_cutoff_hz, self._dt_s)
        self._value: np.ndarray | None = None
        self._speed = np.zeros(0)

    def max_lag_s(self) -> float:
        """The delay of a slowly moving signal (the most this filter adds), seconds."""
        return 1.0 / (2.0 * math.pi * self._min_cutoff_hz)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The filtered value of the next sample (a new float32 array); the first sample passes unchanged."""
        x = np.asarray(values, dtype=np.float64)
        if self._value is None:
            self._value, self._speed = x.copy(), np.zeros_like(x)
            return x.astype(np.float32)
        raw_speed = (x - self._value) / self._dt_s
        self._speed += self._speed_alpha * (raw_speed - self._speed)
        alpha = _alpha(self._min_cutoff_hz + self._beta * np.abs(self._speed), self._dt_s)
        self._value = self._value + alpha * (x - self._value)
        return self._value.astype(np.float32)
