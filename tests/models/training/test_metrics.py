"""Evaluation metrics against their definitions."""

import itertools

import numpy as np
import pytest

from models.training.metrics import mean_absolute_error, pearson_r, psnr_db, roc_auc


def test_roc_auc_equals_the_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    labels = rng.random(60) < 0.4
    pairs = [(p, n) for p, n in itertools.product(scores[labels], scores[~labels])]
    expected = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert roc_auc(scores, labels) == pytest.approx(expected)
    assert roc_auc(np.arange(10.0), np.arange(10) >= 5) == 1.0
    assert np.isnan(roc_auc(np.ones(3), np.zeros(3, bool)))


def test_pearson_and_mae_per_column() -> None:
    x = np.linspace(0, 1, 50)
    prediction = np.stack([x, x, np.ones_like(x)], axis=1)
    target = np.stack([2 * x + 1, -x, x], axis=1)
    r = pearson_r(prediction, target)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and np.isnan(r[2])
    np.testing.assert_allclose(mean_absolute_error(prediction, prediction + 0.5), 0.5)


def test_psnr() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr_db(a, a) == float("inf")
    assert psnr_db(a, a + 1) == pytest.approx(20 * np.log10(255))
