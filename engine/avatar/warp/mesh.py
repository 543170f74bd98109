"""Piecewise-affine image warp from source landmarks to moved landmarks.

The crop is cut into triangles (Delaunay over the landmarks plus fixed anchors
on the crop border); each triangle is mapped affinely from its moved corners
back to its source corners, which says where every output pixel is to be
sampled from (:meth:`PiecewiseAffineWarp.shift_field`; the compositor samples
the photo there at its own resolution). Anchors never move, so the border and the background near it stay
put.

The triangulation is computed once, from the source points (or from a
``topology_points`` stand-in with the same correspondence), and kept for
every warp: a fixed topology keeps the warp continuous in the displacement
(re-triangulating the moved points would flip edges and make pixels jump).
The price is that large displacements could turn triangles inside out;
:meth:`PiecewiseAffineWarp.fold_free` shortens such displacements.

Only pixels of triangles with a moved corner get a shift; the rest keep 0.
Which triangle holds a pixel is found exactly, with barycentric weights over
each triangle's bounding box, vectorised over all triangles. Where the
triangulations agree, sampling along the field equals
``skimage.transform.PiecewiseAffineTransform`` + ``skimage.transform.warp``
(``order=1``) to 1e-2 grey levels (tests/engine/avatar/warp/test_mesh.py);
skimage estimates an affine map per triangle in Python and re-triangulates the
moved points, ~70 times slower."""

from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay

ANCHORS_PER_SIDE = 8
"""Border segments per crop side; 8 on a 128 crop puts an anchor every 16 px."""

_INSIDE_TOLERANCE = 1e-9
"""Barycentric weights down to minus this count as inside (pixels exactly on an edge)."""

BORDER_MARGIN_PX = 1.0
"""Landmarks are kept this far inside the crop so that they never cross the fixed border."""


def border_anchors(height: int, width: int, per_side: int = ANCHORS_PER_SIDE) -> np.ndarray:
    """(4 * per_side, 2) ``(x, y)`` points evenly spaced on the border, corners included."""
    t = np.linspace(0.0, 1.0, per_side + 1)[:-1]
    right, bottom = width - 1.0, height - 1.0
    top = np.stack([t * right, np.zeros_like(t)], axis=1)
    right_side = np.stack([np.full_like(t, right), t * bottom], axis=1)
    bottom_side = np.stack([right - t * right, np.full_like(t, bottom)], axis=1)
    left_side = np.stack([np.zeros_like(t), bottom - t * bottom], axis=1)
    return np.concatenate([top, right_side, bottom_side, left_side])


def _expand_ranges(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For inclusive integer ranges ``first[i]..last[i]`` (empty when last < first): (owner i, value) per element."""
    counts = np.maximum(last - first + 1, 0)
    owner = np.repeat(np.arange(len(counts)), counts)
    value = first[owner] + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, value


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle; > 0 for counter-clockwise in (x, y) with y down."""
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


class PiecewiseAffineWarp:
    """Warps one image's pixels along with its landmarks; set up once per source, reused per frame.

    src_points: (N, 2) ``(x, y)`` pixels of the points that move (landmarks and
        any helpers) in the source image.
    shape: (height, width) of the images warped.
    topology_points: (N, 2) stand-ins for ``src_points`` used only to choose the
        triangles (e.g. with closed lips pried apart, so that triangles do not
        bridge the mouth); defaults to ``src_points``.
    anchors_per_side: fixed border anchors per crop side.

    Attributes: ``points`` (N + anchors, 2) source positions, moving points first;
    ``triangles`` (T, 3) indices into them, counter-clockwise in the topology.
    """

    def __init__(
        self,
        src_points: np.ndarray,
        shape: tuple[int, int],
        *,
        topology_points: np.ndarray | None = None,
        anchors_per_side: int = ANCHORS_PER_SIDE,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.n_moving = len(src_points)
        anchors = border_anchors(*self.shape, anchors_per_side)
        self.points = np.concatenate([self._inside(src_points), anchors])
        topology = self.points if topology_points is None else np.concatenate([self._inside(topology_points), anchors])
        triangles = Delaunay(topology).simplices
        clockwise = _signed_areas(topology, triangles) < 0
        triangles[clockwise] = triangles[clockwise][:, ::-1]
        self.triangles = triangles
        self._src_areas = _signed_areas(self.points, self.triangles)
        ys, xs = np.mgrid[0 : self.shape[0], 0 : self.shape[1]]
        self._grid = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], axis=-1).astype(np.float64)

    def _inside(self, points: np.ndarray) -> np.ndarray:
        """Clamp (N, 2) points to BORDER_MARGIN_PX inside the crop."""
        points = np.asarray(points, dtype=np.float64)
        upper = np.array([self.shape[1], self.shape[0]], dtype=np.float64) - 1.0 - BORDER_MARGIN_PX
        return np.clip(points, BORDER_MARGIN_PX, upper)

    def fold_free(self, dst_points: np.ndarray) -> np.ndarray:
        """Moved landmarks (N, 2) made safe to warp to.

        Clamps them inside the crop, then, if some triangle that has area in
        the source would turn inside out, shortens *all* displacements by the
        largest common factor that avoids it (bisection). Returns (N, 2) float64;
        equal to the clamped input whenever it was already fold-free.
        """
        start = self.points[: self.n_moving]
        target = self._inside(dst_points)
        if self._folds(target):
            low, high = 0.0, 1.0
            for _ in range(12):
                mid = 0.5 * (low + high)
                low, high = (low, mid) if self._folds(start + mid * (target - start)) else (mid, high)
            target = start + low * (target - start)
        return target

    def _folds(self, dst_points: np.ndarray) -> bool:
        points = np.concatenate([dst_points, self.points[self.n_moving :]])
        return bool(np.any((_signed_areas(points, self.triangles) < 0) & (self._src_areas > 0)))

    def _moving_pixels(self, dst_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output pixels that do not map to themselves, and where they come from.

        Only triangles with a moved corner are rasterised; every other pixel
        (and the border ring, which lies on anchor-to-anchor edges) maps to
        itself exactly. Returns flat pixel indices (M,) and their (M, 2) ``(x, y)``
        source positions.
        """
        dst = np.concatenate([np.asarray(dst_points, dtype=np.float64), self.points[self.n_moving :]])
        moved = np.any(dst != self.points, axis=1)
        triangles = self.triangles[moved[self.triangles].any(axis=1)]
        corners_dst = dst[triangles]  # (T, 3, 2)
        design = np.concatenate([corners_dst, np.ones((len(triangles), 3, 1))], axis=2)
        usable = np.abs(np.linalg.det(design)) > 1e-6  # collapsed triangles cover no pixel
        maps = np.linalg.solve(design[usable], self.points[triangles[usable]])  # (U, 3, 2): [x y 1] @ map
        labels = self._labels(corners_dst[usable])
        labels[[0, -1], :] = -1
        labels[:, [0, -1]] = -1
        flat = labels.ravel()
        pixels = np.flatnonzero(flat >= 0)
        sources = np.einsum("mk,mkj->mj", self._grid[pixels], maps[flat[pixels]])
        return pixels, sources

    def _labels(self, corners_dst: np.ndarray) -> np.ndarray:
        """(H, W) int32 index of a triangle (T, 3, 2) whose closure holds each pixel centre, -1 if none.

        Scan conversion vectorised over all triangles at once (no Python
        loop): for every (triangle, pixel row) the span between the
        triangle's edges on that row is computed exactly, and its pixel
        centres are labelled. Pixels on a shared edge take the higher index;
        both maps agree there.
        """
        height, width = self.shape
        top = np.clip(np.ceil(corners_dst[:, :, 1].min(axis=1) - _INSIDE_TOLERANCE), 0, height)
        bottom = np.clip(np.floor(corners_dst[:, :, 1].max(axis=1) + _INSIDE_TOLERANCE), -1, height - 1)
        triangle, y = _expand_ranges(top.astype(int), bottom.astype(int))
        start = corners_dst[triangle]  # (R, 3, 2): edge k runs from corner k to corner k + 1
        end = np.roll(start, -1, axis=1)
        rise = end[:, :, 1] - start[:, :, 1]
        row = y[:, None].astype(np.float64)
        crosses = (row >= np.minimum(start[:, :, 1], end[:, :, 1]) - _INSIDE_TOLERANCE) & (
            row <= np.maximum(start[:, :, 1], end[:, :, 1]) + _INSIDE_TOLERANCE
        )
        flat = rise == 0.0  # a horizontal edge on this row contributes both ends
        t = np.clip((row - start[:, :, 1]) / np.where(flat, 1.0, rise), 0.0, 1.0)
        x_at = start[:, :, 0] + np.where(flat, 0.0, t) * (end[:, :, 0] - start[:, :, 0])
        x_other = np.where(flat, end[:, :, 0], x_at)
        left = np.where(crosses, np.minimum(x_at, x_other), np.inf).min(axis=1)
        right = np.where(crosses, np.maximum(x_at, x_other), -np.inf).max(axis=1)
        first = np.clip(np.ceil(left - _INSIDE_TOLERANCE), 0, width).astype(int)
        last = np.clip(np.floor(right + _INSIDE_TOLERANCE), -1, width - 1).astype(int)
        span, x = _expand_ranges(first, last)
        labels = np.full(height * width, -1, dtype=np.int32)
        np.maximum.at(labels, y[span] * width + x, triangle[span].astype(np.int32))
        return labels.reshape(height, width)

    def shift_field(self, dst_points: np.ndarray) -> np.ndarray:
        """Where each pixel reads the source so that its points move to ``dst_points`` (N, 2).

        dst_points should come from :meth:`fold_free`. Returns float32
        (H, W, 2): ``(dx, dy)`` pixels from each pixel to its source position,
        exactly 0 wherever the warp leaves the image as it is. Sampling the
        source bilinearly at ``(x + dx, y + dy)`` gives the warped image.
        """
        field = np.zeros((*self.shape, 2), dtype=np.float32)
        pixels, sources = self._moving_pixels(dst_points)
        field.reshape(-1, 2)[pixels] = sources - self._grid[pixels, :2]
        return field
