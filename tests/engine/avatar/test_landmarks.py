"""dlib landmarks on the astronaut crop, and the errors around them."""

from __future__ import annotations

import numpy as np
import pytest

from engine.avatar import NoFaceError, detect_face
from engine.avatar.face68 import EYE_LEFT, EYE_RIGHT, JAW, LIPS_INNER, FaceFrame
from engine.avatar.landmarks import detect_landmarks, predictor_path


def test_predictor_is_found_without_importing_the_package() -> None:
    assert predictor_path().is_file()


def test_landmarks_are_found_on_the_crop(astronaut_landmarks: np.ndarray) -> None:
    points = astronaut_landmarks
    assert points.shape == (68, 2) and points.dtype == np.float32
    assert np.all((points >= 0) & (points < 128))
    eyes_y = points[np.concatenate([EYE_LEFT, EYE_RIGHT]), 1].mean()
    assert eyes_y < points[LIPS_INNER, 1].mean() < points[8, 1]  # eyes over mouth over chin
    assert points[8, 1] == points[JAW, 1].max()
    assert 25 < FaceFrame.from_landmarks(points).iod_px < 50  # a face filling a 128 crop


def test_given_box_is_used(astronaut_crop: np.ndarray, astronaut_landmarks: np.ndarray) -> None:
    box = detect_face(astronaut_crop)
    assert np.array_equal(detect_landmarks(astronaut_crop, box), astronaut_landmarks)


def test_no_face_is_a_clear_error() -> None:
    blank = np.full((128, 128, 3), 127, dtype=np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        detect_landmarks(blank)


def test_wrong_image_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        detect_landmarks(np.zeros((128, 128), dtype=np.uint8))
