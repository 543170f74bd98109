"""Audio messages: raw little-endian PCM in the hello's format, no header."""

from dataclasses import dataclass

import numpy as np

from avatar_protocol.control import SAMPLE_FORMATS, Hello
from avatar_protocol.errors import CloseCode, ProtocolError


@dataclass(frozen=True)
class AudioChunk:
    """Audio received: (n, channels) int16 (s16le) or float32 (f32le), native byte order."""

    samples: np.ndarray


def decode_audio(data: bytes, hello: Hello) -> AudioChunk:
    """One binary message -> samples, validated against the hello's format.

    Raises:
        ProtocolError: ``truncated_audio`` when the length is not a whole number
            of sample instants; ``bad_audio`` for NaN/Inf float samples.
    """
    frame_bytes = hello.frame_bytes
    left_over = len(data) % frame_bytes
    if left_over:
        size = hello.sample_dtype.itemsize
        raise ProtocolError(
            "truncated_audio",
            f"binary message of {len(data)} bytes is not a whole number of sample frames: {hello.sample_format} "
            f"with {hello.channels} channel(s) needs a multiple of {frame_bytes} bytes ({size} bytes per sample "
            f"x {hello.channels}); {left_over} byte(s) left over",
            CloseCode.INVALID_PAYLOAD,
        )
    native = hello.sample_dtype.newbyteorder("=")
    samples = np.frombuffer(data, dtype=hello.sample_dtype).astype(native, copy=False)
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        raise ProtocolError(
            "bad_audio",
            "f32le audio contains NaN or Inf samples; send finite values, full scale 1.0",
            CloseCode.INVALID_PAYLOAD,
        )
    return AudioChunk(samples.reshape(-1, hello.channels))


def encode_audio(samples: np.ndarray, sample_format: str = "s16le") -> bytes:
    """Samples -> one binary message (the client side of :func:`decode_audio`).

    Args:
        samples: (n,) mono or (n, channels) rows of interleaved samples; int16
            for s16le (float input is scaled by 32767 and clipped), float for f32le.
    """
    dtype = SAMPLE_FORMATS[sample_format]
    x = np.asarray(samples)
    if dtype.kind == "i" and x.dtype.kind == "f":
        x = np.clip(np.round(x * 32767.0), -32768, 32767)
    return np.ascontiguousarray(x, dtype=dtype).tobytes()
