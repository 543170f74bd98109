"""The AU smoother: its added latency measured on ramps and steps, jitter removed, first frame untouched."""

import math

import numpy as np
import pytest

from engine.au.smoothing import DEFAULT_MIN_CUTOFF_HZ, OneEuroFilter

FPS = 25


def filtered(signal: np.ndarray) -> np.ndarray:
    smoother = OneEuroFilter(rate_hz=FPS)
    return np.array([smoother(np.array([value]))[0] for value in signal])


def ramp_lag_s(speed_per_s: float) -> float:
    """How far behind a ramp of ``speed_per_s`` the output runs once settled (seconds)."""
    t = np.arange(4 * FPS) / FPS
    ramp = speed_per_s * t
    out = filtered(ramp)
    return float(np.mean((ramp[-FPS:] - out[-FPS:]) / speed_per_s))


def test_slow_movements_lag_by_the_stated_time_constant() -> None:
    stated_s = OneEuroFilter(rate_hz=FPS).max_lag_s()
    assert stated_s == pytest.approx(1 / (2 * math.pi * DEFAULT_MIN_CUTOFF_HZ))
    assert ramp_lag_s(0.01) == pytest.approx(stated_s, rel=0.02)  # 40 ms at the defaults


def test_fast_movements_lag_less() -> None:
    slow, speech_rate, fast = ramp_lag_s(0.5), ramp_lag_s(5.0), ramp_lag_s(20.0)
    assert slow > speech_rate > fast
    assert fast < 0.5 * OneEuroFilter(rate_hz=FPS).max_lag_s()


def test_a_step_is_half_way_within_a_frame() -> None:
    out = filtered(np.r_[np.zeros(10), np.full(10, 3.0)])
    assert out[10] >= 1.5 and out[12] >= 2.7  # first frame after the jump: over half of it


def test_jitter_at_rest_is_reduced_and_the_first_frame_passes() -> None:
    rng = np.random.default_rng(0)
    noisy = 1.0 + 0.02 * rng.normal(size=500)
    out = filtered(noisy)
    assert out[0] == np.float32(noisy[0])
    assert np.diff(out[50:]).std() < 0.5 * np.diff(noisy[50:]).std()
    assert abs(out[50:].mean() - 1.0) < 0.01


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        OneEuroFilter(rate_hz=FPS, min_cutoff_hz=0.0)
