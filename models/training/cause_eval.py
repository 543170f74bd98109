"""Held-out evaluation of CAUSE: per-AU Pearson r and MAE against the labels, and speech activity."""

from typing import Any

import numpy as np
import torch

from engine.au import AU_NAMES, au_index
from engine.audio import MelConfig, log_mel
from models.cause.net import CauseNet
from models.data.labeled_audio import LabeledAudio
from models.training.cause_data import AU_LOSS_WEIGHTS
from models.training.metrics import mean_absolute_error, pearson_r, roc_auc

HEADLINE_AUS = ("AU12", "AU20", "AU23", "AU25", "AU26")
"""The mouth AUs speech determines best; their mean r is the score the issue's target is set on."""


def predict_hops(net: CauseNet, audio: np.ndarray) -> np.ndarray:
    """AU estimates (n_hops, 17) for every mel hop of ``audio``, lookahead hops padded with silence."""
    lookahead = net.config.lookahead_hops
    mel_config = MelConfig()
    padded = np.concatenate([audio, np.zeros(lookahead * mel_config.hop_samples, np.float32)])
    mel = log_mel(padded, mel_config)
    if mel.shape[0] <= lookahead:
        return np.zeros((0, len(AU_NAMES)), np.float32)
    with torch.inference_mode():
        return net(torch.from_numpy(mel)[None])[0].numpy()


def evaluate_cause(net: CauseNet, items: list[LabeledAudio]) -> dict[str, Any]:
    """Per-AU r and MAE over all labelled hops of ``items`` (AUs that never vary get r = NaN)."""
    predictions, targets = [], []
    for item in items:
        predicted = predict_hops(net, item.audio)
        n = min(predicted.shape[0], item.au.shape[0])
        keep = item.weight[:n] > 0
        predictions.append(predicted[:n][keep])
        targets.append(item.au[:n][keep])
    prediction, target = np.concatenate(predictions), np.concatenate(targets)
    r, mae = pearson_r(prediction, target), mean_absolute_error(prediction, target)
    return {
        "hops": int(prediction.shape[0]),
        "pearson_r": {name: _finite(r[i]) for i, name in enumerate(AU_NAMES) if AU_LOSS_WEIGHTS[i] > 0},
        "mae": {name: float(mae[i]) for i, name in enumerate(AU_NAMES) if AU_LOSS_WEIGHTS[i] > 0},
        "headline_r": float(np.nanmean([r[au_index(n)] for n in HEADLINE_AUS])),
    }


def headline_score(metrics_by_split: dict[str, dict[str, Any]]) -> float:
    """Mean headline r over the held-out splits (the number the best checkpoint is chosen by)."""
    values = [m["headline_r"] for m in metrics_by_split.values() if np.isfinite(m["headline_r"])]
    return float(np.mean(values)) if values else float("nan")


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


VAD_FLOOR_DB = -50.0
"""Hops quieter than this (dBFS, RMS over the 25 ms window) are never speech."""
VAD_RELATIVE_DB = 35.0
"""Hops more than this below the loudest hop of the utterance are silence."""


def energy_vad(audio: np.ndarray, n_hops: int, mel: MelConfig | None = None) -> np.ndarray:
    """Reference speech/silence labels per mel hop from the window's RMS energy (bool, (n_hops,)).

    A simple, transparent detector: the check is whether the network's mouth
    opening tracks where speech energy is, not a competition with VADs.
    """
    mel = mel or MelConfig()
    starts = np.arange(n_hops) * mel.hop_samples
    windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([audio, np.zeros(mel.window_samples, np.float32)]), mel.window_samples
    )[starts]
    level_db = 10 * np.log10(np.mean(windows.astype(np.float64) ** 2, axis=1) + 1e-12)
    return (level_db > VAD_FLOOR_DB) & (level_db > level_db.max(initial=-np.inf) - VAD_RELATIVE_DB)


def speech_activity_auc(net: CauseNet, items: list[LabeledAudio]) -> dict[str, float]:
    """ROC AUC of the mouth opening (AU25 + AU26) as a detector of the energy VAD's speech hops."""
    scores, labels = [], []
    for item in items:
        predicted = predict_hops(net, item.audio)
        scores.append(predicted[:, au_index("AU25")] + predicted[:, au_index("AU26")])
        labels.append(energy_vad(item.audio, predicted.shape[0]))
    label = np.concatenate(labels)
    return {
        "auc": roc_auc(np.concatenate(scores), label),
        "speech_hops": int(label.sum()),
        "silence_hops": int((~label).sum()),
    }
