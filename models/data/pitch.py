"""Fundamental frequency (YIN) and loudness per 10 ms hop, in numpy, for the brow rules.

The brow labels of the synthetic corpus follow the voice's intonation (see
:mod:`models.data.visemes`), so they need F0 and energy on the same 10 ms hop
grid as the AU track. YIN (de Cheveigné and Kawahara, JASA 2002) is accurate
enough on clean synthetic speech and is a few vectorised FFTs per utterance.
"""

from __future__ import annotations

import numpy as np

from engine.audio import HOP_MS, WINDOW_MS
from models.data.timing import hop_centres_ms

F0_MIN_HZ = 60.0
"""Lowest F0 searched (Hz): below espeak's deepest male variants."""
F0_MAX_HZ = 500.0
"""Highest F0 searched (Hz): above its child-like variants at high pitch."""
YIN_WINDOW_MS = 40.0
"""Analysis window, centred on the hop centre: over two periods at F0_MIN_HZ."""
YIN_THRESHOLD = 0.3
"""Cumulative-mean-normalised difference below which a lag counts as a period.

Looser than YIN's 0.1-0.15: espeak's formant voices carry jitter and breath
noise, and at 0.15 half of their clearly voiced hops read as unvoiced
(measured on en+m3); at 0.3 about 80 % of speech hops are voiced, with no
octave errors seen."""
VOICING_FLOOR_DB = -45.0
"""Hops quieter than the utterance's loudest hop by more than this are unvoiced."""
_EPS = 1e-10


def _frames(audio: np.ndarray, centres_samples: np.ndarray, length: int) -> np.ndarray:
    """(n, length) windows centred on ``centres_samples``; zeros outside the audio."""
    half = length // 2
    padded = np.concatenate([np.zeros(half), audio.astype(np.float64), np.zeros(length)])
    # Audio sample s sits at padded index s + half, so the window starting at
    # s = centre - half starts at padded index ``centre``.
    return padded[centres_samples[:, None] + np.arange(length)[None, :]]


def hop_energy_db(audio: np.ndarray, n_hops: int, sample_rate_hz: int) -> np.ndarray:
    """RMS level of each hop's window [t*10 ms, t*10 ms + 25 ms), dB re full scale.

    Returns (n_hops,) float64; digital silence gives -100 dB.
    """
    hop = round(sample_rate_hz * HOP_MS / 1000.0)
    window = round(sample_rate_hz * WINDOW_MS / 1000.0)
    x = audio.astype(np.float64)
    idx = (np.arange(n_hops) * hop)[:, None] + np.arange(window)[None, :]
    power = np.mean(x[np.minimum(idx, x.size - 1)] ** 2 * (idx < x.size), axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-10))


def track_f0(audio: np.ndarray, n_hops: int, sample_rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN F0 at each hop's centre time (t*10 ms + 12.5 ms).

    Args:
        audio: (n_samples,) float mono.
        n_hops: number of hops to analyse.
        sample_rate_hz: audio rate (Hz).

    Returns:
        f0_hz: (n_hops,) float64, 0 where unvoiced.
        voiced: (n_hops,) bool.
    """
    f0 = np.zeros(n_hops)
    voiced = np.zeros(n_hops, dtype=bool)
    if n_hops == 0:
        return f0, voiced
    length = int(round(sample_rate_hz * YIN_WINDOW_MS / 1000.0))
    lag_min = int(np.floor(sample_rate_hz / F0_MAX_HZ))
    lag_max = min(int(np.ceil(sample_rate_hz / F0_MIN_HZ)), length - 2)
    centres = np.round(hop_centres_ms(n_hops) * sample_rate_hz / 1000.0).astype(np.int64)
    frames = _frames(audio, centres, length)
    frames -= frames.mean(axis=1, keepdims=True)

    # Difference function d(lag) = sum_j (x_j - x_{j+lag})^2 over the overlap,
    # from the autocorrelation r and running energies: d = E_head + E_tail - 2 r.
    n_fft = 1 << int(np.ceil(np.log2(2 * length)))
    spectrum = np.fft.rfft(frames, n_fft, axis=1)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), n_fft, axis=1)[:, : lag_max + 1]
    squares = np.cumsum(frames**2, axis=1)
    total = squares[:, -1:]
    lags = np.arange(lag_max + 1)
    head = np.concatenate([total, squares[:, length - 1 - lags[1:]]], axis=1)  # sum x_j^2, j < length - lag
    tail = total - np.concatenate([np.zeros((n_hops, 1)), squares[:, lags[1:] - 1]], axis=1)  # j >= lag
    diff = np.maximum(head + tail - 2.0 * acf, 0.0)

    # Cumulative mean normalised difference: 1 at lag 0, dips below the
    # threshold at the period.
    cmnd = np.ones_like(diff)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(running, _EPS)

    level = 10.0 * np.log10(np.maximum(np.mean(frames**2, axis=1), _EPS))
    loud_enough = level > level.max() + VOICING_FLOOR_DB
    search = cmnd[:, lag_min : lag_max + 1]
    for i in np.flatnonzero(loud_enough):
        below = np.flatnonzero(search[i] < YIN_THRESHOLD)
        if below.size == 0:
            continue
        k = below[0]
        while k + 1 < search.shape[1] and search[i, k + 1] < search[i, k]:
            k += 1  # walk down to the local minimum
        lag = float(k + lag_min)
        if 0 < k < search.shape[1] - 1:
            a, b, c = search[i, k - 1], search[i, k], search[i, k + 1]
            denom = a - 2.0 * b + c
            if denom > 0:
                lag += 0.5 * (a - c) / denom  # parabolic refinement
        f0[i] = sample_rate_hz / lag
        voiced[i] = True
    return f0, voiced
