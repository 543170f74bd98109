"""A face rigged for the instant renderer: landmarks, mesh and palette once, face layers for any AUs after.

Landmarks move by the AU table (:mod:`engine.avatar.warp.displacements`), from
where the photo has them (its own expression, ``photo_aus``) to where the
target AUs put them; the mesh (:mod:`engine.avatar.warp.mesh`) turns that into
a shift per pixel, and what a warp cannot show is painted
(:mod:`engine.avatar.warp.fills`). The result is face layers
(:class:`kernels.layers.FaceLayers`) for the compositor, which reads the photo
at its own resolution through the shift.
"""

from __future__ import annotations

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY, N_AUS, au_index
from engine.avatar.face68 import INNER_LIP_PAIRS, JAW, N_LANDMARKS, UPPER_LID_TO_LOWER_LID, FaceFrame
from engine.avatar.warp.canvas import Canvas
from engine.avatar.warp.displacements import au_displacements
from engine.avatar.warp.fills import fill_eyes, fill_mouth, sample_palette
from engine.avatar.warp.mesh import PiecewiseAffineWarp
from kernels.geometry import CropBox
from kernels.layers import FaceLayers
from kernels.reference import crop_resize_normalize

JAW_HALO_IOD = 0.25
"""Helper points sit this far (IOD) outside the jaw contour, away from the nose tip."""
JAW_HALO_FOLLOW = 0.5
"""Fraction of its jaw point's displacement a helper point follows."""
LIPS_MEET_IOD = 0.005
"""Closed lips keep this gap (IOD) between each pair of inner-lip points, so the warp never folds them."""
TOPOLOGY_GAP_IOD = 0.06
"""Closed lips or lids are pried this far apart (IOD) before triangulating, so no triangle bridges them."""

_AU45 = au_index("AU45")


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


class WarpRig:
    """One face, ready to be drawn with any AU vector.

    crop: (S, S, 3) uint8 RGB, the face's crop at the renderer's resolution.
    landmarks: (68, 2) ``(x, y)`` crop pixels of the face in ``crop``. Points
        outside the crop are clamped just inside it and cannot move out.
    photo_aus: (17,) the photo's own AU intensities
        (:func:`engine.avatar.photo_aus.estimate_photo_aus`); drawing them gives
        the photo back.
    portrait_px_per_crop_px: the crop box's side / S, to give shifts in
        portrait pixels (1 when the crop is the picture itself).

    Set-up (triangulation, palette) costs a few ms; each frame a few more.
    """

    def __init__(
        self,
        crop: np.ndarray,
        landmarks: np.ndarray,
        photo_aus: np.ndarray,
        *,
        portrait_px_per_crop_px: float = 1.0,
    ) -> None:
        crop = np.asarray(crop)
        size = crop.shape[0]
        if crop.dtype != np.uint8 or crop.shape != (size, size, 3):
            raise ValueError(f"expected a square (S, S, 3) uint8 crop, got {crop.dtype} {crop.shape}")
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.shape != (N_LANDMARKS, 2):
            raise ValueError(f"expected ({N_LANDMARKS}, 2) landmarks, got {landmarks.shape}")
        self.photo_aus = np.asarray(photo_aus, dtype=np.float64)
        if self.photo_aus.shape != (N_AUS,):
            raise ValueError(f"expected {N_AUS} photo AU intensities, got shape {self.photo_aus.shape}")
        self.crop = crop
        self.size = size
        self.portrait_px_per_crop_px = float(portrait_px_per_crop_px)
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

    @classmethod
    def of_portrait(
        cls, portrait: np.ndarray, box: CropBox, size: int, landmarks: np.ndarray, photo_aus: np.ndarray
    ) -> WarpRig:
        """The face of ``portrait`` (uint8 (H, W, 3)) rigged over ``box`` at ``size`` px.

        landmarks: (68, 2) portrait pixels; they are mapped into the crop as
        ``crop_resize_normalize`` samples it (pixel centres line up).
        """
        crop = crop_resize_normalize(portrait, box, size)
        crop_u8 = np.clip(np.rint((crop.transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)
        scale = size / box.size
        in_crop = (np.asarray(landmarks, dtype=np.float64) + 0.5 - [box.x0, box.y0]) * scale - 0.5
        return cls(crop_u8, in_crop, photo_aus, portrait_px_per_crop_px=box.size / size)

    def moved_points(self, aus: np.ndarray) -> np.ndarray:
        """Warp targets for the AU vector ``aus`` (17,): (68 + 17, 2) pixels, landmarks then jaw helpers.

        Closing lips stop where they meet: a lower inner-lip point that would
        pass above the upper one opposite stays just below it (the photo's
        lips are rarely parted evenly, the table moves them evenly). Kept
        inside the crop and fold-free (:meth:`PiecewiseAffineWarp.fold_free`).
        """
        shift = au_displacements(self.landmarks, aus, self.photo_aus)
        moved = self.landmarks + shift
        for upper, lower in INNER_LIP_PAIRS:
            overlap = float((moved[lower] - moved[upper]) @ self.frame.up) + LIPS_MEET_IOD * self.frame.iod_px
            if overlap > 0:
                shift[lower] -= overlap * self.frame.up
        shift = np.concatenate([shift, JAW_HALO_FOLLOW * shift[JAW]])
        return self._warp.fold_free(self._warp.points[: len(shift)] + shift)

    def canvas(self, aus: np.ndarray) -> Canvas:
        """The face showing ``aus`` (17,) intensities 0..5 (AU_NAMES order) as a canvas, crop pixels."""
        aus = np.clip(np.asarray(aus, dtype=np.float64), 0.0, AU_MAX_INTENSITY)
        if aus.shape != (N_AUS,):
            raise ValueError(f"expected {N_AUS} AU intensities, got shape {aus.shape}")
        targets = self.moved_points(aus)
        canvas = Canvas.of_shift(self._warp.shift_field(targets))
        moved = targets[:N_LANDMARKS]
        fill_mouth(canvas, self.landmarks, moved, self.frame, self.palette)
        closure = aus[_AU45] / AU_MAX_INTENSITY
        fill_eyes(canvas, self._source, self.landmarks, moved, self.frame, closure, self.palette)
        return canvas

    def layers(self, aus: np.ndarray) -> FaceLayers:
        """The face showing ``aus`` as layers of side S for the compositor (shift in portrait pixels)."""
        return self.canvas(aus).layers(self.portrait_px_per_crop_px)
