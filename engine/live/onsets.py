"""Speech onsets on a session's audio clock: where sound starts after a pause, to the sample.

A live session reports them in its stats so that a client which knows when it
sent each sample (a page playing speech through WebAudio, a benchmark) can map
its own clock onto the session's 16 kHz audio clock: one onset seen on both
sides pins the offset, and every frame's trace then says which of the client's
samples it shows. The rule is deliberately simple, so that a client can apply
the same one to the audio it sends (``clients/web/avatar_web/app.js`` does): an onset is
the first sample whose magnitude reaches ``ONSET_LEVEL`` after at least
``ONSET_QUIET_S`` with every sample below it.
"""

import numpy as np

from engine.pipeline import SAMPLE_RATE_HZ

ONSET_LEVEL = 0.1
"""Magnitude, full scale 1.0 (int16: / 32768), that counts as sound (-20 dBFS)."""
ONSET_QUIET_S = 0.25
"""The pause before an onset, seconds."""


class OnsetDetector:
    """Finds onsets in a stream of audio chunks in one format; indices on the 16 kHz audio clock."""

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self._min_quiet = int(round(ONSET_QUIET_S * rate_hz))
        self._quiet = self._min_quiet  # the stream starts after silence
        self._position = 0

    def push(self, samples: np.ndarray) -> list[int]:
        """(n,) or (n, channels) int16 or float32 samples -> the onsets they hold, as 16 kHz sample indices."""
        x = np.asarray(samples)
        scale = 1.0 / 32768.0 if x.dtype.kind == "i" else 1.0
        magnitude = np.abs(x.reshape(x.shape[0], -1).astype(np.float32)).max(axis=1) * scale
        n = magnitude.shape[0]
        loud = np.flatnonzero(magnitude >= ONSET_LEVEL)
        start = self._position
        self._position += n
        if loud.size == 0:
            self._quiet += n
            return []
        # The quiet run before each loud sample: the carried-over run for the first, the gap for the others.
        quiet_before = np.diff(np.concatenate([[-1 - self._quiet], loud])) - 1
        onsets = loud[quiet_before >= self._min_quiet]
        self._quiet = n - 1 - int(loud[-1])
        return [int((start + i) * SAMPLE_RATE_HZ // self.rate_hz) for i in onsets]
