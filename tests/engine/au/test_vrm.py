"""AU -> VRM expressions: the standards' names, visemes of the training rules' vowels, emotions, ranges."""

import numpy as np
import pytest

from engine.au import N_AUS, au_index
from engine.au.vrm import VRM0_INDICES, VRM0_NAMES, VRM1_NAMES, aus_to_vrm
from models.data.visemes import MOUTH_AUS, VISEMES

VISEME_NAMES = ("aa", "ih", "ou", "ee", "oh")


def aus_of(**intensities: float) -> np.ndarray:
    aus = np.zeros(N_AUS, np.float32)
    for name, value in intensities.items():
        aus[au_index(name)] = value
    return aus


def weights(aus: np.ndarray) -> dict[str, float]:
    return dict(zip(VRM1_NAMES, aus_to_vrm(aus).tolist()))


def test_names_are_the_vrm_presets() -> None:
    assert set(VRM1_NAMES) == {
        "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft",
        "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral",
    }  # fmt: skip
    assert set(VRM0_NAMES) == {
        "Neutral", "A", "I", "U", "E", "O", "Blink", "Joy", "Angry", "Sorrow", "Fun", "LookUp", "LookDown",
        "LookLeft", "LookRight", "Blink_L", "Blink_R",
    }  # fmt: skip
    aus = aus_of(AU25=2.0, AU26=3.4, AU45=5.0)
    vrm0 = dict(zip(VRM0_NAMES, aus_to_vrm(aus)[VRM0_INDICES].tolist()))
    assert vrm0["A"] == weights(aus)["aa"] and vrm0["Blink"] == 1.0


@pytest.mark.parametrize(
    ("vowel", "viseme"),
    [
        ("OPEN_BACK", "aa"),
        ("OPEN_FRONT", "aa"),
        ("STRUT", "aa"),
        ("MID_FRONT", "ee"),
        ("NEAR_FRONT", "ih"),
        ("CLOSE_FRONT", "ih"),
        ("OPEN_MID_ROUNDED", "oh"),
        ("NEAR_BACK_ROUNDED", "ou"),
        ("CLOSE_BACK_ROUNDED", "ou"),
    ],
)
def test_the_training_rules_vowels_show_their_viseme(vowel: str, viseme: str) -> None:
    targets = dict(zip(MOUTH_AUS, VISEMES[vowel].target_vector().tolist()))
    shown = weights(aus_of(**targets))
    assert max(VISEME_NAMES, key=lambda name: shown[name]) == viseme
    assert 0.4 < sum(shown[name] for name in VISEME_NAMES) <= 1.0 + 1e-6


@pytest.mark.parametrize("closed", ["SILENCE", "BILABIAL_STOP", "BILABIAL_NASAL"])
def test_closed_lips_show_no_viseme(closed: str) -> None:
    targets = dict(zip(MOUTH_AUS, VISEMES[closed].target_vector().tolist()))
    assert all(weights(aus_of(**targets))[name] == 0.0 for name in VISEME_NAMES)


def test_emotions_need_all_their_aus() -> None:
    assert weights(aus_of(AU12=5.0))["happy"] == 0.0  # a spread vowel is not a smile
    assert weights(aus_of(AU06=2.5, AU12=5.0))["happy"] == 1.0
    assert weights(aus_of(AU01=1.25, AU04=2.5, AU15=2.5))["sad"] == pytest.approx(0.5)
    assert weights(aus_of(AU04=3, AU07=3, AU23=3))["angry"] == 1.0
    assert weights(aus_of(AU01=3, AU02=3, AU05=3))["surprised"] == 1.0


def test_every_weight_stays_in_range_for_any_input() -> None:
    rng = np.random.default_rng(0)
    for aus in rng.uniform(-2, 8, size=(500, N_AUS)):
        values = aus_to_vrm(aus)
        assert values.dtype == np.float32 and values.min() >= 0.0 and values.max() <= 1.0
        assert values[[VRM1_NAMES.index(n) for n in VISEME_NAMES]].sum() <= 1.0 + 1e-6
    for always_zero in ("relaxed", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral", "blinkLeft"):
        assert weights(np.full(N_AUS, 5.0))[always_zero] == 0.0
