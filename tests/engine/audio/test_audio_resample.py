"""AudioConverter: any rate, channels, dtype and chunking -> 16 kHz mono float32."""

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, AudioConverter, AudioFormatError

RATES_HZ = [8_000, 16_000, 22_050, 44_100, 48_000]
TONE_HZ = 997.0  # below every input's Nyquist, not a divisor of any rate


def tone(rate_hz: int, seconds: float, channels: int, dtype: type) -> np.ndarray:
    """A sine, shape (n, channels): channel c has amplitude 0.6 / (c + 1), so the
    channel average has amplitude 0.6 * mean(1 / (c + 1))."""
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    amplitudes = 0.6 / (np.arange(channels) + 1.0)
    x = np.sin(2 * np.pi * TONE_HZ * t)[:, None] * amplitudes
    if dtype is np.int16:
        return np.round(x * 32767).astype(np.int16)
    return x.astype(dtype)


def convert(x: np.ndarray, rate_hz: int, chunk: int | list[int] | None = None) -> np.ndarray:
    """Whole stream through a fresh converter (push in chunks, then flush)."""
    converter = AudioConverter(input_rate_hz=rate_hz, channels=x.shape[1] if x.ndim == 2 else 1)
    sizes = [x.shape[0] or 1] if chunk is None else ([chunk] if isinstance(chunk, int) else chunk)
    pieces = []
    start = 0
    i = 0
    while start < x.shape[0]:
        size = sizes[i % len(sizes)]
        pieces.append(converter.push(x[start : start + size]))
        start += size
        i += 1
    pieces.append(converter.flush())
    out = np.concatenate(pieces)
    assert out.dtype == np.float32
    assert converter.output_samples == out.size
    return out


def expected_length(n_in: int, rate_hz: int) -> int:
    return round(n_in * SAMPLE_RATE_HZ / rate_hz)


@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_rate_length_frequency_and_level(rate_hz: int, channels: int, dtype: type) -> None:
    x = tone(rate_hz, 1.0, channels, dtype)
    out = convert(x, rate_hz, chunk=rate_hz // 50)  # 20 ms chunks
    assert out.size == expected_length(x.shape[0], rate_hz)
    # Frequency: 1 s at 16 kHz gives 1 Hz FFT bins.
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    peak_hz = spectrum.argmax() * SAMPLE_RATE_HZ / out.size
    assert abs(peak_hz - TONE_HZ) <= 1.0
    # Level: the channel average, away from the edges.
    expected_amplitude = 0.6 * np.mean(1.0 / (np.arange(channels) + 1.0))
    rms = np.sqrt(np.mean(out[1000:-1000] ** 2))
    assert rms == pytest.approx(expected_amplitude / np.sqrt(2), rel=0.01)


@pytest.mark.parametrize("rate_hz", [*RATES_HZ, 11_025, 32_000])
@pytest.mark.parametrize("chunk", [1, 100, None], ids=["1", "100", "whole"])
def test_total_length_after_flush_is_exact(rate_hz: int, chunk: int | None) -> None:
    # Includes streams shorter than the resampler's filter, which FFmpeg's own
    # flush would shorten by up to 2 ms.
    for n_in in [1, 2, 3, 17, 31, 89, 159, 441, 2_345]:
        out = convert(tone(rate_hz, n_in / rate_hz, 1, np.float32), rate_hz, chunk=chunk)
        assert out.size == expected_length(n_in, rate_hz), n_in


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_output_is_time_aligned_with_input(rate_hz: int) -> None:
    """The resampler delays output (holds samples back) but does not shift it."""
    x = np.zeros((rate_hz, 1), dtype=np.float32)
    x[rate_hz // 2] = 1.0  # impulse at 0.5 s
    out = convert(x, rate_hz, chunk=rate_hz // 50)
    assert abs(int(np.abs(out).argmax()) - SAMPLE_RATE_HZ // 2) <= 1


@pytest.mark.parametrize(("rate_hz", "max_held"), [(8_000, 40), (22_050, 20), (44_100, 20), (48_000, 20)])
def test_resampler_holds_back_only_a_couple_of_milliseconds(rate_hz: int, max_held: int) -> None:
    """The documented delay: ~16 output samples (1 ms) when downsampling,
    ~32 (2 ms) from 8 kHz, in steady state with 20 ms chunks."""
    chunk = rate_hz // 50
    x = tone(rate_hz, 1.0, 1, np.float32)
    converter = AudioConverter(input_rate_hz=rate_hz, channels=1)
    for start in range(0, x.shape[0], chunk):
        converter.push(x[start : start + chunk])
        held = (start + chunk) * SAMPLE_RATE_HZ / rate_hz - converter.output_samples
        assert 0 <= held <= max_held


# Chunking: the resampler computes output sample k from the same input samples
# with the same filter phase however the input was split, so only float32
# rounding could differ. It measures exactly 0 here; 1e-6 (about 2**-20 of full
# scale, 30x below one int16 step) leaves room for a build that rounds
# differently without hiding a real discontinuity (those are >= 1e-3).
CHUNKINGS = [1, 7, 160, 441, 1000, [int(n) for n in np.random.default_rng(3).integers(0, 2000, 50)]]


@pytest.mark.parametrize("rate_hz", [8_000, 22_050, 44_100])
@pytest.mark.parametrize("chunk", CHUNKINGS, ids=["1", "7", "160", "441", "1000", "random"])
def test_chunking_gives_the_same_output_as_one_push(rate_hz: int, chunk: int | list[int]) -> None:
    rng = np.random.default_rng(rate_hz)
    noise = 0.05 * rng.standard_normal((rate_hz // 2, 2))
    x = (tone(rate_hz, 0.5, 2, np.float64) + noise).astype(np.float32)
    whole = convert(x, rate_hz)
    chunked = convert(x, rate_hz, chunk=chunk)
    assert chunked.size == whole.size
    assert np.abs(chunked - whole).max() <= 1e-6


def test_16k_mono_passes_through_exactly_and_without_delay() -> None:
    converter = AudioConverter(input_rate_hz=16_000, channels=1)
    x = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    for start in range(0, 1000, 37):
        np.testing.assert_array_equal(converter.push(x[start : start + 37]), x[start : start + 37])
    assert converter.flush().size == 0
    assert converter.output_samples == 1000
    pcm = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    np.testing.assert_array_equal(converter.push(pcm), pcm.astype(np.float32) / 32768)


@pytest.mark.parametrize("rate_hz", [16_000, 48_000])
def test_stereo_is_the_average_of_the_channels(rate_hz: int) -> None:
    left = tone(rate_hz, 0.25, 1, np.float32)[:, 0]
    opposite = convert(np.stack([left, -left], axis=1), rate_hz)
    assert np.abs(opposite).max() <= 1e-7
    left_only = convert(np.stack([left, np.zeros_like(left)], axis=1), rate_hz)
    np.testing.assert_allclose(left_only, 0.5 * convert(left, rate_hz), atol=1e-7)


def test_int16_and_float_inputs_agree() -> None:
    pcm = tone(44_100, 0.25, 2, np.int16)
    np.testing.assert_allclose(convert(pcm, 44_100), convert(pcm.astype(np.float32) / 32768, 44_100), atol=1e-7)


def test_output_is_clipped_to_full_scale() -> None:
    loud = 3.0 * tone(22_050, 0.1, 1, np.float64)
    out = convert(loud, 22_050)
    assert out.min() == -1.0 and out.max() == 1.0


def test_empty_chunks_are_accepted_and_produce_nothing() -> None:
    for rate_hz in [16_000, 44_100]:
        converter = AudioConverter(input_rate_hz=rate_hz, channels=2)
        for empty in [np.zeros((0, 2), dtype=np.int16), np.zeros((0, 2), dtype=np.float32)]:
            out = converter.push(empty)
            assert out.shape == (0,) and out.dtype == np.float32
        assert converter.flush().size == 0
        assert converter.output_samples == 0


def test_a_new_stream_after_flush_continues_the_clock() -> None:
    converter = AudioConverter(input_rate_hz=48_000, channels=1)
    x = tone(48_000, 0.1, 1, np.float32)
    first = np.concatenate([converter.push(x), converter.flush()])
    second = np.concatenate([converter.push(x), converter.flush()])
    np.testing.assert_array_equal(first, second)
    assert converter.output_samples == first.size + second.size == 2 * 1600


@pytest.mark.parametrize(
    ("rate_hz", "channels"),
    [(7_999, 1), (48_001, 1), (96_000, 2), (44_100.0, 1), (True, 1)] + [(16_000, 0), (16_000, 9), (16_000, 1.5)],
)
def test_unsupported_stream_is_rejected(rate_hz: object, channels: object) -> None:
    with pytest.raises(AudioFormatError, match="accepted"):
        AudioConverter(input_rate_hz=rate_hz, channels=channels)  # type: ignore[arg-type]


BAD_STEREO_CHUNKS = {
    "three channels": np.zeros((10, 3), dtype=np.float32),
    "flat": np.zeros(20, dtype=np.float32),
    "three dims": np.zeros((10, 2, 1), dtype=np.float32),
    "int32": np.zeros((10, 2), dtype=np.int32),
    "uint8": np.zeros((10, 2), dtype=np.uint8),
    "nan": np.array([[0.1, np.nan]] * 10, dtype=np.float32),
    "inf": np.array([[0.1, -np.inf]] * 10, dtype=np.float64),
}


@pytest.mark.parametrize("rate_hz", [16_000, 44_100])
@pytest.mark.parametrize("bad", BAD_STEREO_CHUNKS.values(), ids=BAD_STEREO_CHUNKS.keys())
def test_bad_chunk_is_rejected_and_the_stream_goes_on(rate_hz: int, bad: np.ndarray) -> None:
    x = tone(rate_hz, 0.2, 2, np.int16)
    half = x.shape[0] // 2
    converter = AudioConverter(input_rate_hz=rate_hz, channels=2)
    pieces = [converter.push(x[:half])]
    with pytest.raises(AudioFormatError, match="accepted") as error:
        converter.push(bad)
    assert isinstance(error.value, ValueError)
    pieces += [converter.push(x[half:]), converter.flush()]
    np.testing.assert_array_equal(np.concatenate(pieces), convert(x, rate_hz, chunk=half))
