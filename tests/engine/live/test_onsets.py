"""Speech onsets to the sample, whatever the chunking, format and rate."""

import numpy as np
import pytest

from engine.live.onsets import ONSET_LEVEL, OnsetDetector


def _bursts(rate_hz: int, starts_s: list[float], length_s: float = 0.2, seconds: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    audio = np.zeros_like(t, dtype=np.float32)
    for start in starts_s:
        inside = (t >= start) & (t < start + length_s)
        audio[inside] = 0.5 * np.sin(2 * np.pi * 300 * (t[inside] - start) + np.pi / 2)
    return audio


@pytest.mark.parametrize("rate_hz", [16_000, 48_000])
@pytest.mark.parametrize("chunk", [1, 160, 960, 10_000])
def test_onsets_after_pauses_are_found_to_the_sample(rate_hz: int, chunk: int) -> None:
    audio = _bursts(rate_hz, [0.5, 1.0, 1.35, 3.0])  # 1.35 follows the 1.0 burst after only 0.15 s: no onset
    detector = OnsetDetector(rate_hz)
    found = [i for start in range(0, audio.size, chunk) for i in detector.push(audio[start : start + chunk])]
    assert found == [8000, 16000, 48000]


def test_int16_stereo_counts_the_louder_channel() -> None:
    audio = (_bursts(48_000, [1.0]) * 32767).astype(np.int16)
    stereo = np.stack([np.zeros_like(audio), audio], axis=1)
    assert OnsetDetector(48_000).push(stereo) == [16000]
    assert OnsetDetector(48_000).push((stereo * (0.5 * ONSET_LEVEL)).astype(np.int16)) == []
