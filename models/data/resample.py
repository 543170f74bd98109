"""Polyphase windowed-sinc resampling in numpy, for building the training corpus.

espeak-ng speaks at 22050 Hz and the networks hear 16 kHz; the augmentations
also take audio through an 8 kHz telephone band and back. Both need a resampler
that keeps the speech band clean (aliasing would put energy into mel bins the
model would learn to trust) and that adds no delay (the AU labels are aligned
to the audio to the millisecond). This one is a Kaiser-windowed sinc low-pass
applied in polyphase form: every output sample is a short dot product with one
of ``up`` sub-filters, so the cost is ``taps_per_phase`` multiply-adds per
output sample, whatever the ratio. The filter is symmetric and centred, so
output sample ``n`` lies at input time ``n * down / up`` exactly.

The training side owns this copy on purpose: the corpus must not change when
the real-time engine's resampler is tuned for latency.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# Zero crossings of the sinc kept on each side of the centre, counted at the
# lower of the two rates. 16 gives a transition band of about 5 % of the
# output Nyquist frequency with > 80 dB stop-band attenuation at beta 8.6.
ZERO_CROSSINGS = 16
KAISER_BETA = 8.6
# Cut-off as a fraction of the lower Nyquist frequency: the transition band
# lies just below it, so nothing above Nyquist folds back in.
CUTOFF_FRACTION = 0.95
# Output samples computed per block, to bound the gather matrices' memory.
BLOCK_SAMPLES = 32768


@lru_cache(maxsize=16)
def _filter_bank(up: int, down: int) -> np.ndarray:
    """Polyphase filter bank, shape (up, taps_per_phase), float64.

    Row ``r`` holds the prototype's taps ``r, r + up, r + 2 up, ...``: the
    sub-filter for an output sample whose position falls ``r / up`` of an
    input sample after the newest input sample it uses.
    """
    factor = max(up, down)
    half_len = ZERO_CROSSINGS * factor
    k = np.arange(2 * half_len + 1, dtype=np.float64) - half_len
    cutoff = CUTOFF_FRACTION * 0.5 / factor  # cycles per sample at the upsampled rate
    # Gain ``up`` restores the amplitude lost by zero-stuffing.
    proto = up * 2.0 * cutoff * np.sinc(2.0 * cutoff * k)
    proto *= np.kaiser(proto.size, KAISER_BETA)
    taps_per_phase = math.ceil(proto.size / up)
    padded = np.zeros(taps_per_phase * up, dtype=np.float64)
    padded[: proto.size] = proto
    return padded.reshape(taps_per_phase, up).T.copy()


def resample(audio: np.ndarray, rate_in_hz: int, rate_out_hz: int) -> np.ndarray:
    """Resample mono audio from ``rate_in_hz`` to ``rate_out_hz``.

    Args:
        audio: (n_samples,) float array at ``rate_in_hz``.
        rate_in_hz, rate_out_hz: positive integer sample rates (Hz).

    Returns:
        (ceil(n_samples * rate_out_hz / rate_in_hz),) float32, zero-delay:
        output sample ``n`` is the band-limited signal at time
        ``n / rate_out_hz`` seconds, like input sample ``n * rate_in_hz /
        rate_out_hz``. Outside the input the signal is taken as zero.
    """
    if rate_in_hz <= 0 or rate_out_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in_hz} and {rate_out_hz}")
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n_samples,), got {x.shape}")
    g = math.gcd(rate_in_hz, rate_out_hz)
    up, down = rate_out_hz // g, rate_in_hz // g
    if up == down:
        return x.astype(np.float32)
    n_out = -(-x.size * up // down)
    bank = _filter_bank(up, down)
    taps = bank.shape[1]
    half_len = ZERO_CROSSINGS * max(up, down)
    # Pad so that every gathered index is valid: zeros stand for the signal
    # outside [0, n_samples).
    pad = taps + 1
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    out = np.empty(n_out, dtype=np.float64)
    t = np.arange(taps, dtype=np.int64)
    for start in range(0, n_out, BLOCK_SAMPLES):
        n = np.arange(start, min(start + BLOCK_SAMPLES, n_out), dtype=np.int64)
        # Newest input sample under the filter and the phase of the output
        # sample relative to it, both exact in integer arithmetic.
        pos = n * down + half_len
        newest = pos // up
        phase = pos - newest * up
        gathered = xp[(newest + pad)[:, None] - t[None, :]]
        out[start : start + n.size] = np.einsum("nt,nt->n", gathered, bank[phase])
    return out.astype(np.float32)
