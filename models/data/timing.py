"""The corpus's time grid: 16 kHz audio, 25 ms windows every 10 ms.

It is the streaming log-mel front end's grid (:mod:`engine.audio.grid`):
hop ``t`` covers audio samples ``[t * 160, t * 160 + 400)`` and exists once
its last sample has arrived, so an utterance of ``n`` samples has
``1 + (n - 400) // 160`` hops. Every label of hop ``t`` describes the face at
the hop's centre time, ``t * 10 ms + 12.5 ms``.
"""

from __future__ import annotations

import numpy as np

from engine.audio import HOP_MS, WINDOW_MS, MelConfig, hop_count

_MEL = MelConfig()


def n_hops(n_samples: int) -> int:
    """Number of complete 25 ms windows, every 10 ms, in ``n_samples`` of 16 kHz audio
    (the engine's own hop count, so labels and features can never disagree)."""
    return hop_count(n_samples, _MEL)


def hop_centres_ms(count: int) -> np.ndarray:
    """(count,) float64 centre times (ms) of hops ``0..count-1``."""
    return np.arange(count) * HOP_MS + WINDOW_MS / 2.0
