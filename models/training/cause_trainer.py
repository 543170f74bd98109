"""Train CAUSE: progress bar, checkpoints, resume, fixed seed, evaluation every epoch, ONNX at the end.

Output folder layout::

    checkpoint-last.pt   everything needed to resume (weights, optimiser, schedule, RNG, history)
    cause-best.pt        the weights with the best held-out score, in our checkpoint format
    cause_step.onnx      the streaming step of cause-best.pt, for the CPU runtimes
    history.json         per-epoch loss and held-out metrics
"""

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.cause.export import export_step_onnx
from models.cause.io import load_cause, save_cause
from models.cause.net import CauseConfig, CauseNet
from models.data.augment import AugmentConfig
from models.data.labeled_audio import LabeledAudio
from models.training.cause_data import CropSampler, mel_statistics
from models.training.cause_eval import evaluate_cause, headline_score

CHECKPOINT_NAME = "checkpoint-last.pt"
BEST_NAME = "cause-best.pt"
ONNX_NAME = "cause_step.onnx"


@dataclass(frozen=True)
class CauseTrainConfig:
    """Training settings; every field is recorded in the checkpoint and history.

    lr is AdamW's peak learning rate, decayed by a cosine over all steps after
    a linear warm-up of ``warmup_steps``; segment_hops is the crop length in
    10 ms hops; threads caps torch's CPU threads.
    """

    epochs: int = 20
    steps_per_epoch: int = 200
    batch_size: int = 16
    segment_hops: int = 300
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    augment: bool = True
    threads: int = 2
    model: CauseConfig = field(default_factory=CauseConfig)


def _learning_rate(config: CauseTrainConfig, step: int) -> float:
    total = config.epochs * config.steps_per_epoch
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def weighted_l1(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean absolute error in AU intensity units over the weighted entries."""
    return (weight * (prediction - target).abs()).sum() / weight.sum().clamp_min(1.0)


def train_cause(
    train_items: list[LabeledAudio],
    heldout: dict[str, list[LabeledAudio]],
    out_dir: str | Path,
    config: CauseTrainConfig,
    *,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    progress: bool = True,
    init_from: str | Path | None = None,
) -> dict[str, Any]:
    """Train, evaluate on each held-out split after every epoch, and export the best to ONNX.

    ``init_from`` fine-tunes: the weights (and mel normalization) of that CAUSE
    checkpoint are the start, whatever lookahead it was trained at: the
    lookahead is an output delay, so every lookahead has the same parameters.

    ``stop_after_epochs`` ends this run early (time-boxing on a shared
    machine); ``resume=True`` later continues exactly where it stopped, with
    the same learning-rate schedule and random streams.

    Returns the history dict that is also written to ``history.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    net = CauseNet(config.model)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    history: dict[str, Any] = {"config": _jsonable(asdict(config)), "epochs": [], "best_score": -math.inf}
    start_epoch = 0
    checkpoint_path = out / CHECKPOINT_NAME
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        history = state["history"]
        start_epoch = state["epoch"] + 1
    elif init_from is not None:
        net.load_state_dict(load_cause(init_from).state_dict())
        history["init_from"] = str(init_from)
    else:
        mean, std = mel_statistics(train_items)
        net.set_mel_normalization(mean, std)
    sampler = CropSampler(
        train_items,
        segment_hops=config.segment_hops,
        lookahead_hops=config.model.lookahead_hops,
        warmup_hops=min(config.segment_hops // 2, 60),
        augment_config=AugmentConfig() if config.augment else None,
        rng=rng,
    )
    last_epoch = config.epochs if stop_after_epochs is None else min(config.epochs, start_epoch + stop_after_epochs)
    for epoch in range(start_epoch, last_epoch):
        net.train()
        started = time.perf_counter()
        losses = []
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress)
        for i in bar:
            step = epoch * config.steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(config, step)
            batch = sampler.batch(config.batch_size)
            loss = weighted_l1(net(batch.mel), batch.target, batch.weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        net.eval()
        metrics = {name: evaluate_cause(net, items) for name, items in heldout.items() if items}
        score = headline_score(metrics)
        record = {
            "epoch": epoch + 1,
            "train_l1": float(np.mean(losses)),
            "seconds": time.perf_counter() - started,
            "heldout": metrics,
            "score": score,
        }
        history["epochs"].append(record)
        if progress:
            tqdm.write(f"epoch {epoch + 1}: train L1 {record['train_l1']:.3f}, held-out score {score:.3f}")
        if score > history["best_score"] or not (out / BEST_NAME).is_file():
            history["best_score"] = score
            save_cause(net, out / BEST_NAME)
        torch.save(
            {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "epoch": epoch,
            },
            checkpoint_path,
        )
        (out / "history.json").write_text(json.dumps(history, indent=2))
    export_step_onnx(load_cause(out / BEST_NAME), out / ONNX_NAME)
    return history


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
