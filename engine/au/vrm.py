"""Action units -> VRM expressions (visemes, blink, emotions), for VMC receivers such as VSeeFace or Warudo.

VRM avatars are animated by named preset expressions, not by muscles. No
standard maps FACS AUs to them; this module is our mapping, and this
docstring is all of it. Values are 0..1. VRM 1.0 names come first, VRM 0.x
presets are the same expressions renamed (:data:`VRM0_NAMES`).

**Visemes** (``aa ih ou ee oh`` = VRM 0.x ``A I U E O``). The mouth AUs are
read as four features, each reaching 1 at the intensity our training rules
give a typical vowel of its kind (``models/data/visemes.py``: "father" drops
the jaw to AU26 3.4; "bed" spreads the lips by AU12 0.8 + AU20 0.4, "see"
by more; "book" rounds them to AU23 1.8; vowels part the lips by AU25
1.0..3.2):

- openness ``o = AU26 / 3.4``; spread ``s = (AU12 + AU20) / 1.2``;
  rounding ``r = AU23 / 1.8`` (our stand-in for pucker and funnel, which are
  not among the 17 AUs); amplitude ``m = AU25 / 2.0`` (lips part); each
  clipped to 0..1.
- vowel scores: ``aa = o (1 - s)(1 - r)``, ``ih = s (1 - o)``,
  ``ee = s o``, ``ou = r (1 - o)``, ``oh = r o``: open and neutral is
  ``aa``; spread and closed is ``ih``, spread and open ``ee``; rounded and
  closed ``ou``, rounded and open ``oh``.
- the five visemes are ``m * score / sum(scores)``: they share the mouth's
  amplitude, so their sum never exceeds 1 (VRM adds expressions; a sum over
  1 overdrives the mouth), and closed lips (AU25 0, as in ``p b m``) show no
  viseme. Scores all 0 (jaw closed, lips neither spread nor rounded) show none.

**Blink**: ``blink = AU45 / 5`` (both eyes; ``blinkLeft``/``blinkRight`` stay 0,
since the 17 AUs carry no side and a receiver would add them to ``blink``).

**Emotions**, from the EMFACS prototypes, each the weakest of its AUs over
2.5 (a moderate intensity) so that one AU alone never shows an emotion:
``happy`` (VRM 0.x ``Joy``) AU06 + AU12; ``angry`` AU04 + AU07 + AU23;
``sad`` (``Sorrow``) AU01 + AU04 + AU15; ``surprised`` (VRM 1.0 only)
AU01 + AU02 + AU05. Speech alone seldom drives them (AU05, AU06 and AU07 are
never estimated from speech): they follow the session's expression sliders.

**Always 0**: ``relaxed`` (``Fun``: no AU prototype), ``lookUp lookDown
lookLeft lookRight`` (gaze is not estimated), ``neutral``.
"""

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY, AU_NAMES, N_AUS

VRM1_NAMES: tuple[str, ...] = (
    "aa",
    "ih",
    "ou",
    "ee",
    "oh",
    "blink",
    "blinkLeft",
    "blinkRight",
    "happy",
    "angry",
    "sad",
    "relaxed",
    "surprised",
    "lookUp",
    "lookDown",
    "lookLeft",
    "lookRight",
    "neutral",
)
"""VRM 1.0's preset expressions (``VRMC_vrm`` ``expressions.preset``), the order of :func:`aus_to_vrm`."""

VRM0_FOR_VRM1: dict[str, str] = {
    "aa": "A",
    "ih": "I",
    "ou": "U",
    "ee": "E",
    "oh": "O",
    "blink": "Blink",
    "blinkLeft": "Blink_L",
    "blinkRight": "Blink_R",
    "happy": "Joy",
    "angry": "Angry",
    "sad": "Sorrow",
    "relaxed": "Fun",
    "lookUp": "LookUp",
    "lookDown": "LookDown",
    "lookLeft": "LookLeft",
    "lookRight": "LookRight",
    "neutral": "Neutral",
}
"""VRM 0.x's BlendShapePreset names for the VRM 1.0 presets they became (``surprised`` is new in 1.0)."""
VRM0_NAMES: tuple[str, ...] = tuple(VRM0_FOR_VRM1[name] for name in VRM1_NAMES if name in VRM0_FOR_VRM1)
VRM0_INDICES = np.array([VRM1_NAMES.index(name) for name in VRM1_NAMES if name in VRM0_FOR_VRM1], np.intp)
"""``aus_to_vrm(aus)[VRM0_INDICES]`` are the values of :data:`VRM0_NAMES`."""

OPEN_JAW_AU26 = 3.4
SPREAD_AU12_AU20 = 1.2
ROUND_AU23 = 1.8
PARTED_AU25 = 2.0
EMOTION_FULL = 2.5
"""Intensities at which each feature reaches 1 (see the module docstring)."""

EMOTIONS: dict[str, tuple[str, ...]] = {
    "happy": ("AU06", "AU12"),
    "angry": ("AU04", "AU07", "AU23"),
    "sad": ("AU01", "AU04", "AU15"),
    "surprised": ("AU01", "AU02", "AU05"),
}
"""The AUs every emotion needs at once (EMFACS prototypes, AU05 left out of anger)."""

_AU = {name: AU_NAMES.index(name) for name in AU_NAMES}
_VISEMES = [VRM1_NAMES.index(name) for name in ("aa", "ih", "ou", "ee", "oh")]
_BLINK = VRM1_NAMES.index("blink")


def aus_to_vrm(aus: np.ndarray) -> np.ndarray:
    """Map AU intensities to VRM 1.0 expression weights.

    Args:
        aus: (17,) AU intensities in ``AU_NAMES`` order, 0..5 (clipped first).

    Returns:
        (18,) float32 weights in 0..1, :data:`VRM1_NAMES` order; for VRM 0.x
        take ``[VRM0_INDICES]`` and name them :data:`VRM0_NAMES`.
    """
    x = np.clip(np.asarray(aus, np.float64), 0.0, AU_MAX_INTENSITY)
    if x.shape != (N_AUS,):
        raise ValueError(f"expected (17,) AUs, got shape {x.shape}")
    weights = np.zeros(len(VRM1_NAMES), np.float64)
    openness = min(x[_AU["AU26"]] / OPEN_JAW_AU26, 1.0)
    spread = min((x[_AU["AU12"]] + x[_AU["AU20"]]) / SPREAD_AU12_AU20, 1.0)
    rounding = min(x[_AU["AU23"]] / ROUND_AU23, 1.0)
    amplitude = min(x[_AU["AU25"]] / PARTED_AU25, 1.0)
    scores = np.array(
        [
            openness * (1 - spread) * (1 - rounding),  # aa
            spread * (1 - openness),  # ih
            rounding * (1 - openness),  # ou
            spread * openness,  # ee
            rounding * openness,  # oh
        ]
    )
    total = scores.sum()
    if total > 0:
        weights[_VISEMES] = amplitude * scores / total
    weights[_BLINK] = x[_AU["AU45"]] / AU_MAX_INTENSITY
    for emotion, needed in EMOTIONS.items():
        weights[VRM1_NAMES.index(emotion)] = min(min(x[_AU[au]] for au in needed) / EMOTION_FULL, 1.0)
    return weights.astype(np.float32)
