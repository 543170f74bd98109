"""Voice activity and syllable prominence from log-mel hops: speech vs silence, stressed vs unstressed."""

import numpy as np
import pytest

from engine.au.prosody import ProsodyTracker
from engine.audio import log_mel
from tests.engine.au.speech import StressedSpeech, stressed_speech


@pytest.fixture(scope="module")
def speech() -> StressedSpeech:
    return stressed_speech()


def test_silence_and_faint_noise_are_not_voice() -> None:
    rng = np.random.default_rng(0)
    for audio in (np.zeros(32_000, np.float32), (0.001 * rng.normal(size=32_000)).astype(np.float32)):
        features = ProsodyTracker().push(log_mel(audio))
        assert not any(f.voiced for f in features) and all(f.prominence_db is None for f in features)


def test_vowels_are_voiced_and_stressed_ones_are_prominent(speech: StressedSpeech) -> None:
    features = ProsodyTracker().push(log_mel(speech.audio))
    voiced = np.array([f.voiced for f in features])
    vowel_hops = [int(t * 100) + 3 for t in speech.stressed_s + speech.unstressed_s]
    assert voiced[vowel_hops].mean() > 0.9

    nuclei = [(hop / 100, f.prominence_db) for hop, f in enumerate(features) if f.prominence_db is not None]

    def near(t: float, starts_s: list[float]) -> bool:
        return any(-0.03 <= t - s <= 0.15 for s in starts_s)

    at_stressed = [p for t, p in nuclei if near(t, speech.stressed_s)]
    at_unstressed = [p for t, p in nuclei if near(t, speech.unstressed_s) and not near(t, speech.stressed_s)]
    assert len(at_stressed) >= 0.8 * len(speech.stressed_s)
    assert np.mean(at_stressed) > np.mean(at_unstressed) + 2.0


def test_any_chunking_gives_the_same_features(speech: StressedSpeech) -> None:
    hops = log_mel(speech.audio[:48_000])
    whole = ProsodyTracker().push(hops)
    tracker = ProsodyTracker()
    pieces = [feature for start in range(0, len(hops), 7) for feature in tracker.push(hops[start : start + 7])]
    assert pieces == whole
