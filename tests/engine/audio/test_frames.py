"""Decoded PyAV frames of every layout and sample format come out as one row per instant."""

import av
import numpy as np
import pytest

from engine.audio import frame_samples


def _stereo_ramp(n: int) -> np.ndarray:
    """(n, 2) int16: left rises, right falls, so a swapped or interleaved read shows."""
    left = np.arange(n, dtype=np.int16) * 100
    return np.stack([left, -left], axis=1)


def test_packed_s16_is_deinterleaved_and_stays_int16() -> None:
    expected = _stereo_ramp(300)
    frame = av.AudioFrame.from_ndarray(expected.reshape(1, -1), format="s16", layout="stereo")
    samples = frame_samples(frame)
    assert samples.dtype == np.int16
    np.testing.assert_array_equal(samples, expected)


def test_planar_float_is_transposed_and_stays_float32() -> None:
    expected = (_stereo_ramp(300) / 32768.0).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(expected.T), format="fltp", layout="stereo")
    samples = frame_samples(frame)
    assert samples.dtype == np.float32 and samples.flags.c_contiguous
    np.testing.assert_array_equal(samples, expected)


@pytest.mark.parametrize(("fmt", "dtype", "full_scale"), [("u8", np.uint8, 128), ("s32", np.int32, 2**31)])
def test_other_integer_formats_become_float_at_full_scale_one(fmt: str, dtype: type, full_scale: int) -> None:
    offset = 128 if dtype is np.uint8 else 0
    wanted = np.array([-1.0, -0.5, 0.0, 0.5], dtype=np.float64)
    raw = (wanted * full_scale + offset).astype(dtype)
    frame = av.AudioFrame.from_ndarray(raw.reshape(1, -1), format=fmt, layout="mono")
    samples = frame_samples(frame)
    assert samples.shape == (4, 1) and samples.dtype == np.float64
    np.testing.assert_allclose(samples[:, 0], wanted)
