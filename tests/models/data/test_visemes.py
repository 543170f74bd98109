"""The labelling rules: mouth shapes, coarticulation, closures, brows, silence."""

import warnings

import numpy as np
import pytest

from engine.au.vocabulary import AU_NAMES
from engine.audio import SAMPLE_RATE_HZ
from models.data import visemes
from models.data.espeak import Phoneme, synthesize
from models.data.pitch import track_f0
from models.data.timing import hop_centres_ms, n_hops
from models.data.visemes import MOUTH_AUS, au_track, mouth_track, visemes_for

AU25 = AU_NAMES.index("AU25")
AU26 = AU_NAMES.index("AU26")
MAX_STEP_PER_HOP = 1.0  # AU intensity units per 10 ms; lips close in ~50 ms


def _col(name: str) -> int:
    return MOUTH_AUS.index(name)


def _phonemes(*spec: tuple[str, float]) -> list[Phoneme]:
    """Contiguous phonemes from (mnemonic, duration_ms), starting at 0."""
    out, t = [], 0.0
    for name, dur in spec:
        out.append(Phoneme(name, t, t + dur))
        t += dur
    return out


def _hop_at(ms: float) -> int:
    return int(round((ms - 12.5) / 10.0))


def test_tables_are_consistent() -> None:
    for name, vis in visemes.VISEMES.items():
        targets = vis.target_vector()
        assert targets.shape == (len(MOUTH_AUS),), name
        assert np.all((targets >= 0) & (targets <= 5)), name
        assert vis.lip_dominance > 0 and vis.jaw_dominance > 0, name
    for mnemonic, names in visemes.PHONEME_VISEMES.items():
        assert names and all(n in visemes.VISEMES for n in names), mnemonic


def test_lookup_strips_stress_and_modifiers() -> None:
    assert visemes_for("'oU") == visemes_for("oU")
    assert visemes_for(",a") == visemes_for("a")
    assert visemes_for("l/2") == visemes_for("l")
    assert visemes_for("_:") == (visemes.VISEMES["SILENCE"],)
    assert len(visemes_for("aI")) == 2  # diphthong: open, then spread
    with pytest.warns(UserWarning, match="no viseme"):
        assert visemes_for("Q!") == (visemes.VISEMES["SCHWA"],)


def test_espeak_english_phonemes_need_no_fallback() -> None:
    text = "The judge pushed a big yellow boat through the thick fog, and we sang with joy."
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for voice in ("en", "en-us", "en-gb-scotland", "en-029", "en-gb-x-rp"):
            for p in synthesize(text, voice=voice).phonemes:
                visemes_for(p.mnemonic)


def test_open_vowel_opens_the_jaw_and_silence_is_neutral() -> None:
    phonemes = _phonemes(("_", 300), ("A:", 250), ("_", 400))
    track = mouth_track(phonemes, 95)
    middle = _hop_at(425)
    assert track[middle, _col("AU26")] > 2.8
    assert track[middle, _col("AU25")] > 2.8
    for ms in (50, 100, 850, 900):
        assert np.abs(track[_hop_at(ms)]).max() < 0.05, ms


def test_bilabial_closes_the_lips_between_open_vowels() -> None:
    phonemes = _phonemes(("a", 200), ("p", 90), ("a", 200))
    track = mouth_track(phonemes, 49)
    closure = _hop_at(245)
    assert track[closure, _col("AU25")] < 0.2
    assert track[closure, _col("AU23")] > 1.0  # lips pressed
    assert track[_hop_at(100), _col("AU25")] > 2.5
    assert track[_hop_at(390), _col("AU25")] > 2.5


def test_rounding_is_anticipated_through_tongue_consonants() -> None:
    """In 'stew' the lips round during s and t, before the vowel starts."""
    phonemes = _phonemes(("_", 300), ("s", 100), ("t", 60), ("u:", 200), ("_", 300))
    track = mouth_track(phonemes, 95)
    vowel_onset = 460.0
    assert track[_hop_at(vowel_onset - 40), _col("AU23")] > 0.8
    assert track[_hop_at(vowel_onset + 100), _col("AU23")] > 1.8
    assert track[_hop_at(100), _col("AU23")] < 0.05


def test_ramps_are_continuous_on_real_speech() -> None:
    result = synthesize("Bob, the man from Paris, bought a big map! Who knew? Wow.", voice="en-us+m3", rate_wpm=220)
    track = au_track(result.audio, result.phonemes)
    assert np.abs(np.diff(track, axis=0)).max() < MAX_STEP_PER_HOP


def test_espeak_utterance_labels() -> None:
    result = synthesize("Hello, Bob. A hot bath.", voice="en-us+f2")
    lead = np.zeros(int(0.3 * SAMPLE_RATE_HZ), np.float32)
    audio = np.concatenate([lead, result.audio, lead])
    shift = 300.0
    phonemes = [Phoneme(p.mnemonic, p.start_ms + shift, p.end_ms + shift) for p in result.phonemes]
    track = au_track(audio, phonemes)

    assert track.shape == (n_hops(audio.size), 17) and track.dtype == np.float32
    assert track.min() >= 0.0 and track.max() <= 5.0
    centres = hop_centres_ms(track.shape[0])
    for name in ("AU05", "AU06", "AU07", "AU09", "AU45"):
        assert not track[:, AU_NAMES.index(name)].any(), name

    assert np.abs(track[centres < 200]).max() < 0.05  # silence before speech: neutral
    assert np.abs(track[centres > centres[-1] - 100]).max() < 0.05  # and after it
    for p in phonemes:
        inside = (centres >= p.start_ms) & (centres < p.end_ms)
        name = p.mnemonic.lstrip("',")
        if name in ("0", "a", "A:") and p.end_ms - p.start_ms >= 60:  # hot, bath
            assert track[inside, AU26].max() > 2.0, p
            assert track[inside, AU25].max() > 2.0, p
        if name == "b" and p.end_ms - p.start_ms >= 40:
            assert track[inside, AU25].min() < 0.3, p


def test_brows_follow_pitch_excursions() -> None:
    """A harmonic voice that jumps up 7 semitones for a while raises AU01 and AU02 there."""
    sr = SAMPLE_RATE_HZ
    f0 = np.full(2 * sr, 120.0)
    f0[int(0.8 * sr) : int(1.2 * sr)] = 180.0
    phase = 2 * np.pi * np.cumsum(f0) / sr
    audio = sum(np.sin(k * phase) / k for k in range(1, 8)).astype(np.float32) * 0.2
    track = au_track(audio, [])
    centres = hop_centres_ms(track.shape[0])
    au01, au02, au04 = (track[:, AU_NAMES.index(n)] for n in ("AU01", "AU02", "AU04"))
    assert au01[(centres > 1100) & (centres < 1200)].min() > 1.5
    assert au01[centres < 700].max() < 0.05
    np.testing.assert_allclose(au02, visemes.BROW_AU02_RATIO * au01, atol=1e-6)
    assert au01.max() <= visemes.BROW_AU01_MAX
    assert au04.max() <= visemes.BROW_AU04_MAX
    assert not track[:, AU25].any()  # no phonemes: the mouth stays neutral


def test_whisper_leaves_brows_at_rest() -> None:
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE_HZ).astype(np.float32) * 0.1
    track = au_track(noise, [])
    assert not track.any()


def test_yin_tracks_a_voice_like_tone() -> None:
    sr = SAMPLE_RATE_HZ
    phase = 2 * np.pi * 150.0 * np.arange(sr) / sr
    audio = sum(np.sin(k * phase) / k for k in range(1, 6))
    f0, voiced = track_f0(audio, n_hops(sr), sr)
    assert voiced[5:-5].all()
    np.testing.assert_allclose(f0[5:-5], 150.0, atol=1.0)
