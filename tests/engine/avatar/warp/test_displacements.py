"""The AU -> landmark displacement table: linear, additive, symmetric, in face units."""

from __future__ import annotations

import numpy as np
import pytest

from engine.avatar.face68 import MIRROR, SIDE, UPPER_LID_TO_LOWER_LID, FaceFrame
from engine.avatar.warp.displacements import AU_NAMES, AU_TABLE, BLINK_CLOSURE, au_displacements, au_vector

STATIC_AUS = [name for name in AU_NAMES if name != "AU45"]


def test_table_covers_the_17_aus_in_order() -> None:
    assert list(AU_TABLE) == list(AU_NAMES) and len(AU_NAMES) == 17


def test_zero_aus_move_nothing(astronaut_landmarks: np.ndarray) -> None:
    assert not au_displacements(astronaut_landmarks, np.zeros(17)).any()


@pytest.mark.parametrize("name", AU_NAMES)
def test_each_au_moves_points_linearly(astronaut_landmarks: np.ndarray, name: str) -> None:
    full = au_displacements(astronaut_landmarks, au_vector({name: 5}))
    half = au_displacements(astronaut_landmarks, au_vector({name: 2.5}))
    assert np.abs(full).max() > 0.5  # pixels, on a ~35 px IOD face
    np.testing.assert_allclose(half, full / 2, atol=1e-9)


def test_static_aus_add(astronaut_landmarks: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    combined = au_vector({name: rng.uniform(0, 5) for name in STATIC_AUS})
    parts = sum(au_displacements(astronaut_landmarks, au_vector({n: combined[AU_NAMES.index(n)]})) for n in STATIC_AUS)
    np.testing.assert_allclose(au_displacements(astronaut_landmarks, combined), parts, atol=1e-9)


def test_intensities_are_clipped_to_0_5(astronaut_landmarks: np.ndarray) -> None:
    over = au_displacements(astronaut_landmarks, au_vector({"AU12": 9, "AU01": -3}))
    np.testing.assert_array_equal(over, au_displacements(astronaut_landmarks, au_vector({"AU12": 5})))


def test_left_and_right_halves_mirror_each_other(astronaut_landmarks: np.ndarray) -> None:
    frame = FaceFrame.from_landmarks(astronaut_landmarks)
    static = au_vector({name: 5 for name in STATIC_AUS})  # the blink follows each eye's own shape
    shift = frame.to_face(au_displacements(astronaut_landmarks, static))  # (lateral, up) px
    np.testing.assert_allclose(shift[:, 1], shift[MIRROR, 1], atol=1e-9)
    np.testing.assert_allclose(shift[:, 0], -shift[MIRROR, 0], atol=1e-9)
    np.testing.assert_allclose(shift[SIDE == 0, 0], 0.0, atol=1e-9)


def test_displacements_follow_face_size_and_roll(astronaut_landmarks: np.ndarray) -> None:
    aus = au_vector({"AU12": 4, "AU26": 3, "AU02": 5})
    base = au_displacements(astronaut_landmarks, aus)
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transformed = 2.0 * astronaut_landmarks @ rotation.T + 7.0
    np.testing.assert_allclose(au_displacements(transformed, aus), 2.0 * base @ rotation.T, atol=1e-9)


def test_directions_of_key_aus(astronaut_landmarks: np.ndarray) -> None:
    def dy(name: str, point: int) -> float:
        return au_displacements(astronaut_landmarks, au_vector({name: 5}))[point, 1]

    assert dy("AU01", 21) < 0 and dy("AU02", 17) < 0  # brows up (y grows down)
    assert dy("AU04", 21) > 0 and dy("AU15", 48) > 0 and dy("AU26", 8) > 0
    assert dy("AU12", 48) < 0 and dy("AU10", 51) < 0 and dy("AU17", 57) < 0
    spread = au_displacements(astronaut_landmarks, au_vector({"AU20": 5}))
    assert spread[48, 0] < 0 < spread[54, 0]  # corners apart
    narrow = au_displacements(astronaut_landmarks, au_vector({"AU23": 5}))
    assert narrow[48, 0] > 0 > narrow[54, 0]  # corners together


def test_full_blink_brings_upper_lids_onto_lower_lids(astronaut_landmarks: np.ndarray) -> None:
    for extra in ({}, {"AU07": 5, "AU06": 5, "AU05": 5}):
        moved = astronaut_landmarks + au_displacements(astronaut_landmarks, au_vector({"AU45": 5, **extra}))
        without = astronaut_landmarks + au_displacements(astronaut_landmarks, au_vector(extra))
        upper, lower = UPPER_LID_TO_LOWER_LID.T
        gap_before = np.linalg.norm(without[upper] - without[lower], axis=1)
        gap_after = np.linalg.norm(moved[upper] - moved[lower], axis=1)
        np.testing.assert_allclose(gap_after, (1 - BLINK_CLOSURE) * gap_before, atol=1e-9)


def test_unknown_au_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown AU"):
        au_vector({"AU28": 1})
