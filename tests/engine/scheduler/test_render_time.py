"""Render-time estimates: an average per batch size, erring long for sizes never measured."""

import pytest

from engine.scheduler import RenderTimeEstimator


def test_nothing_measured_estimates_zero() -> None:
    assert RenderTimeEstimator().estimate_s(4) == 0.0


def test_each_size_keeps_an_exponential_moving_average() -> None:
    estimator = RenderTimeEstimator(smoothing=0.25)
    estimator.observe(2, 0.010)
    assert estimator.estimate_s(2) == pytest.approx(0.010)
    estimator.observe(2, 0.030)
    assert estimator.estimate_s(2) == pytest.approx(0.010 + 0.25 * 0.020)
    estimator.observe(4, 0.100)
    assert estimator.estimate_s(2) == pytest.approx(0.015)


def test_unmeasured_sizes_take_an_upper_bound() -> None:
    estimator = RenderTimeEstimator()
    estimator.observe(2, 0.010)
    estimator.observe(6, 0.024)
    assert estimator.estimate_s(1) == pytest.approx(0.010)  # a smaller batch is no dearer than 2
    assert estimator.estimate_s(3) == pytest.approx(0.024)  # nor than 6
    assert estimator.estimate_s(12) == pytest.approx(0.048)  # linear beyond the largest measured


@pytest.mark.parametrize("smoothing", [0.0, -0.1, 1.5])
def test_smoothing_outside_its_range_is_refused(smoothing: float) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        RenderTimeEstimator(smoothing=smoothing)
