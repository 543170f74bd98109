"""Anti-aliased coverage masks."""

from __future__ import annotations

import numpy as np

from engine.avatar.warp.masks import polygon_coverage, polyline_coverage


def test_polygon_coverage_sums_to_its_area() -> None:
    square = np.array([[10.3, 20.0], [30.1, 20.0], [30.1, 27.6], [10.3, 27.6]])
    mask = polygon_coverage(square, (64, 64))
    assert abs(mask.sum() - 19.8 * 7.6) < 0.03 * 19.8 * 7.6
    assert mask.max() == 1.0 and 0.0 < mask[20, 10] < 1.0  # soft edge


def test_sliver_gives_faint_coverage() -> None:
    sliver = np.array([[10.0, 30.0], [40.0, 30.1], [40.0, 30.2], [10.0, 30.3]])
    mask = polygon_coverage(sliver, (64, 64))
    assert mask.max() < 0.5 and mask.sum() < 0.3 * 30 + 2


def test_polyline_coverage_is_length_times_width() -> None:
    mask = polyline_coverage(np.array([[5.0, 10.0], [45.0, 10.0]]), (32, 64), width_px=1.5)
    assert abs(mask.sum() - 40 * 1.5) < 0.1 * 40 * 1.5


def test_shape_outside_the_image_gives_an_empty_mask() -> None:
    assert not polygon_coverage(np.array([[-30.0, -30.0], [-20.0, -30.0], [-20.0, -20.0]]), (16, 16)).any()
