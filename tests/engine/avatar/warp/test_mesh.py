"""The piecewise-affine warp's shift field: identity, fixed border, direction of the mapping, folds, skimage."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import Delaunay

from engine.avatar.warp.mesh import PiecewiseAffineWarp, border_anchors

SHAPE = (128, 128)


def warped(mesh: PiecewiseAffineWarp, image: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) sampled bilinearly (edge clamp) along the mesh's shift field."""
    field = mesh.shift_field(targets)
    ys, xs = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    where = [ys + field[..., 1], xs + field[..., 0]]
    channels = [ndimage.map_coordinates(image[..., c], where, order=1, mode="nearest") for c in range(image.shape[2])]
    return np.stack(channels, axis=-1)


@pytest.fixture()
def noise() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, SHAPE + (3,)).astype(np.float32)


@pytest.fixture()
def points() -> np.ndarray:
    return np.random.default_rng(1).uniform(20, 108, (40, 2))


def test_identical_points_give_no_shift(points: np.ndarray) -> None:
    warp = PiecewiseAffineWarp(points, SHAPE)
    field = warp.shift_field(warp.points[: len(points)])
    assert field.shape == (128, 128, 2) and field.dtype == np.float32 and not field.any()


def test_border_pixels_never_move(noise: np.ndarray, points: np.ndarray) -> None:
    warp = PiecewiseAffineWarp(points, SHAPE)
    rng = np.random.default_rng(2)
    for _ in range(5):
        moved = warp.fold_free(points + rng.normal(0, 6, points.shape))
        field = warp.shift_field(moved)
        assert field.any()
        for ring in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
            assert not field[ring].any()


def test_pixels_come_from_where_their_point_came_from() -> None:
    ys, xs = np.mgrid[0:128, 0:128].astype(np.float32)
    coordinates = np.stack([xs, ys, np.zeros_like(xs)], axis=-1)  # each pixel holds its own (x, y)
    source = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 85.0]])
    warp = PiecewiseAffineWarp(source, SHAPE)
    target = source + [[3.0, -4.0], [-2.0, 5.0], [0.0, 6.0]]
    out = warped(warp, coordinates, target)
    for (x, y), (sx, sy) in zip(target.astype(int), source, strict=True):
        np.testing.assert_allclose(out[y, x, :2], [sx, sy], atol=1e-4)


def _areas(corners: np.ndarray) -> np.ndarray:
    (a, b, c) = corners.transpose(1, 0, 2)
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def test_fold_free_shortens_only_folding_moves(points: np.ndarray) -> None:
    warp = PiecewiseAffineWarp(points, SHAPE)
    gentle = points + 0.5
    np.testing.assert_array_equal(warp.fold_free(gentle), gentle)
    wild = points.copy()
    towards_centre = np.array([64.0, 64.0]) - points[0]
    wild[0] = points[0] + 60.0 * towards_centre / np.linalg.norm(towards_centre)  # far past its neighbours
    safe = warp.fold_free(wild)
    assert np.linalg.norm(safe[0] - points[0]) < 60.0
    corners = np.concatenate([safe, warp.points[len(points) :]])[warp.triangles]
    before = warp.points[warp.triangles]
    assert not np.any((_areas(corners) < 0) & (_areas(before) > 0))
    outside = warp.fold_free(points - 500.0)
    assert outside.min() >= 1.0


def test_matches_skimage_where_the_triangulations_agree(noise: np.ndarray) -> None:
    transform_module = pytest.importorskip("skimage.transform")
    points = np.random.default_rng(4).uniform(24, 104, (30, 2))
    warp = PiecewiseAffineWarp(points, SHAPE)
    ours = {tuple(sorted(t)) for t in warp.triangles}
    for amplitude_px in (2.0, 1.0, 0.5, 0.25):  # the largest smooth move skimage triangulates as we do
        moved = points + amplitude_px * np.sin(points[:, ::-1] / 9.0)
        targets = np.concatenate([moved, warp.points[len(points) :]])
        if {tuple(sorted(t)) for t in Delaunay(targets).simplices} == ours:
            break
    else:
        pytest.fail("test set-up: no displacement keeps the Delaunay triangulation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # estimate() is deprecated in skimage 0.26
        transform = transform_module.PiecewiseAffineTransform()
        transform.estimate(targets, warp.points)
    reference = transform_module.warp(noise.astype(np.float64), transform, order=1, preserve_range=True)
    np.testing.assert_allclose(warped(warp, noise, moved), reference, atol=1e-2)


def test_anchors_frame_the_crop() -> None:
    anchors = border_anchors(128, 128, 8)
    assert anchors.shape == (32, 2)
    assert {(0.0, 0.0), (127.0, 0.0), (127.0, 127.0), (0.0, 127.0)} <= set(map(tuple, anchors))
    assert np.all((anchors[:, 0] % 127 == 0) | (anchors[:, 1] % 127 == 0))
