"""Evaluation metrics in numpy: per-AU correlation and error, ROC AUC, image fidelity."""

import numpy as np


def pearson_r(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-column Pearson correlation of (N, K) arrays; NaN where a column is constant."""
    p = prediction - prediction.mean(axis=0)
    t = target - target.mean(axis=0)
    denominator = np.sqrt((p * p).sum(axis=0) * (t * t).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (p * t).sum(axis=0) / denominator, np.nan)


def mean_absolute_error(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-column MAE of (N, K) arrays, in the arrays' units (AU intensity 0..5)."""
    return np.abs(prediction - target).mean(axis=0)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative (ties count half).

    Computed from average ranks (Mann-Whitney U); NaN if either class is empty.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based, ties share their mean rank
    ranks = average_rank[inverse]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def psnr_db(image: np.ndarray, reference: np.ndarray, *, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two same-shape images with values in 0..peak."""
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)
