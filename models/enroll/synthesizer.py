"""AU-driven expression synthesis from one face crop: training pairs for enrolling a person.

The engine's instant renderer (:class:`engine.avatar.warp.rig.WarpRig`)
drawing the 128x128 crop the generator sees, composed into that crop by the
engine's own compositor, so a generator learns exactly what the live warp
renderer shows. AUs are absolute targets: 0 is a relaxed face, and the photo's
own expression (:func:`engine.avatar.photo_aus.estimate_photo_aus`) gives the
crop back.
"""

from __future__ import annotations

import numpy as np

from engine.avatar import CROP_SIZE
from engine.avatar.lips import refine_upper_lip
from engine.avatar.photo_aus import estimate_photo_aus
from engine.avatar.warp.rig import WarpRig
from kernels.compose import compose_rgb
from kernels.geometry import CropBox
from models.enroll.au_sampler import sample_aus


class ExpressionSynthesizer:
    """Renders one person's face crop with any AU vector.

    crop: (128, 128, 3) uint8 RGB face crop, the photo's own expression.
    landmarks: (68, 2) dlib landmarks of ``crop``, ``(x, y)`` crop pixels
        (:func:`engine.avatar.landmarks.detect_landmarks`); the upper lip is
        raised over teeth the crop shows (:func:`engine.avatar.lips.refine_upper_lip`).
        Points outside the crop are clamped just inside it and cannot move out.

    Attributes: ``photo_aus`` (the crop's own expression), ``landmarks``
    (as clamped), ``frame``, ``palette``. Set-up costs a few ms; each render a few more.
    """

    def __init__(self, crop: np.ndarray, landmarks: np.ndarray) -> None:
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.shape != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"expected a ({CROP_SIZE}, {CROP_SIZE}, 3) uint8 crop, got {crop.dtype} {crop.shape}")
        self.crop = crop
        landmarks = refine_upper_lip(crop, np.asarray(landmarks, dtype=np.float32))  # as the engine's avatars
        self.rig = WarpRig(crop, landmarks, estimate_photo_aus(landmarks))
        self.photo_aus = self.rig.photo_aus.astype(np.float32)
        self.landmarks = self.rig.landmarks
        self.frame = self.rig.frame
        self.palette = self.rig.palette
        self._box = CropBox(0.0, 0.0, float(CROP_SIZE))
        self._whole = np.ones((CROP_SIZE, CROP_SIZE), np.float32)

    def moved_points(self, aus: np.ndarray) -> np.ndarray:
        """Warp targets for the AU vector ``aus`` (17,): (68 + 17, 2) pixels, landmarks then jaw helpers."""
        return self.rig.moved_points(aus)

    def render(self, aus: np.ndarray) -> np.ndarray:
        """The crop showing ``aus`` (17,) intensities 0..5 (AU_NAMES order): (128, 128, 3) uint8.

        Composed by the compiled compositor where there is one (the same bytes
        as ``kernels.reference.compose``, in half the time: enrolment renders
        a batch of these every step).
        """
        return compose_rgb(self.crop, self._box, self.rig.layers(aus), self._whole)

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
