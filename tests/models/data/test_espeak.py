"""espeak-ng through ctypes: audio, phoneme timings, voices, reproducibility."""

import ctypes
import threading

import numpy as np
import pytest

from models.data import espeak
from models.data.espeak import OUTPUT_SAMPLE_RATE_HZ, synthesize


def _plain(mnemonic: str) -> str:
    return mnemonic.lstrip("',")


def test_event_struct_matches_speak_lib_h() -> None:
    # type, unique_identifier, text_position, length, audio_position, sample
    # (6 x 4 bytes), user_data (pointer), id (union of 8 bytes and a pointer).
    pointer = ctypes.sizeof(ctypes.c_void_p)
    assert ctypes.sizeof(espeak._Event) == 24 + pointer + max(8, pointer)
    assert espeak._Event.audio_position.offset == 16
    assert espeak._Event.id.offset == 24 + pointer


def test_hello_world_phonemes_and_audio() -> None:
    result = synthesize("Hello world", voice="en")
    spoken = [_plain(p.mnemonic) for p in result.phonemes if not p.mnemonic.startswith("_")]
    assert spoken == ["h", "@", "l", "oU", "w", "3:", "l", "d"]

    assert result.sample_rate_hz == OUTPUT_SAMPLE_RATE_HZ
    assert result.audio.dtype == np.float32 and result.audio.ndim == 1
    duration_ms = 1000.0 * result.audio.size / OUTPUT_SAMPLE_RATE_HZ
    assert 500.0 < duration_ms < 1500.0
    assert 0.05 < np.abs(result.audio).max() <= 1.0

    starts = np.array([p.start_ms for p in result.phonemes])
    ends = np.array([p.end_ms for p in result.phonemes])
    assert np.all(np.diff(starts) > 0)
    assert np.all(ends > starts)
    np.testing.assert_array_equal(ends[:-1], starts[1:])  # contiguous
    assert ends[-1] == pytest.approx(duration_ms)


def test_phoneme_times_follow_the_audio() -> None:
    """Speech energy lies inside the phonemes, not before the first one."""
    result = synthesize("Good morning", voice="en-us")
    first_ms = result.phonemes[0].start_ms
    lead = result.audio[: int(first_ms * OUTPUT_SAMPLE_RATE_HZ / 1000)]
    assert lead.size == 0 or np.abs(lead).max() < 0.01
    vowel = next(p for p in result.phonemes if _plain(p.mnemonic) == "U")
    a, b = (int(t * OUTPUT_SAMPLE_RATE_HZ / 1000) for t in (vowel.start_ms, vowel.end_ms))
    assert np.sqrt(np.mean(result.audio[a:b] ** 2)) > 0.02


def test_same_request_same_bytes_whatever_came_before() -> None:
    """The wave generator's statics and the breath noise generator are reset per call."""
    breathy = {"text": "What a lovely day.", "voice": "en+f2", "rate_wpm": 160, "pitch": 60}
    first = synthesize(**breathy)
    synthesize("Something else entirely, with another voice.", voice="en-us+m3", rate_wpm=220)
    again = synthesize(**breathy)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert first.phonemes == again.phonemes


def test_parameters_change_the_speech() -> None:
    slow = synthesize("Hello world", voice="en-us", rate_wpm=120)
    fast = synthesize("Hello world", voice="en-us", rate_wpm=260)
    assert slow.audio.size > 1.5 * fast.audio.size


def test_concurrent_calls_are_serialised() -> None:
    expected = synthesize("One two three", voice="en+m3").audio
    results: list[np.ndarray] = []

    def speak() -> None:
        results.append(synthesize("One two three", voice="en+m3").audio)

    threads = [threading.Thread(target=speak) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for audio in results:
        np.testing.assert_array_equal(audio, expected)


def test_voices_in_the_wheel() -> None:
    assert {"en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029"} <= espeak.available_languages()
    assert {"m1", "m3", "f2", "f4", "klatt"} <= espeak.available_variants()
    espeak.check_voice("en-us+f2")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voice": "en+nosuchvariant"}, "variant"),
        ({"voice": "xx-nowhere"}, "language"),
        ({"rate_wpm": 20}, "rate_wpm"),
        ({"pitch": 101}, "pitch"),
        ({"pitch_range": -1}, "pitch_range"),
    ],
)
def test_bad_requests_fail_clearly(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthesize("Hello", **kwargs)


def test_text_is_escaped_unless_ssml() -> None:
    plain = synthesize("Fish & chips <now>", voice="en")
    assert plain.audio.size > 0
    with_break = synthesize('<speak>Yes <break time="500ms"/> no</speak>', voice="en", ssml=True)
    without = synthesize("<speak>Yes no</speak>", voice="en", ssml=True)
    assert with_break.audio.size > without.audio.size + 0.3 * OUTPUT_SAMPLE_RATE_HZ


def test_version() -> None:
    assert espeak.espeak_version()[0].isdigit()
