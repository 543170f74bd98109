"""Log-mel features: streaming equals offline, causal timing, spectral sanity, cost."""

import time
import tracemalloc

import numpy as np
import pytest

from engine.audio import (
    AudioFormatError,
    MelConfig,
    StreamingLogMel,
    hop_count,
    log_mel,
    mel_filterbank,
    silence_log_mel,
)

RATE_HZ = 16_000
CONFIG = MelConfig()


def speechlike_signal(seconds: float = 2.5, seed: int = 0) -> np.ndarray:
    """Chirp 100 Hz -> 6 kHz plus noise, with a stretch of digital silence
    (exercises the log floor) and a loud burst, float32 at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    sweep_hz_per_s = (6000.0 - 100.0) / seconds
    x = 0.4 * np.sin(2 * np.pi * (100.0 * t + 0.5 * sweep_hz_per_s * t**2))
    x += 0.02 * rng.standard_normal(t.size)
    x[RATE_HZ // 2 : RATE_HZ // 2 + 1000] = 0.0
    x[RATE_HZ : RATE_HZ + 800] *= 2.2
    return x.astype(np.float32)


def stream(signal: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Push ``signal`` through a fresh StreamingLogMel in chunks of ``sizes``
    (cycled), return all hops."""
    mel = StreamingLogMel(CONFIG)
    hops = []
    start = 0
    i = 0
    while start < signal.size:
        size = sizes[i % len(sizes)]
        hops.append(mel.push(signal[start : start + size]))
        start += size
        i += 1
    assert mel.hops_emitted == hop_count(signal.size, CONFIG)
    return np.concatenate(hops)


RANDOM_SIZES = [int(n) for n in np.random.default_rng(7).integers(0, 1200, size=97)]


@pytest.mark.parametrize(
    "sizes",
    [[1], [159], [160], [161], [320], [400], [1000], RANDOM_SIZES],
    ids=["1", "159", "160", "161", "320", "400", "1000", "random"],
)
def test_streaming_equals_offline(sizes: list[int]) -> None:
    signal = speechlike_signal()
    offline = log_mel(signal, CONFIG)
    streamed = stream(signal, sizes)
    assert offline.shape == (hop_count(signal.size, CONFIG), CONFIG.n_mels)
    assert streamed.shape == offline.shape
    assert streamed.dtype == offline.dtype == np.float32
    assert np.abs(streamed - offline).max() <= 1e-5  # the contract
    # The design goes further: every hop takes the same per-hop arithmetic
    # whatever the batch it arrives in (see engine/audio/mel.py), so the two
    # agree bit for bit. If a numpy upgrade breaks this, the contract above
    # still holds; look at the FFT and the band sums first.
    np.testing.assert_array_equal(streamed, offline)


def test_hop_is_emitted_exactly_when_its_last_sample_arrives() -> None:
    signal = speechlike_signal(seconds=0.1)
    mel = StreamingLogMel(CONFIG)
    last_samples = {t * CONFIG.hop_samples + CONFIG.window_samples - 1 for t in range(20)}
    for index in range(signal.size):
        emitted = mel.push(signal[index : index + 1])
        assert len(emitted) == (1 if index in last_samples else 0), index
        assert mel.hops_emitted == hop_count(index + 1, CONFIG)


def test_chunk_ending_on_a_hop_boundary_emits_that_hop() -> None:
    signal = speechlike_signal(seconds=0.1)
    mel = StreamingLogMel(CONFIG)
    assert len(mel.push(signal[:399])) == 0
    assert len(mel.push(signal[399:400])) == 1  # sample 399 completes hop 0
    assert len(mel.push(signal[400:559])) == 0
    assert len(mel.push(signal[559:879])) == 2  # samples 559 and 719 complete hops 1, 2
    assert len(mel.push(signal[879:880])) == 1  # sample 879 completes hop 3
    assert mel.hops_emitted == 4


@pytest.mark.parametrize(
    ("num_samples", "expected_hops"),
    [(0, 0), (1, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16_000, 98)],
)
def test_offline_hop_count(num_samples: int, expected_hops: int) -> None:
    assert hop_count(num_samples, CONFIG) == expected_hops
    signal = speechlike_signal(seconds=1.0)[:num_samples]
    assert log_mel(signal, CONFIG).shape == (expected_hops, CONFIG.n_mels)


def test_empty_push_returns_no_hops() -> None:
    hops = StreamingLogMel(CONFIG).push(np.zeros(0, dtype=np.float32))
    assert hops.shape == (0, CONFIG.n_mels) and hops.dtype == np.float32


def test_reset_starts_a_new_stream() -> None:
    signal = speechlike_signal(seconds=0.5)
    mel = StreamingLogMel(CONFIG)
    mel.push(signal[:1234])
    mel.reset()
    assert mel.hops_emitted == 0
    np.testing.assert_array_equal(mel.push(signal), log_mel(signal, CONFIG))


def test_float64_and_strided_input_give_the_same_features() -> None:
    signal = speechlike_signal(seconds=0.5)
    interleaved = np.stack([signal, np.zeros_like(signal)], axis=1).reshape(-1)[::2]
    reference = log_mel(signal, CONFIG)
    np.testing.assert_array_equal(log_mel(interleaved, CONFIG), reference)
    np.testing.assert_array_equal(log_mel(signal.astype(np.float64), CONFIG), reference)


def test_streaming_memory_stays_bounded() -> None:
    """Pushing 10 s allocates no more than pushing 1 s: nothing accumulates."""
    signal = speechlike_signal(seconds=10.0)
    chunk = 320
    mel = StreamingLogMel(CONFIG)
    tracemalloc.start()
    try:
        for start in range(0, RATE_HZ, chunk):
            mel.push(signal[start : start + chunk])
        after_one_second, _ = tracemalloc.get_traced_memory()
        for start in range(RATE_HZ, signal.size, chunk):
            mel.push(signal[start : start + chunk])
        after_ten_seconds, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after_ten_seconds - after_one_second < 16_000  # bytes; a 9 s buffer would be 1.1 MB


def test_one_khz_tone_lands_in_band_26() -> None:
    # Slaney scale: 8 kHz is 15 + 27 * ln(8) / ln(6.4) = 45.245 mel, so the 82
    # band edges are 45.245 / 81 = 0.5586 mel apart, and 1 kHz = 15 mel = 26.85
    # steps. Band m peaks at edge m + 1: band 26 at 27 steps (1005 Hz), band 25
    # at 26 steps (968 Hz). The tone must peak in band 26, for every hop.
    t = np.arange(RATE_HZ) / RATE_HZ
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    features = log_mel(tone, CONFIG)
    assert np.all(features.argmax(axis=1) == 26)
    # And it is a peak: 10 nats (43 dB) above the median band.
    assert np.all(features[:, 26] - np.median(features, axis=1) > 10.0)


def test_rising_tone_frequency_gives_non_decreasing_peak_band() -> None:
    t = np.arange(CONFIG.window_samples) / RATE_HZ
    peaks = [int(log_mel(np.sin(2 * np.pi * f * t), CONFIG)[0].argmax()) for f in np.geomspace(150.0, 7500.0, 40)]
    assert peaks == sorted(peaks)
    assert peaks[0] <= 5 and peaks[-1] >= CONFIG.n_mels - 3


def test_filterbank_covers_every_band() -> None:
    weights = mel_filterbank(CONFIG)
    assert weights.shape == (CONFIG.n_mels, CONFIG.n_fft // 2 + 1)
    assert np.all(weights >= 0.0)
    assert np.all(weights.max(axis=1) > 0.0)
    assert np.all(np.diff(weights.argmax(axis=1)) >= 0)


def test_silence_is_the_floor() -> None:
    floor = silence_log_mel(CONFIG)
    assert floor.shape == (CONFIG.n_mels,) and floor.dtype == np.float32
    np.testing.assert_array_equal(floor, np.float32(np.log(CONFIG.mel_floor)))
    np.testing.assert_array_equal(log_mel(np.zeros(400, dtype=np.float32), CONFIG)[0], floor)


@pytest.mark.parametrize(
    "changes",
    [
        {"hop_samples": 500},  # hop longer than the window would skip samples
        {"window_samples": 600},  # window longer than n_fft
        {"fmax_hz": 9000.0},  # above Nyquist
        {"fmin_hz": 8000.0},
        {"n_mels": 300},  # more bands than FFT bins can fill
        {"mel_floor": 0.0},
    ],
)
def test_inconsistent_config_is_rejected(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        MelConfig(**changes)


@pytest.mark.parametrize("bad", [np.zeros(400, dtype=np.int16), np.zeros((400, 2), dtype=np.float32)])
def test_non_mono_float_input_is_rejected(bad: np.ndarray) -> None:
    with pytest.raises(AudioFormatError, match="accepted"):
        log_mel(bad, CONFIG)
    mel = StreamingLogMel(CONFIG)
    with pytest.raises(AudioFormatError):
        mel.push(bad)
    assert len(mel.push(np.zeros(400, dtype=np.float32))) == 1  # still works


def test_streaming_cost_per_hop_is_well_under_a_millisecond() -> None:
    """20 ms chunks (2 hops each), best of 3 runs of 10 s of audio."""
    signal = speechlike_signal(seconds=10.0)
    chunk = 320
    best_per_hop_s = float("inf")
    for _ in range(3):
        mel = StreamingLogMel(CONFIG)
        started = time.perf_counter()
        for start in range(0, signal.size, chunk):
            mel.push(signal[start : start + chunk])
        best_per_hop_s = min(best_per_hop_s, (time.perf_counter() - started) / mel.hops_emitted)
    assert best_per_hop_s < 0.25e-3, f"{best_per_hop_s * 1e6:.0f} us per hop"
