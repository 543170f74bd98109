"""Training AU vectors: range, determinism, and a speech-heavy mix."""

from __future__ import annotations

import numpy as np

from engine.avatar.warp.displacements import AU_NAMES
from models.enroll.au_sampler import RECIPES, sample_aus


def test_weights_sum_to_one_and_name_real_aus() -> None:
    assert abs(sum(weight for weight, _ in RECIPES.values()) - 1.0) < 1e-9
    assert all(au in AU_NAMES for _, aus in RECIPES.values() for au in aus)


def test_samples_are_in_range_and_deterministic() -> None:
    aus = sample_aus(np.random.default_rng(0), 4000)
    assert aus.shape == (4000, 17) and aus.dtype == np.float32
    assert aus.min() >= 0.0 and aus.max() <= 5.0
    np.testing.assert_array_equal(aus, sample_aus(np.random.default_rng(0), 4000))


def test_mix_is_mostly_speech_with_some_of_everything() -> None:
    aus = sample_aus(np.random.default_rng(1), 4000)
    column = {name: aus[:, i] for i, name in enumerate(AU_NAMES)}
    assert 0.5 < np.mean((column["AU25"] > 0) | (column["AU26"] > 0)) < 0.85
    assert 0.04 < np.mean(~aus.any(axis=1)) < 0.2  # photo-unchanged targets
    assert 0.08 < np.mean(column["AU45"] > 0) < 0.3
    assert 0.1 < np.mean(column["AU12"] > 0) < 0.4
    assert np.mean((column["AU01"] > 0) & (column["AU02"] > 0) & (column["AU26"] > 0)) > 0.03  # surprise
