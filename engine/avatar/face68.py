"""The dlib / iBUG 68-point landmark layout and the face frame measured from it.

Indices are those of dlib's ``shape_predictor_68_face_landmarks``. "Left" and
"right" below are *image* sides (the subject's right eye is the image-left
eye, points 36-41). Points are ``(x, y)`` in pixels, y down.

The face frame turns face-relative directions into pixels: its unit is the
inter-ocular distance (IOD, between the two eye centres), its lateral axis runs
from the image-left eye centre to the image-right one, and "up" is
perpendicular to it, towards the forehead. Displacements written in this frame
follow in-plane head roll and scale with the face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 68

JAW = np.arange(0, 17)
"""Jaw contour from the image-left ear level (0) over the chin (8) to the right (16)."""
BROW_LEFT = np.arange(17, 22)
"""Image-left brow, outer (17) to inner (21)."""
BROW_RIGHT = np.arange(22, 27)
"""Image-right brow, inner (22) to outer (26)."""
EYE_LEFT = np.arange(36, 42)
"""Image-left eye: outer corner 36, upper lid 37-38, inner corner 39, lower lid 40-41."""
EYE_RIGHT = np.arange(42, 48)
"""Image-right eye: inner corner 42, upper lid 43-44, outer corner 45, lower lid 46-47."""
LIPS_INNER = np.arange(60, 68)
"""Inner lip contour (the mouth opening): corner 60, upper 61-63, corner 64, lower 65-67."""

UPPER_LID_TO_LOWER_LID = np.array([[37, 41], [38, 40], [43, 47], [44, 46]])
"""Upper-lid point and the lower-lid point below it (rows of (upper, lower))."""
UPPER_INNER_LIP = np.array([60, 61, 62, 63, 64])
"""Upper inner lip, image-left corner to image-right corner."""
LOWER_INNER_LIP = np.array([60, 67, 66, 65, 64])
"""Lower inner lip, image-left corner to image-right corner."""
INNER_LIP_PAIRS = np.array([[61, 67], [62, 66], [63, 65]])
"""Upper inner-lip point and the lower inner-lip point below it."""

MIRROR = np.array(
    [16 - i for i in range(17)]  # jaw
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]  # brows
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nose base
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)
"""Index of each point's left-right mirror image (midline points map to themselves)."""

_MIDLINE = {8, 27, 28, 29, 30, 33, 51, 57, 62, 66}
_LEFT = set(range(0, 8)) | set(range(17, 22)) | {31, 32} | set(range(36, 42))
_LEFT |= {48, 49, 50, 58, 59, 60, 61, 67}

SIDE = np.array([0.0 if i in _MIDLINE else (-1.0 if i in _LEFT else 1.0) for i in range(N_LANDMARKS)])
"""-1 for image-left points, +1 for image-right ones, 0 on the midline.

Multiplying a lateral displacement by SIDE along the frame's lateral axis makes
"positive" mean "away from the face midline" on both halves.
"""

IMAGE_LEFT_OR_MIDLINE = np.flatnonzero(SIDE <= 0)
"""Points whose mirror is themselves or on the other half: the half a symmetric table is written for."""


@dataclass(frozen=True)
class FaceFrame:
    """Scale and orientation of a face, measured from its 68 landmarks.

    iod_px: inter-ocular distance in pixels (eye centre to eye centre).
    lateral: (2,) unit vector, image-left eye centre -> image-right eye centre.
    up: (2,) unit vector perpendicular to ``lateral``, towards the forehead.
    """

    iod_px: float
    lateral: np.ndarray
    up: np.ndarray

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceFrame:
        """Measure the frame of ``landmarks`` (68, 2) in pixels."""
        landmarks = np.asarray(landmarks, dtype=np.float64)
        left_eye = landmarks[EYE_LEFT].mean(axis=0)
        right_eye = landmarks[EYE_RIGHT].mean(axis=0)
        across = right_eye - left_eye
        iod_px = float(np.hypot(*across))
        if iod_px < 1.0:
            raise ValueError(f"eye centres {iod_px:.2f} px apart: not a face's landmarks")
        lateral = across / iod_px
        up = np.array([lateral[1], -lateral[0]])
        return cls(iod_px=iod_px, lateral=lateral, up=up)

    def to_pixels(self, lateral_up: np.ndarray) -> np.ndarray:
        """Turn (..., 2) offsets in (lateral, up) IOD units into (..., 2) pixel (x, y) offsets."""
        lateral_up = np.asarray(lateral_up, dtype=np.float64)
        return self.iod_px * (lateral_up[..., :1] * self.lateral + lateral_up[..., 1:] * self.up)

    def to_face(self, points: np.ndarray) -> np.ndarray:
        """Project (..., 2) pixel positions on the frame axes: (..., 2) (lateral, up) in pixels."""
        points = np.asarray(points, dtype=np.float64)
        return np.stack([points @ self.lateral, points @ self.up], axis=-1)
