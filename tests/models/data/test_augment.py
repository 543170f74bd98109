"""Augmentations: exact SNRs, noise colours, reverb, phone band, determinism."""

import numpy as np
import pytest

from models.data import augment as aug

SR = 16000


def _speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Harmonics under a syllable-rate envelope, with pauses: enough like speech here."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * 140.0 * t
    voice = sum(np.sin(k * phase + seed) / k for k in range(1, 10))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t), 0.0, None)
    return (0.2 * voice * envelope).astype(np.float32)


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean64 = clean.astype(np.float64)
    return float(10 * np.log10(np.mean(clean64**2) / np.mean((noisy.astype(np.float64) - clean64) ** 2)))


@pytest.mark.parametrize("color", aug.NOISE_COLORS)
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_noise_at_the_asked_snr(color: aug.NoiseColor, snr_db: float) -> None:
    clean = _speechlike()
    noisy = aug.add_noise(clean, snr_db=snr_db, color=color, rng=np.random.default_rng(1))
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(_snr_db(clean, noisy) - snr_db) < 0.5


@pytest.mark.parametrize(("color", "slope"), [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_noise_colours_have_their_spectral_slope(color: aug.NoiseColor, slope: float) -> None:
    noise = aug.colored_noise(1 << 16, color, np.random.default_rng(2))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(noise.size, 1 / SR)
    band = (freqs > 50) & (freqs < 6000)
    fitted = np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.15)


def test_gain_scales_and_clips() -> None:
    x = np.array([0.1, -0.2, 0.5], np.float32)
    np.testing.assert_allclose(aug.apply_gain(x, -6.0206), x / 2, rtol=1e-4)
    np.testing.assert_array_equal(aug.apply_gain(x, 20.0), [1.0, -1.0, 1.0])


@pytest.mark.parametrize("rt60_s", [0.2, 0.7])
def test_rir_decays_60_db_in_rt60(rt60_s: float) -> None:
    rir = aug.synthetic_rir(np.random.default_rng(3), rt60_s=rt60_s, direct_to_reverb_db=0.0)
    assert rir[0] == 1.0
    tail = rir[1:] ** 2
    assert np.sum(tail) == pytest.approx(1.0)  # DRR 0 dB
    window = int(0.02 * SR)
    early = np.mean(tail[int(0.01 * SR) : int(0.01 * SR) + window])
    late_start = int((0.01 + rt60_s / 2) * SR)
    late = np.mean(tail[late_start : late_start + window])
    assert 10 * np.log10(early / late) == pytest.approx(30.0, abs=4.0)  # half of RT60: 30 dB


def test_reverb_keeps_alignment_and_level() -> None:
    clean = aug.colored_noise(SR, "white", np.random.default_rng(6)).astype(np.float32) * 0.1
    rir = aug.synthetic_rir(np.random.default_rng(4), rt60_s=0.5, direct_to_reverb_db=6.0)
    wet = aug.reverberate(clean, rir)
    assert wet.shape == clean.shape
    assert np.mean(wet.astype(np.float64) ** 2) == pytest.approx(np.mean(clean.astype(np.float64) ** 2), rel=1e-3)
    lags = np.arange(-200, 201)
    xcorr = [np.dot(clean[200:-200], np.roll(wet, -lag)[200:-200]) for lag in lags]
    assert lags[int(np.argmax(xcorr))] == 0


def test_telephone_removes_the_upper_band_and_keeps_length() -> None:
    noise = aug.colored_noise(SR, "white", np.random.default_rng(5)).astype(np.float32) * 0.1
    phone = aug.telephone(noise)
    assert phone.shape == noise.shape
    spectrum = np.abs(np.fft.rfft(phone.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(phone.size, 1 / SR)
    in_band = spectrum[(freqs > 500) & (freqs < 3000)].mean()
    assert spectrum[freqs > 4500].mean() < 1e-4 * in_band  # 40 dB down
    assert spectrum[freqs < 100].mean() < 0.1 * in_band  # high-passed


def test_augment_is_deterministic_given_the_generator() -> None:
    clean = _speechlike(2.0)
    config = aug.AugmentConfig(reverb_prob=1.0, noise_prob=1.0, telephone_prob=1.0, gain_prob=1.0)
    a = aug.augment(clean, np.random.default_rng(42), config)
    b = aug.augment(clean, np.random.default_rng(42), config)
    c = aug.augment(clean, np.random.default_rng(43), config)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == clean.shape and a.dtype == np.float32
    assert np.abs(a).max() <= 1.0


def test_silence_stays_silent_under_noise() -> None:
    silent = np.zeros(1000, np.float32)
    assert not aug.add_noise(silent, snr_db=10.0, color="pink", rng=np.random.default_rng(0)).any()
