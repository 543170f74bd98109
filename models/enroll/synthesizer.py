"""AU-driven expression synthesis from one face crop: training pairs for enrolling a person.

Landmarks move by the AU table (:mod:`engine.avatar.warp.displacements`), the crop
is warped along (:mod:`engine.avatar.warp.mesh`), and what a warp cannot show is
painted (:mod:`engine.avatar.warp.fills`). The photo's own expression is the
reference: AUs are changes from it, and all-zero AUs give the crop back.
"""

from __future__ import annotations

import numpy as np

from engine.avatar.face68 import INNER_LIP_PAIRS, JAW, N_LANDMARKS, UPPER_LID_TO_LOWER_LID, FaceFrame
from engine.avatar.warp.displacements import AU_NAMES, MAX_INTENSITY, N_AUS, au_displacements
from engine.avatar.warp.fills import fill_eyes, fill_mouth, sample_palette
from engine.avatar.warp.mesh import PiecewiseAffineWarp
from models.enroll.au_sampler import sample_aus

CROP_SIZE = 128
JAW_HALO_IOD = 0.25
"""Helper points sit this far (IOD) outside the jaw contour, away from the nose tip."""
JAW_HALO_FOLLOW = 0.5
"""Fraction of its jaw point's displacement a helper point follows."""
TOPOLOGY_GAP_IOD = 0.06
"""Closed lips or lids are pried this far apart (IOD) before triangulating, so no triangle bridges them."""

_AU45 = AU_NAMES.index("AU45")


def _pried_open(landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """Copy of ``landmarks`` (68, 2) with each upper lip / lid point >= TOPOLOGY_GAP_IOD above its lower one.

    Only the triangulation sees these points. A closed mouth's inner lip
    points nearly coincide; triangulated as they are, a triangle may join an
    upper-lip point to a lower-lip point across the other lip, and opening the
    mouth would then tear the lip. Prying them apart first makes the
    triangles between the lips lie inside the opening.
    """
    points = np.asarray(landmarks, dtype=np.float64).copy()
    for upper, lower in np.concatenate([INNER_LIP_PAIRS, UPPER_LID_TO_LOWER_LID]):
        gap = float((points[upper] - points[lower]) @ frame.up)
        short = TOPOLOGY_GAP_IOD * frame.iod_px - gap
        if short > 0:
            points[upper] += 0.5 * short * frame.up
            points[lower] -= 0.5 * short * frame.up
    return points


def _jaw_halo(landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """(17, 2) helper points outside the jaw contour (0-16), one per jaw point.

    With only the jaw contour moving, a dropping chin drags the neck and
    background in long thin triangles whose edges put kinks in the photo's
    real chin outline (it never lies exactly on the landmarks). Helpers a
    little outside the contour, following it half-way, move a band around
    the jawline almost rigidly and spread the squeeze over the neck below.
    """
    outward = landmarks[JAW] - landmarks[30]
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    return landmarks[JAW] + JAW_HALO_IOD * frame.iod_px * outward


class ExpressionSynthesizer:
    """Renders one person's face crop with any AU vector.

    crop: (128, 128, 3) uint8 RGB face crop, the photo's own expression.
    landmarks: (68, 2) dlib landmarks of ``crop``, ``(x, y)`` crop pixels
        (:func:`engine.avatar.landmarks.detect_landmarks`). Points outside
        the crop are clamped just inside it and cannot move out.

    Set-up (triangulation, palette) costs a few ms; each render a few more.
    """

    def __init__(self, crop: np.ndarray, landmarks: np.ndarray) -> None:
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.shape != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"expected a ({CROP_SIZE}, {CROP_SIZE}, 3) uint8 crop, got {crop.dtype} {crop.shape}")
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.shape != (N_LANDMARKS, 2):
            raise ValueError(f"expected ({N_LANDMARKS}, 2) landmarks, got {landmarks.shape}")
        self.crop = crop
        self._source = crop.astype(np.float32)
        self.frame = FaceFrame.from_landmarks(landmarks)
        halo = _jaw_halo(landmarks, self.frame)
        self._warp = PiecewiseAffineWarp(
            np.concatenate([landmarks, halo]),
            crop.shape[:2],
            topology_points=np.concatenate([_pried_open(landmarks, self.frame), halo]),
        )
        self.landmarks = self._warp.points[:N_LANDMARKS].copy()
        self.palette = sample_palette(crop, self.landmarks)

    def moved_points(self, aus: np.ndarray) -> np.ndarray:
        """Warp targets for the AU vector ``aus`` (17,): (68 + 17, 2) pixels, landmarks then jaw helpers.

        Kept inside the crop and fold-free (:meth:`PiecewiseAffineWarp.fold_free`).
        """
        shift = au_displacements(self.landmarks, aus)
        shift = np.concatenate([shift, JAW_HALO_FOLLOW * shift[JAW]])
        return self._warp.fold_free(self._warp.points[: len(shift)] + shift)

    def render(self, aus: np.ndarray) -> np.ndarray:
        """The crop showing ``aus`` (17,) intensities 0..5 (AU_NAMES order): (128, 128, 3) uint8."""
        aus = np.clip(np.asarray(aus, dtype=np.float64), 0.0, MAX_INTENSITY)
        if aus.shape != (N_AUS,):
            raise ValueError(f"expected {N_AUS} AU intensities, got shape {aus.shape}")
        targets = self.moved_points(aus)
        image = self._warp.warp(self._source, targets)
        moved = targets[:N_LANDMARKS]
        image = fill_mouth(image, self._source, self.landmarks, moved, self.frame, self.palette)
        closure = aus[_AU45] / MAX_INTENSITY
        image = fill_eyes(image, self._source, self.landmarks, moved, self.frame, closure, self.palette)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    def sample_aus(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 17) float32 training AU vectors (see :func:`models.enroll.au_sampler.sample_aus`)."""
        return sample_aus(rng, n)

    def make_pairs(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` training pairs: aus (n, 17) float32 in 0..5 and images (n, 128, 128, 3) uint8.

        The same seed gives the same pairs.
        """
        aus = self.sample_aus(np.random.default_rng(seed), n)
        images = np.empty((n, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
        for i, vector in enumerate(aus):
            images[i] = self.render(vector)
        return aus, images
