"""The speech the benchmarks send: the built-in sample, looped, optionally with pauses between phrases."""

import io
import wave
from dataclasses import dataclass
from importlib import resources

import av
import numpy as np

from engine.audio import load_audio_file
from engine.pipeline import SAMPLE_RATE_HZ

WEBRTC_RATE_HZ = 48_000
"""What aiortc's Opus decoder hands the server: 48 kHz, stereo, s16."""


def sample_speech() -> np.ndarray:
    """engine/audio/assets/sample_speech.wav: 8.7 s of continuous speech, 16 kHz mono float32."""
    with resources.as_file(resources.files("engine.audio") / "assets" / "sample_speech.wav") as path:
        return load_audio_file(path)


def looped_speech(seconds: float) -> np.ndarray:
    """``seconds`` of the sample, looped: 16 kHz mono float32."""
    speech = sample_speech()
    n = int(round(seconds * SAMPLE_RATE_HZ))
    return np.resize(speech, n).astype(np.float32)


@dataclass(frozen=True)
class PausedSpeech:
    """Silence then a phrase, repeated: what the onset measurement needs.

    audio: 16 kHz mono float32.
    onsets: the first sample of each phrase (16 kHz samples).
    silence_samples: length of each pause before a phrase.
    """

    audio: np.ndarray
    onsets: list[int]
    silence_samples: int


def paused_speech(seconds: float, *, silence_s: float, phrase_s: float) -> PausedSpeech:
    """``seconds`` of [``silence_s`` of digital silence, the sample's first ``phrase_s``] cycles.

    The same phrase every cycle (the sample starts speaking at once), so every
    onset is the same stimulus.
    """
    silence = int(round(silence_s * SAMPLE_RATE_HZ))
    phrase = looped_speech(phrase_s)
    cycle = np.concatenate([np.zeros(silence, np.float32), phrase])
    n = int(round(seconds * SAMPLE_RATE_HZ))
    audio = np.resize(cycle, n).astype(np.float32)
    onsets = [start + silence for start in range(0, n, cycle.size) if start + silence < n]
    return PausedSpeech(audio, onsets, silence)


def as_webrtc_audio(audio: np.ndarray, *, layout: str = "stereo") -> np.ndarray:
    """16 kHz mono float32 -> 48 kHz int16, ``(n, channels)``, as a browser captures (mono) and as
    aiortc's Opus decoder hands it to the server (stereo)."""
    resampler = av.AudioResampler(format="s16", layout=layout, rate=WEBRTC_RATE_HZ)
    frame = av.AudioFrame.from_ndarray(np.clip(audio, -1, 1)[None, :].astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE_HZ
    channels = 2 if layout == "stereo" else 1
    pieces = [f.to_ndarray().reshape(-1, channels) for f in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(pieces)


def wav_bytes(audio: np.ndarray) -> bytes:
    """16 kHz mono float32 -> a PCM16 WAV file's bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE_HZ)
        file.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
