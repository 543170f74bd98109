"""Shared fixtures: the astronaut portrait's face as a 128x128 crop, its landmarks, a synthesizer."""

from __future__ import annotations

import numpy as np
import pytest

from engine.avatar import load_default_avatar
from models.enroll.landmarks import detect_landmarks
from models.enroll.synthesizer import ExpressionSynthesizer


@pytest.fixture(scope="session")
def astronaut_crop() -> np.ndarray:
    """(128, 128, 3) uint8: the default avatar's generator crop (the astronaut), as enrolment sees it."""
    crop = load_default_avatar().crop  # (3, 128, 128) in [-1, 1]
    return np.rint((crop.transpose(1, 2, 0) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def astronaut_landmarks(astronaut_crop: np.ndarray) -> np.ndarray:
    """(68, 2) float32 landmarks found on the crop itself."""
    return detect_landmarks(astronaut_crop)


@pytest.fixture(scope="session")
def synth(astronaut_crop: np.ndarray, astronaut_landmarks: np.ndarray) -> ExpressionSynthesizer:
    return ExpressionSynthesizer(astronaut_crop, astronaut_landmarks)
