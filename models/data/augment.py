"""Audio augmentations that make clean synthetic speech sound like real capture.

The AU model trains on espeak's studio-clean voice but must work on browser
microphones, laptops in rooms and phone calls. Each augmentation keeps the
audio's length and timing (the AU labels are aligned to the sample), works
on 16 kHz float32 mono, and draws its randomness only from the
``numpy.random.Generator`` it is given: the same generator state gives the
same output.

Conventions: SNR is ``10 log10(mean(speech^2) / mean(noise^2))`` over the
whole clip (pauses included); gains and levels are in dB; RT60 is the time
for the reverberant tail to decay by 60 dB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from models.data.resample import resample

NoiseColor = Literal["white", "pink", "brown"]
NOISE_COLORS: tuple[NoiseColor, ...] = ("white", "pink", "brown")

_LN_1000 = np.log(1000.0)  # amplitude falls by 60 dB = a factor 1000 over RT60
_EPS = 1e-12


def colored_noise(n_samples: int, color: NoiseColor, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of unit RMS with a power spectrum flat (white), 1/f (pink) or 1/f^2 (brown).

    Returns (n_samples,) float64, zero mean.
    """
    if color not in NOISE_COLORS:
        raise ValueError(f"noise color must be one of {NOISE_COLORS}, got {color!r}")
    white = rng.standard_normal(n_samples)
    if color == "white" or n_samples < 2:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.arange(spectrum.size, dtype=np.float64)
        freqs[0] = 1.0
        exponent = 0.5 if color == "pink" else 1.0  # amplitude slope for 1/f and 1/f^2 power
        spectrum /= freqs**exponent
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n_samples)
    noise -= noise.mean()
    return noise / max(float(np.sqrt(np.mean(noise**2))), _EPS)


def add_noise(audio: np.ndarray, *, snr_db: float, color: NoiseColor, rng: np.random.Generator) -> np.ndarray:
    """Add noise of ``color`` at exactly ``snr_db`` relative to the clip's power.

    Returns (n_samples,) float32. A silent clip is returned unchanged.
    """
    x = np.asarray(audio, dtype=np.float64)
    power = float(np.mean(x**2)) if x.size else 0.0
    if power <= _EPS:
        return x.astype(np.float32)
    noise = colored_noise(x.size, color, rng) * np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (x + noise).astype(np.float32)


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` and clip to [-1, 1] as a capture device would. float32."""
    scaled = np.asarray(audio, dtype=np.float64) * 10.0 ** (gain_db / 20.0)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)


def synthetic_rir(
    rng: np.random.Generator, *, rt60_s: float, direct_to_reverb_db: float, sample_rate_hz: int = 16000
) -> np.ndarray:
    """Room impulse response: a unit direct path at t = 0, then decaying noise.

    The diffuse tail is Gaussian noise under an exponential envelope that
    falls 60 dB in ``rt60_s`` seconds, starting 2.5 ms after the direct path
    (early reflections), scaled so that the direct path carries
    ``direct_to_reverb_db`` more energy than the tail. Returns
    (round(rt60_s * sample_rate_hz),) float64.
    """
    if rt60_s <= 0:
        raise ValueError(f"rt60_s must be positive, got {rt60_s}")
    length = max(int(round(rt60_s * sample_rate_hz)), 2)
    t = np.arange(length) / sample_rate_hz
    tail = rng.standard_normal(length) * np.exp(-_LN_1000 * t / rt60_s)
    tail[: int(0.0025 * sample_rate_hz) + 1] = 0.0
    tail *= np.sqrt(10.0 ** (-direct_to_reverb_db / 10.0) / max(float(np.sum(tail**2)), _EPS))
    tail[0] = 1.0
    return tail


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with ``rir`` (direct path first), keep the input's length and RMS. float32.

    The direct path at index 0 keeps the timing: the reverberant output is
    aligned with the dry input and with its AU labels.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0:
        return x.astype(np.float32)
    n_fft = 1 << int(np.ceil(np.log2(x.size + rir.size - 1)))
    wet = np.fft.irfft(np.fft.rfft(x, n_fft) * np.fft.rfft(rir, n_fft), n_fft)[: x.size]
    scale = np.sqrt(np.mean(x**2) / max(float(np.mean(wet**2)), _EPS))
    return (wet * scale).astype(np.float32)


def telephone(
    audio: np.ndarray,
    *,
    sample_rate_hz: int = 16000,
    band_rate_hz: int = 8000,
    highpass_hz: float = 300.0,
    mu_law: bool = True,
) -> np.ndarray:
    """A phone line: high-pass at ``highpass_hz``, through ``band_rate_hz`` and back, G.711 mu-law.

    The round trip through the narrow rate removes everything above its
    Nyquist frequency (4 kHz for 8 kHz); mu-law adds 8-bit companding noise.
    The high-pass is a zero-phase 2nd-order Butterworth magnitude, so the
    timing is unchanged. Returns (n_samples,) float32.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0:
        return x.astype(np.float32)
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1.0 / sample_rate_hz)
    with np.errstate(divide="ignore"):
        spectrum /= np.sqrt(1.0 + (highpass_hz / freqs) ** 4)
    x = np.fft.irfft(spectrum, x.size)
    narrow = resample(x, sample_rate_hz, band_rate_hz).astype(np.float64)
    if mu_law:
        narrow = _mu_law_round_trip(narrow)
    return resample(narrow, band_rate_hz, sample_rate_hz)[: x.size]


def _mu_law_round_trip(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """Compress to 8-bit mu-law codes and expand back (G.711-like)."""
    clipped = np.clip(x, -1.0, 1.0)
    compressed = np.sign(clipped) * np.log1p(mu * np.abs(clipped)) / np.log1p(mu)
    codes = np.round(compressed * 127.0) / 127.0
    return np.sign(codes) * np.expm1(np.abs(codes) * np.log1p(mu)) / mu


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations ``augment`` applies, how often (probabilities 0..1) and how hard."""

    reverb_prob: float = 0.4
    rt60_range_s: tuple[float, float] = (0.15, 0.8)
    direct_to_reverb_range_db: tuple[float, float] = (-3.0, 12.0)
    noise_prob: float = 0.7
    snr_range_db: tuple[float, float] = (5.0, 35.0)
    telephone_prob: float = 0.15
    gain_prob: float = 0.8
    gain_range_db: tuple[float, float] = (-20.0, 6.0)


def augment(audio: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """One random degradation chain: room, then noise, then phone line, then level.

    Args:
        audio: (n_samples,) float mono at 16 kHz.
        rng: the only source of randomness; its state fixes the output.

    Returns:
        (n_samples,) float32 in [-1, 1], aligned with the input.
    """
    x = np.asarray(audio, dtype=np.float32)
    if rng.random() < config.reverb_prob:
        rir = synthetic_rir(
            rng,
            rt60_s=rng.uniform(*config.rt60_range_s),
            direct_to_reverb_db=rng.uniform(*config.direct_to_reverb_range_db),
        )
        x = reverberate(x, rir)
    if rng.random() < config.noise_prob:
        color = NOISE_COLORS[int(rng.integers(len(NOISE_COLORS)))]
        x = add_noise(x, snr_db=rng.uniform(*config.snr_range_db), color=color, rng=rng)
    if rng.random() < config.telephone_prob:
        x = telephone(x)
    gain_db = rng.uniform(*config.gain_range_db) if rng.random() < config.gain_prob else 0.0
    return apply_gain(x, gain_db)
