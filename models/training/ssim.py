"""Structural similarity (SSIM, Wang et al. 2004) in numpy, so evaluation needs no scikit-image.

The standard settings: an 11x11 Gaussian window of sigma 1.5 px, K1 = 0.01,
K2 = 0.03, population (not sample) statistics, each colour channel scored
alone and the channels averaged, and only windows lying wholly inside the
image counted. These are scikit-image's ``structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``, whose
numbers the tests hold this to.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SIGMA_PX = 1.5
RADIUS_PX = 5
"""Window half-width: the Gaussian is cut at 3.5 sigma (11x11 taps)."""
K1 = 0.01
K2 = 0.03


def _gaussian_taps() -> np.ndarray:
    x = np.arange(-RADIUS_PX, RADIUS_PX + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / SIGMA_PX) ** 2)
    return taps / taps.sum()


def _filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable filtering of (..., H, W) over the last two axes, keeping only full windows."""
    rows = sliding_window_view(image, taps.size, axis=-2) @ taps
    return sliding_window_view(rows, taps.size, axis=-1) @ taps


def ssim(image: np.ndarray, reference: np.ndarray, *, data_range: float = 255.0) -> float:
    """Mean SSIM of two same-shape images, (H, W) or (H, W, C) with channels last; 1 means identical.

    data_range: the span of the pixel values (255 for uint8). H and W must be
    at least 11 px.
    """
    x = np.asarray(image, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} and {y.shape}")
    if x.ndim == 3:  # channels first for the filtering
        x, y = np.moveaxis(x, -1, 0), np.moveaxis(y, -1, 0)
    if min(x.shape[-2:]) < 2 * RADIUS_PX + 1:
        raise ValueError(f"images of {x.shape[-2:]} px are smaller than the {2 * RADIUS_PX + 1} px window")
    taps = _gaussian_taps()
    mu_x, mu_y = _filter_valid(x, taps), _filter_valid(y, taps)
    var_x = _filter_valid(x * x, taps) - mu_x * mu_x
    var_y = _filter_valid(y * y, taps) - mu_y * mu_y
    cov = _filter_valid(x * y, taps) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())
