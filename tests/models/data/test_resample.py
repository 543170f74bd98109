"""The corpus's polyphase resampler: accurate in band, clean out of band, no delay."""

import numpy as np
import pytest

from models.data.resample import resample


@pytest.mark.parametrize(("rate_in", "rate_out"), [(22050, 16000), (16000, 8000), (8000, 16000), (44100, 16000)])
@pytest.mark.parametrize("freq_hz", [100.0, 1000.0, 3000.0])
def test_in_band_sine_is_exact_and_undelayed(rate_in: int, rate_out: int, freq_hz: float) -> None:
    t_in = np.arange(int(0.5 * rate_in)) / rate_in
    y = resample(np.sin(2 * np.pi * freq_hz * t_in + 0.3), rate_in, rate_out)
    assert y.dtype == np.float32
    assert y.size == -(-t_in.size * rate_out // rate_in)
    t_out = np.arange(y.size) / rate_out
    middle = slice(y.size // 8, -y.size // 8)  # away from the zero padding at the ends
    np.testing.assert_allclose(y[middle], np.sin(2 * np.pi * freq_hz * t_out[middle] + 0.3), atol=1e-3)


def test_above_the_new_nyquist_is_removed() -> None:
    rate_in, rate_out = 22050, 16000
    t = np.arange(rate_in) / rate_in
    y = resample(np.sin(2 * np.pi * 9000.0 * t), rate_in, rate_out)  # above 8 kHz: would alias to 7 kHz
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 1e-3  # more than 57 dB down


def test_odd_lengths_and_equal_rates() -> None:
    x = np.random.default_rng(0).standard_normal(769).astype(np.float32)
    assert resample(x, 16000, 16000).tobytes() == x.tobytes()
    assert resample(x, 22050, 16000).size == -(-769 * 320 // 441)
    assert resample(np.zeros(0), 22050, 16000).size == 0


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        resample(np.zeros((2, 10)), 16000, 8000)
    with pytest.raises(ValueError):
        resample(np.zeros(10), 0, 8000)
