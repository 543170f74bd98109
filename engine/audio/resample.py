"""Streaming conversion of ingest audio to the engine's format: 16 kHz mono float32.

Every source (WebRTC Opus at 48 kHz stereo s16, WebSocket PCM16, a microphone,
a file) goes through :class:`AudioConverter`, so that everything downstream
(ring buffer, log-mel, the session's audio clock) sees one format only.
"""

from fractions import Fraction
from numbers import Integral

import av
import numpy as np

from engine.audio.errors import AudioFormatError
from engine.audio.grid import SAMPLE_RATE_HZ

MIN_INPUT_RATE_HZ = 8_000
MAX_INPUT_RATE_HZ = 48_000
MAX_CHANNELS = 8

_INT16_FULL_SCALE = 32768.0
# Silence pushed at flush: 160 output samples, several times the filter's delay.
_FLUSH_PADDING_S = 0.01
_ACCEPTED_DTYPES = (np.dtype(np.int16), np.dtype(np.float32), np.dtype(np.float64))


class AudioConverter:
    """Converts one audio stream, chunk by chunk, to 16 kHz mono float32 in [-1, 1].

    Input chunks have shape ``(n,)`` (mono only) or ``(n, channels)``, one row
    per sample instant; ``n`` may be 0 or 1. Accepted dtypes: int16 (full scale
    32768) or float32/float64 (full scale 1.0). Channels are averaged with
    equal weights. Float samples outside [-1, 1] are clipped on output.

    Rate conversion uses PyAV's ``AudioResampler`` (FFmpeg swresample, default
    windowed-sinc filter). Its output is time-aligned with the input: output
    sample ``k`` is the signal at ``k / 16000`` s after the first input sample.
    It is not instantaneous, though: it holds back the samples its filter still
    needs future input for, about 16 output samples (1 ms) when downsampling
    and 32 (2 ms) when upsampling from 8 kHz; with chunks of a few samples it
    emits in bursts, holding back up to ~34 samples. Those samples come out with
    later pushes or with :meth:`flush`, which ends the stream with silence
    (FFmpeg's own flush drops up to 2 ms of a short stream), so that the total
    output length is ``round(n_in * 16000 / input_rate_hz)``. Input that is
    already 16 kHz skips the resampler: no delay and, for mono, exact samples.

    A chunk that fails validation raises :class:`AudioFormatError` before any
    state changes, so the stream continues with the next good chunk.
    """

    def __init__(self, *, input_rate_hz: int, channels: int) -> None:
        """Set up the conversion of a stream.

        Args:
            input_rate_hz: sample rate of the incoming audio, 8000..48000 Hz.
            channels: number of interleaved channels per row, 1..8.

        Raises:
            AudioFormatError: a rate or channel count outside those ranges.
        """
        if not _is_int_in(input_rate_hz, MIN_INPUT_RATE_HZ, MAX_INPUT_RATE_HZ):
            raise AudioFormatError(
                f"input sample rate {input_rate_hz!r} Hz is not supported; accepted: "
                f"integers from {MIN_INPUT_RATE_HZ} to {MAX_INPUT_RATE_HZ} Hz"
            )
        if not _is_int_in(channels, 1, MAX_CHANNELS):
            raise AudioFormatError(f"channel count {channels!r} is not supported; accepted: 1 to {MAX_CHANNELS}")
        self._input_rate_hz = int(input_rate_hz)
        self._channels = int(channels)
        self._resampler: av.AudioResampler | None = None
        self._stream_input_samples = 0  # pts of the next frame given to the resampler
        self._stream_output_samples = 0  # output of the resampler since the stream began
        self._output_samples = 0

    @property
    def input_rate_hz(self) -> int:
        """Sample rate of the incoming audio (Hz)."""
        return self._input_rate_hz

    @property
    def channels(self) -> int:
        """Number of incoming channels (columns of a chunk)."""
        return self._channels

    @property
    def output_samples(self) -> int:
        """Total 16 kHz samples returned so far by :meth:`push` and :meth:`flush`:
        the stream's audio clock (divide by 16000 for seconds)."""
        return self._output_samples

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Convert one chunk.

        Args:
            samples: shape ``(n,)`` (mono) or ``(n, channels)``; int16, float32
                or float64; finite.

        Returns:
            16 kHz mono float32 samples in [-1, 1], shape ``(m,)``; ``m`` may be
            0 while the resampler fills (see the class docstring on delay).

        Raises:
            AudioFormatError: wrong dtype, shape or channel count, or NaN/Inf.
        """
        mono = self._to_mono_float32(samples)
        if self._input_rate_hz == SAMPLE_RATE_HZ or mono.size == 0:
            return self._emit(mono)
        return self._emit(self._resample(mono))

    def flush(self) -> np.ndarray:
        """End the stream: return the samples the resampler still holds.

        The stream is continued with silence until the filter has released
        every held sample, then cut so that the stream's whole output is
        ``round(n_in * 16000 / input_rate_hz)`` samples long.

        Returns:
            16 kHz mono float32 samples, shape ``(m,)`` (empty when nothing is
            held). A later :meth:`push` starts a new stream whose output
            continues the same clock (:attr:`output_samples`).
        """
        if self._resampler is None:
            return self._emit(np.zeros(0, dtype=np.float32))
        missing = round(self._stream_input_samples * SAMPLE_RATE_HZ / self._input_rate_hz) - self._stream_output_samples
        padding = np.zeros(round(self._input_rate_hz * _FLUSH_PADDING_S), dtype=np.float32)
        tail = np.concatenate([self._resample(padding), _join(self._resampler.resample(None))])
        tail = tail[: max(0, missing)]
        self._resampler = None
        self._stream_input_samples = 0
        self._stream_output_samples = 0
        return self._emit(tail)

    def _resample(self, mono: np.ndarray) -> np.ndarray:
        """Feed mono float32 samples (at least one) to the stream's resampler."""
        frame = av.AudioFrame.from_ndarray(mono[np.newaxis, :], format="flt", layout="mono")
        frame.sample_rate = self._input_rate_hz
        frame.time_base = Fraction(1, self._input_rate_hz)
        frame.pts = self._stream_input_samples
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE_HZ)
        out = _join(self._resampler.resample(frame))
        self._stream_input_samples += mono.size
        self._stream_output_samples += out.size
        return out

    def _to_mono_float32(self, samples: np.ndarray) -> np.ndarray:
        """Validate a chunk and return a new mono float32 array (full scale 1.0)."""
        x = np.asarray(samples)
        if x.dtype not in _ACCEPTED_DTYPES:
            raise AudioFormatError(
                f"sample dtype {x.dtype} is not supported; accepted: int16 "
                "(full scale 32768), float32 or float64 (full scale 1.0)"
            )
        if x.ndim == 1 and self._channels == 1:
            x = x[:, np.newaxis]
        if x.ndim != 2 or x.shape[1] != self._channels:
            accepted = f"(n, {self._channels})" + (" or (n,)" if self._channels == 1 else "")
            raise AudioFormatError(
                f"chunk of shape {x.shape} does not match the stream's "
                f"{self._channels} channel(s); accepted shape: {accepted}"
            )
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise AudioFormatError("chunk contains NaN or Inf samples; accepted: finite values, full scale 1.0")
        mono = x.mean(axis=1, dtype=np.float64)
        if x.dtype == np.int16:
            mono /= _INT16_FULL_SCALE
        return mono.astype(np.float32)

    def _emit(self, out: np.ndarray) -> np.ndarray:
        """Clip to [-1, 1], advance the clock, hand the samples out."""
        np.clip(out, -1.0, 1.0, out=out)
        self._output_samples += out.size
        return out


def _join(frames: list[av.AudioFrame]) -> np.ndarray:
    """Concatenate the resampler's mono float frames into one writable array."""
    if not frames:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


def _is_int_in(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is an integer (not a bool, not a float) in ``[low, high]``."""
    return isinstance(value, Integral) and not isinstance(value, bool) and low <= int(value) <= high
