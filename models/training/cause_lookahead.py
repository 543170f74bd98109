"""The lookahead as a measured trade-off: CAUSE fine-tuned at several lookaheads, scored on held-out speech.

Each lookahead ``L`` (hops of 10 ms the estimate may see ahead) adds ``L x 10 ms``
to every frame's latency. Starting from one checkpoint (the default weights,
trained at 2 hops), this fine-tunes a copy at each lookahead asked for with
the same schedule and seed (the best epoch chosen on the first
``--select-utterances`` of each held-out split), then scores each on the
whole held-out splits (voices and texts it never saw):

- **mean r on the mouth AUs** (AU12 AU20 AU23 AU25 AU26, ``cause_eval``'s
  headline score), per split;
- **lip sync**: Pearson r between the predicted and the labelled mouth opening
  (AU25 + AU26) at lag 0, and the lag (hops, positive = the prediction late)
  at which that correlation peaks, over every held-out utterance;
- **latency saved** against 2 hops.

Writes ``lookahead.json`` and ``lookahead.md`` (the table) into the output
folder, with each fine-tune's checkpoints in ``L<hops>/``.

    python -m models.training.cause_lookahead --corpus runs/corpus -o runs/lookahead
    python -m models.training.cause_lookahead --corpus runs/corpus -o /tmp/la --smoke   # minutes: checks it runs
"""

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.au import au_index
from models.cause.io import load_cause
from models.cause.net import CauseConfig, CauseNet, algorithmic_latency_ms
from models.training.cause_data import LabeledAudio
from models.training.cause_eval import evaluate_cause, predict_hops
from models.training.cause_trainer import BEST_NAME, CauseTrainConfig, train_cause
from models.training.corpus_items import corpus_items

DEFAULT_INIT = Path(__file__).resolve().parents[1] / "weights" / "cause.pt"
HELDOUT_SPLITS = ("heldout_voice", "heldout_text")
MAX_LAG_HOPS = 10
"""Lags searched for the lip-sync peak, either way (100 ms)."""
REFERENCE_LOOKAHEAD_HOPS = 2
"""The lookahead latency is saved against: the default weights'."""


def mouth_opening(au: np.ndarray) -> np.ndarray:
    """AU25 + AU26 per hop: how far the mouth is open, (n_hops,)."""
    return au[:, au_index("AU25")] + au[:, au_index("AU26")]


def lip_sync(net: CauseNet, items: list[LabeledAudio]) -> dict[str, float]:
    """Correlation of predicted and labelled mouth opening at each lag; r at lag 0 and the peak's lag (hops)."""
    predicted, labelled = [], []
    for item in items:
        prediction = predict_hops(net, item.audio)
        n = min(prediction.shape[0], item.au.shape[0])
        predicted.append(mouth_opening(prediction[:n]))
        labelled.append(mouth_opening(item.au[:n]))
    correlations = {lag: _lagged_r(predicted, labelled, lag) for lag in range(-MAX_LAG_HOPS, MAX_LAG_HOPS + 1)}
    best = max(correlations, key=lambda lag: correlations[lag])
    return {"r_at_lag0": correlations[0], "peak_lag_hops": float(best), "r_at_peak": correlations[best]}


def _lagged_r(predicted: list[np.ndarray], labelled: list[np.ndarray], lag: int) -> float:
    """Pearson r of prediction[t + lag] against label[t], pooled over utterances (lag > 0: prediction late)."""
    xs, ys = [], []
    for p, y in zip(predicted, labelled):
        if lag >= 0:
            xs.append(p[lag:])
            ys.append(y[: len(y) - lag])
        else:
            xs.append(p[: len(p) + lag])
            ys.append(y[-lag:])
    return float(np.corrcoef(np.concatenate(xs), np.concatenate(ys))[0, 1])


def score(net: CauseNet, heldout: dict[str, list[LabeledAudio]]) -> dict[str, Any]:
    """Held-out mean r on the mouth AUs per split, and lip sync over all held-out utterances."""
    metrics = {split: evaluate_cause(net, items)["headline_r"] for split, items in heldout.items()}
    every = [item for items in heldout.values() for item in items]
    return {
        "lookahead_hops": net.config.lookahead_hops,
        "algorithmic_latency_ms": algorithmic_latency_ms(net.config),
        "latency_saved_ms": (REFERENCE_LOOKAHEAD_HOPS - net.config.lookahead_hops) * 10,
        "mouth_r": metrics,
        "lip_sync": lip_sync(net, every),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The trade-off as a markdown table."""
    lines = [
        "| model | lookahead | latency saved | mouth r, held-out voices | mouth r, held-out texts "
        "| mouth opening r (lag 0) | its peak lag |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row["mouth_r"]
        sync = row["lip_sync"]
        lines.append(
            f"| {row['name']} | {row['lookahead_hops']} hops | {row['latency_saved_ms']} ms "
            f"| {r.get('heldout_voice', float('nan')):.3f} | {r.get('heldout_text', float('nan')):.3f} "
            f"| {sync['r_at_lag0']:.3f} | {sync['peak_lag_hops']:+.0f} hops |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.cause_lookahead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--corpus", type=Path, required=True, help="corpus folder made by `avatar corpus`")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the fine-tunes and the table")
    parser.add_argument("--lookaheads", type=int, nargs="+", default=[0, 1, 2], help="hops (default: 0 1 2)")
    parser.add_argument(
        "--init", type=Path, default=DEFAULT_INIT, help="checkpoint to fine-tune from (default weights)"
    )
    parser.add_argument("--epochs", type=int, default=3, help="default 3")
    parser.add_argument("--steps-per-epoch", type=int, default=100, help="default 100")
    parser.add_argument("--batch-size", type=int, default=12, help="default 12")
    parser.add_argument("--segment-hops", type=int, default=200, help="crop length in 10 ms hops (default 200)")
    parser.add_argument("--lr", type=float, default=3e-4, help="peak AdamW learning rate (default 3e-4)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--select-utterances",
        type=int,
        default=60,
        help="held-out utterances per split the best epoch is chosen on (all of them score the result) (default: 60)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="2 steps per lookahead, 8 held-out utterances: checks that it runs"
    )
    args = parser.parse_args(argv)
    try:
        train = corpus_items(args.corpus, "train")
        heldout = {split: items for split in HELDOUT_SPLITS if (items := corpus_items(args.corpus, split))}
        if not heldout:
            raise ValueError(f"{args.corpus} has no held-out utterances to score on")
        if not args.init.is_file():
            raise FileNotFoundError(f"no checkpoint at {args.init}")
        for lookahead in args.lookaheads:
            CauseConfig(lookahead_hops=lookahead)  # raises on a lookahead the network cannot have
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.smoke:
        train, heldout = train[:8], {split: items[:4] for split, items in heldout.items()}
    config = CauseTrainConfig(
        epochs=1 if args.smoke else args.epochs,
        steps_per_epoch=2 if args.smoke else args.steps_per_epoch,
        batch_size=2 if args.smoke else args.batch_size,
        segment_hops=args.segment_hops,
        lr=args.lr,
        warmup_steps=1 if args.smoke else 20,
        threads=args.threads,
    )
    initial = load_cause(args.init).eval()
    rows = [{"name": f"{args.init.name} as trained", **score(initial, heldout)}]
    for lookahead in args.lookaheads:
        out = args.output / f"L{lookahead}"
        run_config = replace(config, model=replace(initial.config, lookahead_hops=lookahead))
        selection = {split: items[: args.select_utterances] for split, items in heldout.items()}
        history = train_cause(train, selection, out, run_config, init_from=args.init, progress=False)
        tuned = load_cause(out / BEST_NAME).eval()
        rows.append(
            {"name": f"fine-tuned at {lookahead}", "best_score": history["best_score"], **score(tuned, heldout)}
        )
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    document = {"command": " ".join(sys.argv), "train_config": json.loads(json.dumps(vars(args), default=str))}
    document["rows"] = rows
    (args.output / "lookahead.json").write_text(json.dumps(document, indent=2))
    (args.output / "lookahead.md").write_text(table(rows) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
