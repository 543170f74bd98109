"""The photo's own AUs from its landmarks: the smiling astronaut smiles, a relaxed face reads 0, round trips."""

import numpy as np
import pytest

from engine.au import AU_NAMES
from engine.avatar.photo_aus import DEAD_ZONE_IOD, estimate_photo_aus, mouth_measures
from engine.avatar.warp.displacements import au_displacements, au_vector


@pytest.fixture(scope="module")
def relaxed(astronaut_landmarks: np.ndarray) -> np.ndarray:
    """The astronaut's landmarks with her smile and open lips taken away (rendering AU 0)."""
    landmarks = astronaut_landmarks.astype(np.float64)
    return landmarks + au_displacements(landmarks, np.zeros(17), estimate_photo_aus(landmarks))


def named(aus: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(AU_NAMES, aus, strict=True) if value}


def test_the_astronaut_smiles_with_her_lips_apart(astronaut_landmarks: np.ndarray) -> None:
    aus = estimate_photo_aus(astronaut_landmarks)
    assert aus.dtype == np.float32 and aus.shape == (17,)
    assert set(named(aus)) <= {"AU12", "AU25", "AU26"}
    assert aus[AU_NAMES.index("AU12")] >= 3 and aus[AU_NAMES.index("AU25")] >= 3
    gap, corners = mouth_measures(astronaut_landmarks)
    assert gap > 0.1 and corners > 0.05  # IOD: lips well apart, corners well above the lip line


def test_rendering_zero_brings_the_mouth_to_rest(astronaut_landmarks: np.ndarray, relaxed: np.ndarray) -> None:
    photo_gap, photo_corners = mouth_measures(astronaut_landmarks)
    gap, corners = mouth_measures(relaxed)
    assert abs(gap) < 0.1 * photo_gap
    # Her smile is broader than the table's AU12 = 5, and the estimate stops at 5: a trace of it may stay.
    assert abs(corners) < 0.35 * photo_corners


def test_a_relaxed_face_driven_with_aus_reads_them_back(relaxed: np.ndarray) -> None:
    base = estimate_photo_aus(relaxed)  # the trace of her smile left (the test above)
    target = au_vector({"AU12": 2.0, "AU25": 2.0})
    smiling = relaxed + au_displacements(relaxed, target)
    read = estimate_photo_aus(smiling) - base
    assert read[AU_NAMES.index("AU12")] == pytest.approx(2.0, abs=0.5)
    assert read[AU_NAMES.index("AU25")] == pytest.approx(2.0, abs=0.5)
    sad = relaxed + au_displacements(relaxed, au_vector({"AU15": 4.0}))
    sad_read = estimate_photo_aus(sad)[AU_NAMES.index("AU15")]
    assert 1.5 < sad_read < 4.0  # the trace of smile (base AU12 ~1.3) cancels part of the frown
    assert base[AU_NAMES.index("AU12")] > 0.5


def test_head_roll_and_scale_do_not_change_the_reading(astronaut_landmarks: np.ndarray) -> None:
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 2.5 * astronaut_landmarks.astype(np.float64) @ rotation.T + [300.0, -40.0]
    np.testing.assert_allclose(estimate_photo_aus(moved), estimate_photo_aus(astronaut_landmarks), atol=1e-4)


def test_noise_below_the_dead_zone_reads_as_rest(relaxed: np.ndarray) -> None:
    assert DEAD_ZONE_IOD > 0
    np.testing.assert_array_equal(estimate_photo_aus(relaxed + 0.01), estimate_photo_aus(relaxed))
    with pytest.raises(ValueError, match="68, 2"):
        estimate_photo_aus(relaxed[:10])
