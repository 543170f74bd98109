"""Decoded WebRTC audio (PyAV frames) to the arrays ``engine.pipeline.Session`` accepts.

aiortc's Opus decoder gives packed s16, stereo, 48 kHz, 960 samples per channel
per 20 ms, but that is the decoder's choice, not a contract: the format, layout
and rate are read from each frame, never assumed.
"""

from dataclasses import dataclass

import av
import numpy as np

from engine.audio import AudioFormatError

_DTYPES = {"s16": np.int16, "s16p": np.int16, "flt": np.float32, "fltp": np.float32}


@dataclass(frozen=True)
class AudioFormat:
    """A stream's sample rate (Hz) and channel count, as the session's converter needs them."""

    rate_hz: int
    channels: int


def audio_format(frame: av.AudioFrame) -> AudioFormat:
    """The rate and channel count of ``frame``."""
    return AudioFormat(rate_hz=int(frame.sample_rate), channels=len(frame.layout.channels))


def audio_frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """The samples of ``frame`` as ``(n, channels)``, one row per instant: int16 or float32.

    Packed formats (s16, flt) come out of ``to_ndarray`` interleaved as
    ``(1, n * channels)``; planar ones (s16p, fltp) as ``(channels, n)``.

    Raises:
        AudioFormatError: a sample format other than s16, s16p, flt, fltp.
    """
    name = frame.format.name
    if name not in _DTYPES:
        raise AudioFormatError(f"audio sample format {name!r} is not supported; accepted: {', '.join(_DTYPES)}")
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    if frame.format.is_planar:
        samples = data.T
    else:
        samples = data.reshape(-1, channels)
    return np.ascontiguousarray(samples, dtype=_DTYPES[name])
