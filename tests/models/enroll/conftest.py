"""Shared fixture: a synthesizer on the astronaut's crop (the crop and landmarks come from tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from models.enroll.synthesizer import ExpressionSynthesizer


@pytest.fixture(scope="session")
def synth(astronaut_crop: np.ndarray, astronaut_landmarks: np.ndarray) -> ExpressionSynthesizer:
    return ExpressionSynthesizer(astronaut_crop, astronaut_landmarks)
