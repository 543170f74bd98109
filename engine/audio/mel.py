"""Log-mel features of 16 kHz mono audio, offline and streaming, with identical numbers.

Hop ``t`` covers samples ``[t * hop, t * hop + window)``: no centring and no
padding, so the features are causal and hop ``t`` is known as soon as sample
``t * hop + window - 1`` has arrived (25 ms window, 10 ms hop by default).

Per hop: periodic Hann window, zero padding to ``n_fft``, power spectrum
``|X|^2`` (unnormalised: a full-scale sine peaks near ``(window / 4)^2``),
Slaney mel filterbank (linear below 1 kHz, logarithmic above; each triangle
normalised to unit area: the convention of librosa's default filterbank, which
Whisper's features also use), natural log of ``max(mel, mel_floor)``.

Streaming and offline results are bit-identical: both run every hop through
:meth:`_HopAnalyzer.log_mel`, whose every step computes each hop alone (per-row
FFT, elementwise products and sums in a fixed order). A BLAS matrix product
would not do: its summation order depends on how many rows it is given.
"""

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine.audio.errors import AudioFormatError
from engine.audio.grid import HOP_SAMPLES, SAMPLE_RATE_HZ, WINDOW_SAMPLES

# Slaney's mel scale (Auditory Toolbox): 200/3 Hz per mel up to 1 kHz (15 mel),
# then a constant ratio of 6.4 every 27 mel.
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = math.log(6.4) / 27.0

_OFFLINE_BLOCK_HOPS = 256  # hops analysed at once by log_mel: bounds its scratch memory


def _hz_to_mel(hz: float) -> float:
    if hz < _SLANEY_BREAK_HZ:
        return hz / _SLANEY_HZ_PER_MEL
    return _SLANEY_BREAK_MEL + math.log(hz / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = mel * _SLANEY_HZ_PER_MEL
    logarithmic = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * (mel - _SLANEY_BREAK_MEL))
    return np.where(mel < _SLANEY_BREAK_MEL, linear, logarithmic)


@dataclass(frozen=True)
class MelConfig:
    """Log-mel analysis parameters. The defaults are the engine's features.

    Attributes:
        sample_rate_hz: rate of the input samples.
        window_samples: analysis window (400 = 25 ms at 16 kHz).
        hop_samples: step between hops (160 = 10 ms at 16 kHz); at most the window.
        n_fft: FFT size; the window is zero-padded to it.
        n_mels: number of mel bands.
        fmin_hz, fmax_hz: frequency range covered by the bands.
        mel_floor: floor on band power before the log; digital silence gives
            ``log(mel_floor)`` (about -11.5 for 1e-5).
    """

    sample_rate_hz: int = SAMPLE_RATE_HZ
    window_samples: int = WINDOW_SAMPLES
    hop_samples: int = HOP_SAMPLES
    n_fft: int = 512
    n_mels: int = 80
    fmin_hz: float = 0.0
    fmax_hz: float = 8000.0
    mel_floor: float = 1e-5

    def __post_init__(self) -> None:
        """Reject inconsistent parameters here rather than at first use."""
        if min(self.sample_rate_hz, self.window_samples, self.hop_samples, self.n_mels) < 1:
            raise ValueError(f"{self}: rates, sizes and band counts must be positive")
        if not self.hop_samples <= self.window_samples <= self.n_fft:
            raise ValueError(f"{self}: need hop_samples <= window_samples <= n_fft")
        if not 0.0 <= self.fmin_hz < self.fmax_hz <= self.sample_rate_hz / 2:
            raise ValueError(f"{self}: need 0 <= fmin_hz < fmax_hz <= sample_rate_hz / 2")
        if not self.mel_floor > 0.0:
            raise ValueError(f"{self}: mel_floor must be positive")
        mel_filterbank(self)  # raises if some band falls between FFT bins


def mel_filterbank(config: MelConfig) -> np.ndarray:
    """Slaney-scale triangular filters, each with unit area in Hz.

    Returns:
        float64, shape ``(n_mels, n_fft // 2 + 1)``: weight of each rfft bin in
        each band; band ``m`` peaks at the ``m + 1``-th of ``n_mels + 2`` points
        equally spaced in mel from ``fmin_hz`` to ``fmax_hz``.

    Raises:
        ValueError: a band contains no FFT bin (too many bands for ``n_fft``).
    """
    low_mel, high_mel = _hz_to_mel(config.fmin_hz), _hz_to_mel(config.fmax_hz)
    edges_mel = np.linspace(low_mel, high_mel, config.n_mels + 2)
    edges_hz = _mel_to_hz(edges_mel)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    bin_hz = np.arange(config.n_fft // 2 + 1) * (config.sample_rate_hz / config.n_fft)
    rising = (bin_hz - lower) / (centre - lower)
    falling = (upper - bin_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    empty = np.flatnonzero(~weights.any(axis=1))
    if empty.size:
        raise ValueError(f"mel bands {empty.tolist()} contain no FFT bin; use fewer bands or a larger n_fft")
    return weights


def hop_count(num_samples: int, config: MelConfig) -> int:
    """Number of complete hops in the first ``num_samples`` samples."""
    if num_samples < config.window_samples:
        return 0
    return 1 + (num_samples - config.window_samples) // config.hop_samples


def log_mel(signal: np.ndarray, config: MelConfig = MelConfig()) -> np.ndarray:
    """Log-mel features of a whole signal.

    Args:
        signal: shape ``(n,)``, float32 or float64 at ``config.sample_rate_hz``,
            full scale 1.0.

    Returns:
        float32, shape ``(hop_count(n), n_mels)``, natural-log band power.
    """
    samples = _as_signal(signal)
    analyzer = _HopAnalyzer(config)
    num_hops = hop_count(samples.size, config)
    if num_hops == 0:
        return np.zeros((0, config.n_mels), dtype=np.float32)
    windows = _hop_windows(samples, num_hops, config)
    blocks = [
        analyzer.log_mel(windows[start : start + _OFFLINE_BLOCK_HOPS])
        for start in range(0, num_hops, _OFFLINE_BLOCK_HOPS)
    ]
    return np.concatenate(blocks)


def silence_log_mel(config: MelConfig = MelConfig()) -> np.ndarray:
    """The features of one hop of digital silence, float32 shape ``(n_mels,)``:
    ``log(mel_floor)`` in every band. Use it to pad before the first hop."""
    return _HopAnalyzer(config).log_mel(np.zeros((1, config.window_samples)))[0]


class StreamingLogMel:
    """Incremental :func:`log_mel`: same numbers, bit for bit, over any chunking.

    Keeps only the fewer than ``window_samples`` samples still needed by hops to
    come.
    """

    def __init__(self, config: MelConfig = MelConfig()) -> None:
        self._config = config
        self._analyzer = _HopAnalyzer(config)
        self._pending = np.zeros(0, dtype=np.float64)  # samples from the next hop's start
        self._hops_emitted = 0

    @property
    def config(self) -> MelConfig:
        """The analysis parameters (immutable)."""
        return self._config

    @property
    def hops_emitted(self) -> int:
        """Hops returned since construction or :meth:`reset`; the next hop to
        come has this index and ends at sample ``index * hop + window - 1``."""
        return self._hops_emitted

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; return the hops they complete.

        Args:
            samples: shape ``(n,)``, float32 or float64, full scale 1.0; ``n``
                may be 0.

        Returns:
            float32, shape ``(k, n_mels)``: hops ``hops_emitted - k`` to
            ``hops_emitted - 1`` (after the call), in order; ``k`` may be 0.
        """
        buffered = np.concatenate((self._pending, _as_signal(samples)))
        num_hops = hop_count(buffered.size, self._config)
        if num_hops == 0:
            self._pending = buffered
            return np.zeros((0, self._config.n_mels), dtype=np.float32)
        features = self._analyzer.log_mel(_hop_windows(buffered, num_hops, self._config))
        # A copy, not a view: a view would keep a large pushed chunk alive.
        self._pending = buffered[num_hops * self._config.hop_samples :].copy()
        self._hops_emitted += num_hops
        return features

    def reset(self) -> None:
        """Forget buffered samples and restart hop numbering (a new stream)."""
        self._pending = np.zeros(0, dtype=np.float64)
        self._hops_emitted = 0


class _HopAnalyzer:
    """Window, FFT, mel and log for a batch of hops, each computed on its own.

    The filterbank is sparse (a band spans at most ~20 of 257 bins at the
    defaults), so each band gathers its bins into a zero-padded slot table of
    power-of-two width and sums it by halving: elementwise adds whose order is
    the same for every hop, whatever the batch size.
    """

    def __init__(self, config: MelConfig) -> None:
        self._config = config
        n = np.arange(config.window_samples)
        self._window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / config.window_samples)  # periodic Hann
        weights = mel_filterbank(config)
        first_bin = (weights > 0).argmax(axis=1)
        widths = (weights > 0).sum(axis=1)
        slots = 1 << int(widths.max() - 1).bit_length()
        slot = np.arange(slots)[:, None]
        self._bins = np.minimum(first_bin + slot, weights.shape[1] - 1)  # (slots, n_mels)
        in_band = slot < widths
        self._weights = np.where(in_band, weights[np.arange(config.n_mels), self._bins], 0.0)

    def log_mel(self, windows: np.ndarray) -> np.ndarray:
        """``windows``: shape ``(k, window_samples)``, any float dtype.
        Returns float32, shape ``(k, n_mels)``."""
        spectrum = np.fft.rfft(windows * self._window, n=self._config.n_fft)
        power = np.square(spectrum.real) + np.square(spectrum.imag)
        terms = np.take(power, self._bins, axis=1)  # (k, slots, n_mels)
        terms *= self._weights
        slots = terms.shape[1]
        while slots > 1:
            slots //= 2
            terms = terms[:, :slots] + terms[:, slots:]
        mel = terms[:, 0]
        return np.log(np.maximum(mel, self._config.mel_floor)).astype(np.float32)


def _hop_windows(samples: np.ndarray, num_hops: int, config: MelConfig) -> np.ndarray:
    """Read-only view, shape ``(num_hops, window_samples)``: row ``t`` is hop ``t``.

    ``as_strided`` rather than ``sliding_window_view``: the same view, without
    the latter's Python overhead per call (a third of a hop's cost: bench/README.md).
    """
    (step,) = samples.strides
    return as_strided(
        samples,
        shape=(num_hops, config.window_samples),
        strides=(config.hop_samples * step, step),
        writeable=False,
    )


def _as_signal(samples: np.ndarray) -> np.ndarray:
    """Check that ``samples`` is a 1-D float array (16 kHz mono, see AudioConverter)."""
    x = np.asarray(samples)
    if x.ndim != 1 or x.dtype.kind != "f":
        raise AudioFormatError(
            f"got samples of shape {x.shape} and dtype {x.dtype}; accepted: a 1-D "
            "float32 or float64 array of mono samples (AudioConverter's output)"
        )
    return x
