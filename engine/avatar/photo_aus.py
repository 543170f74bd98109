"""The photo's own expression: AU intensities read from its 68 landmarks, so that AU 0 can mean neutral.

AUs drive a face as absolute targets, as GANimation means them: 0 is a
relaxed face, not "as photographed". A portrait that smiles with its lips
apart must therefore be known to smile, so that a target of AU12 = 0 takes the
smile away. From one photo, without the same face at rest to compare with, only
what has a clear neutral position can be read:

- **the lips** are closed at rest: the mean gap between the inner lips is
  lips parting (AU25) up to its full extent, then jaw drop (AU26) (the table
  closes the three pairs of inner-lip points unevenly; the warp rig stops a
  pair that would cross where its lips meet: ``WarpRig.moved_points``);
- **the lip corners** rest at the height of the mouth's centre line (where
  the lips meet when closed): above it is the lip corner puller (AU12),
  below it the depressor (AU15).

Both measures are in the face frame (units of the inter-ocular distance,
"up" across the eyes' line, so head roll does not matter) and are turned into
intensities with the same displacement table that renders AUs
(:data:`engine.avatar.warp.displacements.BASIS`): rendering ``-estimate``
on top of the photo brings the measures back to their rest values (up to the
0..5 clip). Brows, lids and cheeks are left at 0: people's brows rest higher
or lower by about as much as AU01 or AU04 moves them, so a single photo cannot
tell a raised brow from a high one.
"""

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY, N_AUS, au_index
from engine.avatar.face68 import INNER_LIP_PAIRS, N_LANDMARKS, FaceFrame
from engine.avatar.warp.displacements import BASIS

DEAD_ZONE_IOD = 0.01
"""Measures within this of their rest value count as rest (landmark noise is ~1 % of the IOD)."""

_CORNERS = np.array([48, 54])
_UPPER_LIP_CENTRE = 62
_LOWER_LIP_CENTRE = 66
_AU12, _AU15, _AU25, _AU26 = (au_index(name) for name in ("AU12", "AU15", "AU25", "AU26"))


def _lip_gap(up: np.ndarray) -> np.ndarray:
    """Mean opening between the inner lips, from the ``up`` coordinate of each of the 68 points (..., 68)."""
    upper, lower = INNER_LIP_PAIRS.T
    return (up[..., upper] - up[..., lower]).mean(axis=-1)


def _corner_height(up: np.ndarray) -> np.ndarray:
    """How far the outer lip corners sit above the mouth's centre line (midway between the inner lips'
    centres), from (..., 68) ``up`` values."""
    return up[..., _CORNERS].mean(axis=-1) - 0.5 * (up[..., _UPPER_LIP_CENTRE] + up[..., _LOWER_LIP_CENTRE])


_GAP_PER_UNIT = _lip_gap(BASIS[:, :, 1]) / AU_MAX_INTENSITY
"""(17,): IOD of mean lip gap each AU adds per unit of intensity."""
_CORNER_PER_UNIT = _corner_height(BASIS[:, :, 1]) / AU_MAX_INTENSITY
"""(17,): IOD of corner height each AU adds per unit of intensity."""


def mouth_measures(landmarks: np.ndarray) -> tuple[float, float]:
    """``(lip gap, corner height)`` of a face's landmarks (68, 2) pixels, in IOD (0 and 0 at rest)."""
    if landmarks.shape != (N_LANDMARKS, 2):
        raise ValueError(f"expected ({N_LANDMARKS}, 2) landmarks, got {landmarks.shape}")
    frame = FaceFrame.from_landmarks(landmarks)
    up = frame.to_face(landmarks)[:, 1] / frame.iod_px
    return float(_lip_gap(up)), float(_corner_height(up))


def estimate_photo_aus(landmarks: np.ndarray) -> np.ndarray:
    """The AU intensities of the expression in a photo, from its 68 landmarks ``(x, y)`` pixels.

    Returns (17,) float32 in 0..5, :data:`engine.au.AU_NAMES` order; only
    AU12, AU15, AU25 and AU26 can be non-zero (module docstring). Raises
    ValueError when the landmarks are not a face's (eyes less than a pixel apart).
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    gap, corner = mouth_measures(landmarks)
    aus = np.zeros(N_AUS)
    opening = gap if gap > DEAD_ZONE_IOD else 0.0
    aus[_AU25] = min(AU_MAX_INTENSITY, opening / _GAP_PER_UNIT[_AU25])
    aus[_AU26] = min(AU_MAX_INTENSITY, (opening - aus[_AU25] * _GAP_PER_UNIT[_AU25]) / _GAP_PER_UNIT[_AU26])
    corner -= float(aus @ _CORNER_PER_UNIT)  # what the open mouth did to the corners
    if corner > DEAD_ZONE_IOD:
        aus[_AU12] = min(AU_MAX_INTENSITY, corner / _CORNER_PER_UNIT[_AU12])
    elif corner < -DEAD_ZONE_IOD:
        aus[_AU15] = min(AU_MAX_INTENSITY, corner / _CORNER_PER_UNIT[_AU15])
    return aus.astype(np.float32)
