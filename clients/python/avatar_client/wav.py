"""PCM WAV files in, samples and the hello that describes them out (stdlib ``wave``, no FFmpeg)."""

import wave
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from avatar_protocol import Hello


class WavError(ValueError):
    """The file is not a PCM WAV this client can send; the message says how to convert it."""


@dataclass(frozen=True)
class WavAudio:
    """samples: (n, channels), int16 for 16-bit files, float32 in [-1, 1] for 8/24/32-bit ones."""

    samples: np.ndarray
    sample_rate_hz: int

    @property
    def channels(self) -> int:
        return self.samples.shape[1]

    @property
    def sample_format(self) -> str:
        """16-bit PCM goes out as is (s16le); other widths as float32 (f32le)."""
        return "s16le" if self.samples.dtype == np.int16 else "f32le"

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate_hz

    def hello(self, **fields: Any) -> Hello:
        """A hello for this audio's rate, format and channels, plus ``fields`` (fps, outputs, encoding...)."""
        described = Hello(sample_rate_hz=self.sample_rate_hz, sample_format=self.sample_format, channels=self.channels)
        return replace(described, **fields)


def read_wav(path: str | Path) -> WavAudio:
    """Read an integer-PCM WAV file (8, 16, 24 or 32 bit, any channels).

    Raises:
        WavError: missing file, not a WAV, or float/compressed WAV.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise WavError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise WavError(
            f"{path} is not an integer-PCM WAV file ({exc}); convert it, e.g. "
            f"ffmpeg -i {path} -ac 1 -ar 16000 -c:a pcm_s16le speech.wav"
        ) from None
    return WavAudio(_decode(raw, width).reshape(-1, channels), rate)


def _decode(raw: bytes, width: int) -> np.ndarray:
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.int16)
    if width == 1:  # unsigned 8-bit
        return ((np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if width == 3:
        bytes3 = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = bytes3[:, 0] | (bytes3[:, 1] << 8) | (bytes3[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return (value / float(1 << 23)).astype(np.float32)
    if width == 4:
        return (np.frombuffer(raw, "<i4") / float(1 << 31)).astype(np.float32)
    raise WavError(f"{width * 8}-bit samples are not supported")
