"""The format of decoded WebRTC audio (PyAV frames), as ``engine.pipeline.Session`` needs it.

aiortc's Opus decoder gives packed s16, stereo, 48 kHz, 960 samples per channel
per 20 ms, but that is the decoder's choice, not a contract: the format, layout
and rate are read from each frame, never assumed.
"""

from dataclasses import dataclass

import av


@dataclass(frozen=True)
class AudioFormat:
    """A stream's sample rate (Hz) and channel count, as the session's converter needs them."""

    rate_hz: int
    channels: int


def audio_format(frame: av.AudioFrame) -> AudioFormat:
    """The rate and channel count of ``frame``."""
    return AudioFormat(rate_hz=int(frame.sample_rate), channels=len(frame.layout.channels))
