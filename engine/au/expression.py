"""Per-session expression control: the "sliders" that bias what the speech drives.

Applied to every AU frame after estimation: ``clip(aus * gain + bias, 0, 5)``.
A smile slider is a bias on AU06 and AU12; muting the brows is a gain of 0 on
AU01, AU02 and AU04.
"""

from dataclasses import dataclass, field

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY, N_AUS, au_index


def _zeros() -> np.ndarray:
    return np.zeros(N_AUS, np.float32)


def _ones() -> np.ndarray:
    return np.ones(N_AUS, np.float32)


@dataclass
class ExpressionControl:
    """bias: (17,) intensities added, in -5..5; gain: (17,) factors, in 0..4."""

    bias: np.ndarray = field(default_factory=_zeros)
    gain: np.ndarray = field(default_factory=_ones)

    def set(self, name: str, *, bias: float | None = None, gain: float | None = None) -> None:
        """Change one AU's slider; values outside the documented ranges are refused, not clipped."""
        i = au_index(name)
        if bias is not None:
            if not -AU_MAX_INTENSITY <= bias <= AU_MAX_INTENSITY or not np.isfinite(bias):
                raise ValueError(f"bias for {name} must be in -5..5, got {bias}")
            self.bias[i] = bias
        if gain is not None:
            if not 0.0 <= gain <= 4.0 or not np.isfinite(gain):
                raise ValueError(f"gain for {name} must be in 0..4, got {gain}")
            self.gain[i] = gain

    def apply(self, aus: np.ndarray) -> np.ndarray:
        """(..., 17) intensities -> biased, scaled and clamped to 0..5 (a new array)."""
        return np.clip(aus * self.gain + self.bias, 0.0, AU_MAX_INTENSITY).astype(np.float32)
