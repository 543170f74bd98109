"""AU -> ARKit blendshapes: the documented table, symmetry, combinations, ranges."""

import numpy as np
import pytest

from engine.au import AU_NAMES, N_AUS, au_index
from engine.au.arkit import AU_TO_BLENDSHAPE, BLENDSHAPE_NAMES, N_BLENDSHAPES, aus_to_blendshapes


def one_au(name: str, intensity: float) -> np.ndarray:
    aus = np.zeros(N_AUS, np.float32)
    aus[au_index(name)] = intensity
    return aus


def shape(values: np.ndarray, name: str) -> float:
    return float(values[..., BLENDSHAPE_NAMES.index(name)])


def test_names_are_the_52_live_link_blendshapes_in_order() -> None:
    assert N_BLENDSHAPES == 52 and len(set(BLENDSHAPE_NAMES)) == 52
    assert BLENDSHAPE_NAMES[:7] == (
        "eyeBlinkLeft",
        "eyeLookDownLeft",
        "eyeLookInLeft",
        "eyeLookOutLeft",
        "eyeLookUpLeft",
        "eyeSquintLeft",
        "eyeWideLeft",
    )
    assert BLENDSHAPE_NAMES[14:19] == ("jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose")
    assert BLENDSHAPE_NAMES[-1] == "tongueOut"
    for au, name, _ in AU_TO_BLENDSHAPE:
        assert au in AU_NAMES and name in BLENDSHAPE_NAMES


def test_neutral_face_is_all_zero() -> None:
    np.testing.assert_array_equal(aus_to_blendshapes(np.zeros(N_AUS)), np.zeros(N_BLENDSHAPES))


@pytest.mark.parametrize(
    ("au", "blendshape"),
    [
        ("AU01", "browInnerUp"),
        ("AU02", "browOuterUpLeft"),
        ("AU04", "browDownRight"),
        ("AU05", "eyeWideLeft"),
        ("AU06", "cheekSquintRight"),
        ("AU07", "eyeSquintLeft"),
        ("AU09", "noseSneerRight"),
        ("AU10", "mouthUpperUpLeft"),
        ("AU12", "mouthSmileRight"),
        ("AU14", "mouthDimpleLeft"),
        ("AU15", "mouthFrownRight"),
        ("AU17", "mouthShrugLower"),
        ("AU20", "mouthStretchLeft"),
        ("AU23", "mouthPressRight"),
        ("AU26", "jawOpen"),
        ("AU45", "eyeBlinkLeft"),
    ],
)
def test_each_primary_au_drives_its_blendshape_by_intensity_over_5(au: str, blendshape: str) -> None:
    assert shape(aus_to_blendshapes(one_au(au, 2.5)), blendshape) == pytest.approx(0.5)
    assert shape(aus_to_blendshapes(one_au(au, 5.0)), blendshape) == pytest.approx(1.0)


def test_left_and_right_are_driven_alike() -> None:
    aus = np.random.default_rng(0).uniform(0, 5, (64, N_AUS)).astype(np.float32)
    values = aus_to_blendshapes(aus)
    for i, name in enumerate(BLENDSHAPE_NAMES):
        if name.endswith("Left"):
            np.testing.assert_array_equal(values[:, i], values[:, BLENDSHAPE_NAMES.index(name[:-4] + "Right")])


def test_values_are_clipped_to_0_1_and_inputs_to_0_5() -> None:
    aus = np.full(N_AUS, 9.0, np.float32)
    aus[0] = -3.0
    values = aus_to_blendshapes(aus)
    assert values.dtype == np.float32 and values.min() >= 0.0 and values.max() <= 1.0
    assert shape(values, "browInnerUp") == 0.0  # AU01 at -3 counts as 0
    assert shape(values, "jawOpen") == 1.0  # AU26 5 + AU25 5 * 0.25, clipped


def test_mouth_close_is_jaw_open_with_lips_together() -> None:
    jaw_only = aus_to_blendshapes(one_au("AU26", 4.0))
    assert shape(jaw_only, "jawOpen") == pytest.approx(0.8)
    assert shape(jaw_only, "mouthClose") == pytest.approx(0.8)  # lips not parted: closed against the jaw
    parted = one_au("AU26", 4.0)
    parted[au_index("AU25")] = 5.0
    values = aus_to_blendshapes(parted)
    assert shape(values, "jawOpen") == pytest.approx(1.0)
    assert shape(values, "mouthClose") == pytest.approx(0.0)
    assert shape(values, "mouthLowerDownLeft") == pytest.approx(0.4)
    assert shape(aus_to_blendshapes(np.zeros(N_AUS)), "mouthClose") == 0.0  # jaw closed: nothing to close against


def test_a_blink_cancels_wide_eyes() -> None:
    aus = one_au("AU05", 5.0)
    aus[au_index("AU45")] = 5.0
    values = aus_to_blendshapes(aus)
    assert shape(values, "eyeWideLeft") == 0.0 and shape(values, "eyeBlinkRight") == 1.0


def test_unsourced_blendshapes_stay_zero() -> None:
    values = aus_to_blendshapes(np.full((3, N_AUS), 5.0, np.float32))
    for name in ("eyeLookUpLeft", "jawLeft", "mouthFunnel", "mouthPucker", "mouthRollUpper", "cheekPuff", "tongueOut"):
        assert (values[:, BLENDSHAPE_NAMES.index(name)] == 0).all(), name


def test_batches_give_the_same_rows_as_single_frames() -> None:
    aus = np.random.default_rng(1).uniform(0, 5, (7, N_AUS)).astype(np.float32)
    batch = aus_to_blendshapes(aus)
    assert batch.shape == (7, N_BLENDSHAPES)
    for row, expected in zip(aus, batch):
        np.testing.assert_allclose(aus_to_blendshapes(row), expected, atol=1e-7)
    strided = aus_to_blendshapes(np.asfortranarray(aus)[::2])
    np.testing.assert_allclose(strided, batch[::2], atol=1e-7)


def test_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 17\)"):
        aus_to_blendshapes(np.zeros(16))
