"""Every rule that turns synthetic speech into AU target tracks lives here.

We have no face video, so the corpus's AU labels are written by rule from
what espeak says it spoke (phonemes with times) and from the audio itself
(pitch and loudness). Intensities use OpenFace's 0..5 scale; the track has
one row per 10 ms hop (:mod:`models.data.timing`) in the order of
``engine.au.vocabulary.AU_NAMES``, and each row gives the face at the hop's
centre time, ``t * 10 ms + 12.5 ms``.

Rules, in the order they are applied
====================================

1. **Phonemes to visemes** (``PHONEME_VISEMES``). espeak's English
   mnemonics are looked up after dropping stress marks (``'`` ``,``). A
   diphthong maps to several visemes that split its time evenly (``aI``:
   open, then spread). A mnemonic not in the table is retried without
   trailing modifiers (``t[`` -> ``t``, ``aI2`` -> ``aI``, ``r-`` -> ``r``);
   a name still unknown falls back to schwa with a warning. Pauses (any
   mnemonic starting with ``_``) and the time before the first and after the
   last phoneme are SILENCE: every AU 0.
2. **Viseme targets** (``VISEMES``) set the mouth AUs only: AU10 upper lip
   raiser, AU12 lip corner puller (spread vowels), AU14 dimpler, AU15 lip
   corner depressor, AU17 chin raiser, AU20 lip stretcher, AU23 lip
   tightener (our stand-in for rounding and pressing: AU18 pucker, AU22
   funneler and AU24 presser are not in the 17), AU25 lips part, AU26 jaw
   drop. Open vowels (``a A: aI aU``) open the jaw most (AU26 ~3.4), close
   front vowels spread (AU12), rounded vowels and ``w`` tighten (AU23),
   labiodentals ``f v`` raise the upper lip off the tucked lower lip (AU10).
3. **Coarticulation by dominance** (Cohen and Massaro 1993). Each segment
   pulls each mouth AU toward its target with a dominance that is its
   strength (``lip_dominance`` for lip AUs, ``jaw_dominance`` for AU26)
   inside the segment and falls off as a Gaussian of the distance to it:
   width ``ANTICIPATION_MS`` before the segment (the face prepares the next
   sound), ``CARRYOVER_MS`` after it. The AU value is the dominance-weighted
   mean of all targets. Lip rounding (AU23) anticipates furthest, 100 ms:
   tongue consonants (``t s k``) have weak lip dominance, so the rounding of
   *stew* starts during ``s``. Weak segments (schwa, ``h``) take their
   neighbours' shape; short ones undershoot, as in fast speech. Silence has
   dominance too, so the mouth ramps to neutral over a pause.
4. **Bilabial closure** (``p b m``). The lips must touch to make these
   sounds, whatever the neighbours, so the lip AUs are blended to the
   bilabial target with a weight that is 1 over the segment and ramps in
   over ``CLOSURE_ONSET_MS`` before it and out over ``CLOSURE_RELEASE_MS``
   after it (raised cosine): AU25 reaches 0 at the closure. The jaw (AU26)
   keeps its dominance value (lips can close over a lowered jaw).
5. **Smoothing**: a Gaussian of ``SMOOTHING_MS`` standard deviation (muscle
   and tissue low-pass), evaluated on a 2.5 ms grid, then read at the hop
   centres. With these settings no mouth AU moves more than about 1 unit
   per 10 ms hop.
6. **Brows from prosody** (``brow_track``): F0 (YIN) and hop loudness of
   the audio. Pitch excursions above the utterance's median voiced F0 by
   more than ``BROW_RAISE_ONSET_ST`` semitones raise the inner and outer
   brows, AU01 ``BROW_AU01_PER_ST`` per further semitone up to
   ``BROW_AU01_MAX``, AU02 ``BROW_AU02_RATIO`` of AU01. Emphasis, meaning
   loud (``BROW_LOWER_ONSET_DB`` over the median voiced level) at or below the
   median pitch, lowers the brows slightly: AU04 ``BROW_AU04_PER_DB`` per
   further dB up to ``BROW_AU04_MAX``. Brows move more slowly than lips: a
   follower with ``BROW_ATTACK_MS`` rise and ``BROW_RELEASE_MS`` decay time
   constants. Utterances with fewer than ``BROW_MIN_VOICED_HOPS`` voiced
   hops (whispers) keep the brows at 0.
7. **Everything else is 0**: AU05, AU06, AU07, AU09 follow emotion and
   gaze, not phonemes, and the corpus speaks without emotion; AU45 (blink)
   comes from the separate blink model. All values are clipped to 0..5.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY, AU_NAMES, N_AUS
from engine.audio import HOP_MS, SAMPLE_RATE_HZ
from models.data.espeak import Phoneme
from models.data.pitch import hop_energy_db, track_f0
from models.data.timing import hop_centres_ms, n_hops

MOUTH_AUS: tuple[str, ...] = ("AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26")
"""The AUs the phonemes drive, in the column order of ``mouth_track``."""
BROW_AUS: tuple[str, ...] = ("AU01", "AU02", "AU04")
"""The AUs prosody drives, in the column order of ``brow_track``."""
JAW_AUS = frozenset({"AU26"})
"""Mouth AUs that follow the jaw's dominance; all others follow the lips'."""

ANTICIPATION_MS: Mapping[str, float] = {"AU23": 100.0, "AU12": 60.0, "AU20": 60.0}
"""Dominance width (ms) before a segment, per AU; others ``DEFAULT_ANTICIPATION_MS``."""
DEFAULT_ANTICIPATION_MS = 40.0
CARRYOVER_MS: Mapping[str, float] = {"AU23": 60.0}
"""Dominance width (ms) after a segment, per AU; others ``DEFAULT_CARRYOVER_MS``."""
DEFAULT_CARRYOVER_MS = 30.0
CLOSURE_ONSET_MS = 50.0
"""Lips travel to a bilabial closure over this long before it starts (ms)."""
CLOSURE_RELEASE_MS = 40.0
"""And open again over this long after it ends (ms)."""
SMOOTHING_MS = 10.0
"""Standard deviation of the final Gaussian smoothing (ms)."""
GRID_MS = 2.5
"""Evaluation grid step (ms); hop centres (12.5 + 10 t ms) lie on it."""

BROW_RAISE_ONSET_ST = 1.5  # semitones above the median voiced F0 before the brows move
BROW_AU01_PER_ST = 0.5  # AU01 intensity per semitone beyond the onset
BROW_AU01_MAX = 2.5
BROW_AU02_RATIO = 0.8  # outer brow raiser follows the inner one, a little less
BROW_LOWER_ONSET_DB = 3.0  # dB above the median voiced hop level before AU04 starts
BROW_AU04_PER_DB = 0.25  # AU04 intensity per dB beyond the onset
BROW_AU04_MAX = 1.0  # emphasis frowns are small
BROW_ATTACK_MS = 40.0  # follower time constant while rising (ms)
BROW_RELEASE_MS = 200.0  # and while falling back (ms)
BROW_MIN_VOICED_HOPS = 10  # fewer voiced hops: no reliable median, brows stay at 0

_REACH = 4.0  # dominance widths beyond which a segment's weight (< 1e-7) is ignored
_BLOCK = 128  # grid points blended at once, to bound memory


@dataclass(frozen=True)
class Viseme:
    """A mouth shape: mouth AU targets (0..5, missing = 0) and how hard it holds them.

    Dominance is unitless and relative: 1 is a plain vowel, above 2 a shape
    the neighbours cannot override (lip closure, rounding of ``w``), below
    0.5 a shape that mostly takes its neighbours' (``h``, velars).
    """

    targets: Mapping[str, float]
    lip_dominance: float
    jaw_dominance: float
    closure: bool = False

    def target_vector(self) -> np.ndarray:
        """(len(MOUTH_AUS),) float64 targets."""
        unknown = set(self.targets) - set(MOUTH_AUS)
        if unknown:
            raise ValueError(f"viseme targets non-mouth AUs {sorted(unknown)}")
        return np.array([self.targets.get(au, 0.0) for au in MOUTH_AUS])


VISEMES: Mapping[str, Viseme] = {
    "SILENCE": Viseme({}, 1.0, 1.0),
    # Vowels: jaw and lip aperture from openness, AU12/AU20 from spreading,
    # AU23 from rounding.
    "OPEN_FRONT": Viseme({"AU25": 3.2, "AU26": 3.4, "AU20": 0.5}, 1.2, 2.0),  # cat, first part of aI aU
    "OPEN_BACK": Viseme({"AU25": 3.2, "AU26": 3.4}, 1.2, 2.0),  # father, car
    "STRUT": Viseme({"AU25": 2.6, "AU26": 2.4}, 1.0, 1.5),  # cup, about
    "MID_FRONT": Viseme({"AU25": 2.4, "AU26": 2.0, "AU12": 0.8, "AU20": 0.4}, 1.2, 1.5),  # bed
    "NEAR_FRONT": Viseme({"AU25": 1.6, "AU26": 1.0, "AU12": 1.2, "AU20": 0.6}, 1.2, 1.2),  # bit
    "CLOSE_FRONT": Viseme({"AU25": 1.4, "AU26": 0.6, "AU12": 1.8, "AU20": 0.9, "AU14": 0.3}, 1.5, 1.2),  # see
    "SCHWA": Viseme({"AU25": 1.8, "AU26": 1.3}, 0.6, 0.8),  # the, sofa
    "NURSE": Viseme({"AU25": 1.8, "AU26": 1.2, "AU23": 0.4}, 1.0, 1.0),  # bird
    "OPEN_BACK_ROUNDED": Viseme({"AU25": 2.8, "AU26": 3.0, "AU23": 0.8}, 1.5, 1.8),  # hot (GB)
    "OPEN_MID_ROUNDED": Viseme({"AU25": 2.5, "AU26": 2.4, "AU23": 1.3}, 1.5, 1.5),  # thought
    "CLOSE_MID_ROUNDED": Viseme({"AU25": 1.8, "AU26": 1.4, "AU23": 1.8}, 1.8, 1.2),  # go (US)
    "NEAR_BACK_ROUNDED": Viseme({"AU25": 1.3, "AU26": 0.8, "AU23": 1.8, "AU17": 0.2}, 1.8, 1.0),  # book
    "CLOSE_BACK_ROUNDED": Viseme({"AU25": 1.0, "AU26": 0.6, "AU23": 2.2, "AU17": 0.3}, 2.0, 1.0),  # moon
    # Consonants.
    "BILABIAL_STOP": Viseme({"AU25": 0.0, "AU26": 0.4, "AU23": 1.4, "AU17": 1.0, "AU14": 0.4}, 3.0, 1.5, True),
    "BILABIAL_NASAL": Viseme({"AU25": 0.0, "AU26": 0.3, "AU23": 0.8, "AU17": 0.6, "AU14": 0.3}, 3.0, 1.2, True),
    "LABIODENTAL": Viseme({"AU10": 1.2, "AU25": 0.8, "AU26": 0.4, "AU15": 0.3, "AU17": 0.4}, 3.0, 1.2),  # five
    "DENTAL": Viseme({"AU10": 0.3, "AU25": 1.4, "AU26": 0.6}, 1.0, 1.2),  # think, this
    "ALVEOLAR": Viseme({"AU25": 1.1, "AU26": 0.7}, 0.4, 0.8),  # t d n l
    "SIBILANT": Viseme({"AU25": 1.0, "AU26": 0.2, "AU20": 0.5, "AU12": 0.3}, 0.8, 2.0),  # s z: jaw up, teeth close
    "POSTALVEOLAR": Viseme({"AU25": 1.3, "AU26": 0.3, "AU23": 1.0, "AU10": 0.6}, 2.0, 1.5),  # shoe, church: lips flare
    "R": Viseme({"AU25": 1.1, "AU26": 0.6, "AU23": 0.9}, 1.2, 0.6),  # English r is lip-rounded
    "W": Viseme({"AU25": 0.7, "AU26": 0.4, "AU23": 2.4, "AU17": 0.3}, 3.0, 0.8),
    "PALATAL": Viseme({"AU25": 1.1, "AU26": 0.5, "AU12": 0.9, "AU20": 0.4}, 0.8, 0.8),  # yes
    "VELAR": Viseme({"AU25": 1.3, "AU26": 1.0}, 0.3, 0.6),  # k g ng
    "GLOTTAL": Viseme({"AU25": 1.2, "AU26": 0.8}, 0.05, 0.05),  # h: the next vowel's shape
}

PHONEME_VISEMES: Mapping[str, tuple[str, ...]] = {
    # Monophthongs.
    "a": ("OPEN_FRONT",),
    "aa": ("OPEN_FRONT",),
    "A:": ("OPEN_BACK",),
    "A@": ("OPEN_BACK",),
    "A#": ("OPEN_FRONT",),
    "A~": ("OPEN_BACK",),
    "a#": ("STRUT",),
    "V": ("STRUT",),
    "E": ("MID_FRONT",),
    "E#": ("MID_FRONT",),
    "E2": ("MID_FRONT",),
    "e#": ("MID_FRONT",),
    "e:": ("MID_FRONT",),
    "I": ("NEAR_FRONT",),
    "I2": ("NEAR_FRONT",),
    "I#": ("NEAR_FRONT",),
    "I2#": ("NEAR_FRONT",),
    "@#": ("NEAR_FRONT",),
    "i": ("CLOSE_FRONT",),
    "i:": ("CLOSE_FRONT",),
    "@": ("SCHWA",),
    "@2": ("SCHWA",),
    "@5": ("SCHWA",),
    "3": ("SCHWA",),
    "3:": ("NURSE",),
    "0": ("OPEN_BACK_ROUNDED",),
    "0#": ("OPEN_BACK_ROUNDED",),
    "02": ("OPEN_BACK_ROUNDED",),
    "O2": ("OPEN_BACK_ROUNDED",),
    "O": ("OPEN_MID_ROUNDED",),
    "O:": ("OPEN_MID_ROUNDED",),
    "O@": ("OPEN_MID_ROUNDED",),
    "o@": ("OPEN_MID_ROUNDED",),
    "O~": ("OPEN_MID_ROUNDED",),
    "o:": ("CLOSE_MID_ROUNDED",),
    "U": ("NEAR_BACK_ROUNDED",),
    "u:": ("CLOSE_BACK_ROUNDED",),
    # Diphthongs and vowel + liquid: parts in time order.
    "aI": ("OPEN_FRONT", "NEAR_FRONT"),
    "aI2": ("OPEN_FRONT", "NEAR_FRONT"),
    "aI@": ("OPEN_FRONT", "NEAR_FRONT", "SCHWA"),
    "aI3": ("OPEN_FRONT", "NEAR_FRONT", "SCHWA"),
    "aU": ("OPEN_FRONT", "NEAR_BACK_ROUNDED"),
    "aU@": ("OPEN_FRONT", "NEAR_BACK_ROUNDED", "SCHWA"),
    "eI": ("MID_FRONT", "NEAR_FRONT"),
    "OI": ("OPEN_MID_ROUNDED", "NEAR_FRONT"),
    "oU": ("SCHWA", "NEAR_BACK_ROUNDED"),
    "oU#": ("SCHWA", "NEAR_BACK_ROUNDED"),
    "e@": ("MID_FRONT", "SCHWA"),
    "i@": ("CLOSE_FRONT", "SCHWA"),
    "i@3": ("CLOSE_FRONT", "SCHWA"),
    "U@": ("NEAR_BACK_ROUNDED", "SCHWA"),
    "@L": ("SCHWA", "ALVEOLAR"),
    "IR": ("SCHWA", "R"),
    "VR": ("STRUT", "R"),
    # Consonants.
    "p": ("BILABIAL_STOP",),
    "b": ("BILABIAL_STOP",),
    "m": ("BILABIAL_NASAL",),
    "f": ("LABIODENTAL",),
    "v": ("LABIODENTAL",),
    "T": ("DENTAL",),
    "D": ("DENTAL",),
    "t": ("ALVEOLAR",),
    "d": ("ALVEOLAR",),
    "n": ("ALVEOLAR",),
    "l": ("ALVEOLAR",),
    "t#": ("ALVEOLAR",),
    "t2": ("ALVEOLAR",),
    "t[": ("ALVEOLAR",),
    "s": ("SIBILANT",),
    "z": ("SIBILANT",),
    "S": ("POSTALVEOLAR",),
    "Z": ("POSTALVEOLAR",),
    "tS": ("POSTALVEOLAR",),
    "dZ": ("POSTALVEOLAR",),
    "r": ("R",),
    "r-": ("R",),
    "w": ("W",),
    "w#": ("W",),
    "j": ("PALATAL",),
    ";": ("PALATAL",),
    "k": ("VELAR",),
    "g": ("VELAR",),
    "N": ("VELAR",),
    "x": ("VELAR",),
    "h": ("GLOTTAL",),
    "?": ("GLOTTAL",),
}

_STRESS_MARKS = "',%="
_MODIFIERS = "#23/[-"


def _normalize(mnemonic: str) -> str:
    return mnemonic.lstrip(_STRESS_MARKS)


def visemes_for(mnemonic: str) -> tuple[Viseme, ...]:
    """The viseme(s) of one espeak mnemonic, in time order (see rule 1)."""
    name = _normalize(mnemonic)
    if name.startswith("_"):
        return (VISEMES["SILENCE"],)
    while name not in PHONEME_VISEMES and len(name) > 1 and name[-1] in _MODIFIERS:
        name = name[:-1]
    if name not in PHONEME_VISEMES:
        warnings.warn(f"no viseme for espeak phoneme {mnemonic!r}; using schwa", stacklevel=2)
        return (VISEMES["SCHWA"],)
    return tuple(VISEMES[v] for v in PHONEME_VISEMES[name])


@dataclass(frozen=True)
class _Segments:
    """Viseme segments in time order; times in ms, ±1e9 for the open-ended silences."""

    start_ms: np.ndarray  # (n,)
    end_ms: np.ndarray  # (n,)
    targets: np.ndarray  # (n, len(MOUTH_AUS))
    dominance: np.ndarray  # (n, len(MOUTH_AUS))
    closure: np.ndarray  # (n,) bool


def _segments(phonemes: Iterable[Phoneme]) -> _Segments:
    silence = VISEMES["SILENCE"]
    jaw = np.array([au in JAW_AUS for au in MOUTH_AUS])
    rows: list[tuple[float, float, Viseme]] = []
    for ph in phonemes:
        if rows and ph.start_ms > rows[-1][1]:
            rows.append((rows[-1][1], ph.start_ms, silence))  # a gap in the alignment is silence
        parts = visemes_for(ph.mnemonic)
        step = (ph.end_ms - ph.start_ms) / len(parts)
        for k, vis in enumerate(parts):
            rows.append((ph.start_ms + k * step, ph.start_ms + (k + 1) * step, vis))
    first, last = (rows[0][0], rows[-1][1]) if rows else (0.0, 0.0)
    rows = [(-1e9, first, silence), *rows, (last, 1e9, silence)]
    return _Segments(
        start_ms=np.array([r[0] for r in rows]),
        end_ms=np.array([r[1] for r in rows]),
        targets=np.stack([r[2].target_vector() for r in rows]),
        dominance=np.array([np.where(jaw, r[2].jaw_dominance, r[2].lip_dominance) for r in rows]),
        closure=np.array([r[2].closure for r in rows]),
    )


def _raised_cosine_ramp(x: np.ndarray) -> np.ndarray:
    """0 for x <= 0, 1 for x >= 1, a smooth half cosine between."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _gaussian_smooth(track: np.ndarray, sigma_steps: float) -> np.ndarray:
    """Gaussian smoothing along axis 0, edges held (no pull toward 0 at the ends)."""
    radius = int(np.ceil(3.0 * sigma_steps))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_steps) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(track, ((radius, radius), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.size, axis=0)
    return windows @ kernel


def _dominance_blend(t: np.ndarray, seg: _Segments) -> np.ndarray:
    """Rule 3 at times ``t`` (ms): (len(t), len(MOUTH_AUS)) dominance-weighted targets.

    Works through the grid in blocks and, for each, only on the segments
    within ``_REACH`` dominance widths of it: further ones weigh < 1e-7.
    """
    width_before = np.array([ANTICIPATION_MS.get(au, DEFAULT_ANTICIPATION_MS) for au in MOUTH_AUS])
    width_after = np.array([CARRYOVER_MS.get(au, DEFAULT_CARRYOVER_MS) for au in MOUTH_AUS])
    reach_ms = _REACH * max(width_before.max(), width_after.max())
    out = np.empty((t.size, len(MOUTH_AUS)))
    for lo in range(0, t.size, _BLOCK):
        tb = t[lo : lo + _BLOCK]
        near = (seg.end_ms >= tb[0] - reach_ms) & (seg.start_ms <= tb[-1] + reach_ms)
        before = np.maximum(seg.start_ms[near][None, :] - tb[:, None], 0.0)  # (g, n) ms before each segment
        after = np.maximum(tb[:, None] - seg.end_ms[near][None, :], 0.0)  # ms after it
        distance = before[:, :, None] / width_before + after[:, :, None] / width_after  # (g, n, a)
        weight = seg.dominance[near][None, :, :] * np.exp(-(distance**2))
        out[lo : lo + _BLOCK] = np.einsum("gna,na->ga", weight, seg.targets[near]) / weight.sum(axis=1)
    return out


def mouth_track(phonemes: Iterable[Phoneme], count: int) -> np.ndarray:
    """Mouth AUs (rules 1-5) at the centres of hops ``0..count-1``.

    Returns (count, len(MOUTH_AUS)) float64 in 0..5, columns in MOUTH_AUS order.
    """
    seg = _segments(phonemes)
    steps_per_hop = int(round(HOP_MS / GRID_MS))
    first_centre = int(round(hop_centres_ms(1)[0] / GRID_MS))
    n_grid = first_centre + steps_per_hop * max(count, 1)
    t = np.arange(n_grid) * GRID_MS  # (g,)

    track = _dominance_blend(t, seg)
    lips = np.array([au not in JAW_AUS for au in MOUTH_AUS])
    for i in np.flatnonzero(seg.closure):
        closing = _raised_cosine_ramp((t - (seg.start_ms[i] - CLOSURE_ONSET_MS)) / CLOSURE_ONSET_MS)
        opening = _raised_cosine_ramp((seg.end_ms[i] + CLOSURE_RELEASE_MS - t) / CLOSURE_RELEASE_MS)
        c = np.minimum(closing, opening)[:, None]
        track[:, lips] = (1.0 - c) * track[:, lips] + c * seg.targets[i, lips]

    track = _gaussian_smooth(track, SMOOTHING_MS / GRID_MS)
    centres = first_centre + steps_per_hop * np.arange(count)
    return np.clip(track[centres], 0.0, AU_MAX_INTENSITY)


def _follow(target: np.ndarray) -> np.ndarray:
    """Attack/release follower over 10 ms hops: brows rise faster than they fall."""
    attack = 1.0 - np.exp(-HOP_MS / BROW_ATTACK_MS)
    release = 1.0 - np.exp(-HOP_MS / BROW_RELEASE_MS)
    out = np.zeros_like(target)
    level = 0.0
    for i, x in enumerate(target):
        level += (x - level) * (attack if x > level else release)
        out[i] = level
    return out


def brow_track(audio: np.ndarray, count: int, sample_rate_hz: int) -> np.ndarray:
    """Brow AUs (rule 6) at hops ``0..count-1``: (count, 3) float64, columns in BROW_AUS order."""
    out = np.zeros((count, 3))
    f0, voiced = track_f0(audio, count, sample_rate_hz)
    if voiced.sum() < BROW_MIN_VOICED_HOPS:
        return out
    semitones = np.zeros(count)
    semitones[voiced] = 12.0 * np.log2(f0[voiced] / np.median(f0[voiced]))
    level_db = hop_energy_db(audio, count, sample_rate_hz)
    loudness = level_db - np.median(level_db[voiced])

    raise_target = np.clip(BROW_AU01_PER_ST * (semitones - BROW_RAISE_ONSET_ST), 0.0, BROW_AU01_MAX)
    emphatic = voiced & (semitones <= 0.0)
    lower_target = np.where(
        emphatic, np.clip(BROW_AU04_PER_DB * (loudness - BROW_LOWER_ONSET_DB), 0.0, BROW_AU04_MAX), 0.0
    )
    au01 = _follow(raise_target)
    out[:, 0] = au01
    out[:, 1] = BROW_AU02_RATIO * au01
    out[:, 2] = _follow(lower_target)
    return out


def au_track(audio: np.ndarray, phonemes: Iterable[Phoneme]) -> np.ndarray:
    """The full AU label track of one utterance (rules 1-7).

    Args:
        audio: (n_samples,) float mono at 16 kHz.
        phonemes: espeak phonemes with times in ms of ``audio``.

    Returns:
        (n_hops(n_samples), 17) float32 in 0..5, columns in AU_NAMES order.
    """
    count = n_hops(audio.size)
    track = np.zeros((count, N_AUS))
    track[:, [AU_NAMES.index(au) for au in MOUTH_AUS]] = mouth_track(phonemes, count)
    track[:, [AU_NAMES.index(au) for au in BROW_AUS]] = brow_track(audio, count, SAMPLE_RATE_HZ)
    return np.clip(track, 0.0, AU_MAX_INTENSITY).astype(np.float32)
