"""``avatar eval cause``: held-out metrics as a table, JSON and a plot of predicted vs target tracks."""

import json
from pathlib import Path
from typing import Any

import numpy as np

from models.cause.net import CauseNet
from models.data.labeled_audio import LabeledAudio
from models.training.cause_eval import HEADLINE_AUS, evaluate_cause, predict_hops, speech_activity_auc

TARGETS = {"headline_r": 0.75, "speech_activity_auc": 0.9}
"""The issue's targets: mean r over the headline AUs on held-out voices, and the speech-activity AUC."""


def cause_report(net: CauseNet, heldout: dict[str, list[LabeledAudio]], out_dir: str | Path) -> dict[str, Any]:
    """Evaluate every split, write ``cause_eval.json`` and ``cause_tracks.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"targets": TARGETS, "splits": {}}
    for split, items in heldout.items():
        if not items:
            continue
        metrics = evaluate_cause(net, items)
        metrics["speech_activity"] = speech_activity_auc(net, items)
        report["splits"][split] = metrics
    (out / "cause_eval.json").write_text(json.dumps(report, indent=2))
    first_split = next(iter(s for s in heldout.values() if s), None)
    if first_split:
        plot_tracks(net, first_split[0], out / "cause_tracks.png")
    return report


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table: per-AU r and MAE for each split, then the headline figures against the targets."""
    splits = report["splits"]
    names = list(next(iter(splits.values()))["pearson_r"]) if splits else []
    lines = [
        "AU     " + "".join(f"{split:>28}" for split in splits),
        "       " + "".join(f"{'r':>14}{'MAE':>14}" for _ in splits),
    ]
    for name in names:
        row = f"{name:<7}"
        for metrics in splits.values():
            r = metrics["pearson_r"][name]
            row += f"{'n/a' if r is None else f'{r:.3f}':>14}{metrics['mae'][name]:>14.3f}"
        lines.append(row)
    for split, metrics in splits.items():
        lines.append(
            f"{split}: mean r over {' '.join(HEADLINE_AUS)} = {metrics['headline_r']:.3f} "
            f"(target >= {TARGETS['headline_r']}), speech-activity AUC = {metrics['speech_activity']['auc']:.3f} "
            f"(target >= {TARGETS['speech_activity_auc']}), {metrics['hops']} hops"
        )
    return "\n".join(lines)


def plot_tracks(net: CauseNet, item: LabeledAudio, path: Path) -> None:
    """Predicted (solid) vs target (dashed) tracks of the headline AUs for one utterance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.au import au_index

    predicted = predict_hops(net, item.audio)
    n = min(predicted.shape[0], item.au.shape[0])
    time_s = np.arange(n) / 100.0
    figure, axes = plt.subplots(len(HEADLINE_AUS), 1, figsize=(10, 1.6 * len(HEADLINE_AUS)), sharex=True)
    for axis, name in zip(axes, HEADLINE_AUS):
        k = au_index(name)
        axis.plot(time_s, item.au[:n, k], "--", color="gray", label="target")
        axis.plot(time_s, predicted[:n, k], color="tab:blue", label="predicted")
        axis.set_ylabel(name)
        axis.set_ylim(-0.2, 5.2)
    axes[0].legend(loc="upper right")
    axes[-1].set_xlabel("time (s)")
    figure.suptitle("CAUSE on a held-out utterance")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
