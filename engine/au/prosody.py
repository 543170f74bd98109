"""Voice activity and syllable prominence from the session's log-mel hops, one hop at a time.

What the liveness models need to know about the speech, and no more: is the
speaker voicing now, and did a syllable just peak, how much louder than the
recent ones (a stressed syllable is louder, and longer, than its neighbours).

Per hop: the level is the power in the mel bands below ``VOICE_BAND_HZ``
(vowels and voicing; fricatives and clicks weigh little there), in dB,
smoothed over ``ENVELOPE_TAU_S``. The hop is *voiced* when that envelope is
``VOICED_MARGIN_DB`` above a noise floor that follows the envelope down at
once and rises ``FLOOR_RISE_DB_PER_S`` slowly, and above an absolute floor.
A syllable *nucleus* is an envelope peak that rose ``NUCLEUS_RISE_DB`` from
the valley before it and is confirmed once the envelope has fallen
``NUCLEUS_FALL_DB`` below it (tens of ms after the peak); its *prominence*
is its peak level minus the running level of the recent nuclei, in dB.

Causal and deterministic: hop ``t``'s features depend on hops ``0..t`` only,
so any chunking of the same hops gives the same features.
"""

import math
from dataclasses import dataclass

import numpy as np

from engine.audio import MelConfig
from engine.audio.mel import mel_filterbank

VOICE_BAND_HZ = 2000.0
"""Mel bands whose peak lies below this carry the level."""
ENVELOPE_TAU_S = 0.02
VOICED_MARGIN_DB = 12.0
FLOOR_RISE_DB_PER_S = 2.0
ABSOLUTE_FLOOR_DB = -10.0
"""Below this envelope level (about -55 dBFS for a full-scale sine's 40 dB) nothing counts as voice."""
NUCLEUS_RISE_DB = 6.0
NUCLEUS_FALL_DB = 3.0
NUCLEUS_LEVEL_WEIGHT = 0.25
"""Weight of each new nucleus in the running level that prominence is measured against."""
_DB_PER_NEPER = 10.0 / math.log(10.0)


@dataclass(frozen=True)
class HopProsody:
    """What one 10 ms hop says about the speech.

    voiced: the speaker is voicing in this hop.
    prominence_db: None, or a syllable nucleus was confirmed at this hop and
        this is its peak level minus the running level of recent nuclei (dB;
        above 0: louder than its neighbours, as a stressed syllable is).
    """

    voiced: bool
    prominence_db: float | None = None


class ProsodyTracker:
    """Turns log-mel hops into :class:`HopProsody`, one per hop, in order."""

    def __init__(self, mel_config: MelConfig | None = None) -> None:
        """``mel_config``: how the hops were computed (default: the engine's features)."""
        mel_config = mel_config or MelConfig()
        weights = mel_filterbank(mel_config)
        peak_hz = weights.argmax(axis=1) * mel_config.sample_rate_hz / mel_config.n_fft
        self._bands = np.flatnonzero(peak_hz < VOICE_BAND_HZ)
        hop_s = mel_config.hop_samples / mel_config.sample_rate_hz
        self._envelope_alpha = 1.0 - math.exp(-hop_s / ENVELOPE_TAU_S)
        self._floor_rise_db = FLOOR_RISE_DB_PER_S * hop_s
        self._envelope_db: float | None = None
        self._floor_db = 0.0
        self._valley_db = 0.0
        self._peak_db: float | None = None
        self._nucleus_level_db: float | None = None

    def push(self, log_mel_hops: np.ndarray) -> list[HopProsody]:
        """(k, n_mels) natural-log mel power hops -> k features, in order."""
        return [self._hop(row) for row in np.asarray(log_mel_hops, dtype=np.float64)]

    def _hop(self, log_mel: np.ndarray) -> HopProsody:
        values = log_mel[self._bands]
        top = values.max()
        level_db = _DB_PER_NEPER * float(top + math.log(np.exp(values - top).sum()))
        if self._envelope_db is None:
            self._envelope_db = self._floor_db = self._valley_db = level_db
        envelope = self._envelope_db = self._envelope_db + self._envelope_alpha * (level_db - self._envelope_db)
        self._floor_db = min(self._floor_db + self._floor_rise_db, envelope)
        voiced = envelope > max(self._floor_db + VOICED_MARGIN_DB, ABSOLUTE_FLOOR_DB)
        return HopProsody(voiced=voiced, prominence_db=self._nucleus(envelope, voiced))

    def _nucleus(self, envelope: float, voiced: bool) -> float | None:
        """Peak picking on the envelope: the prominence of a nucleus confirmed at this hop, else None."""
        if self._peak_db is None:
            self._valley_db = min(self._valley_db, envelope)
            if voiced and envelope - self._valley_db >= NUCLEUS_RISE_DB:
                self._peak_db = envelope
            return None
        if envelope > self._peak_db:
            self._peak_db = envelope
            return None
        if envelope > self._peak_db - NUCLEUS_FALL_DB:
            return None
        peak, self._peak_db, self._valley_db = self._peak_db, None, envelope
        level = peak if self._nucleus_level_db is None else self._nucleus_level_db
        self._nucleus_level_db = level + NUCLEUS_LEVEL_WEIGHT * (peak - level)
        return peak - level
