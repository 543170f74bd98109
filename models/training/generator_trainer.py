"""Enrol a portrait: train a GANimation generator on synthesized expressions of that one face.

The generator always sees the same input, the portrait's own crop, with an
AU vector; its blended output is pulled towards the synthesizer's render of
that vector (paired L1), under GANimation's attention regularizers. With
``adversarial=True`` a WGAN-GP critic with an AU regression head joins in,
as in the reference, taking the synthesizer's renders as the real images.

Output folder layout::

    checkpoint-last.pt  everything needed to resume (weights, optimisers, step, history)
    history.json        training loss and held-out PSNR over the steps
    generator.pth       the final generator (models.checkpoints format)
    generator.onnx      its export for the CPU runtimes and TensorRT
    eval.json           held-out evaluation (models.training.generator_eval)
    grid.png            expressions to judge by eye
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from engine.avatar.identity import portrait_identity
from engine.pipeline.generator_card import GeneratorCard
from models.checkpoints import export_generator_onnx, save_generator
from models.ganimation import Discriminator, Generator, GeneratorConfig, blend
from models.training.enroll_data import (
    Enrollment,
    aus_to_condition,
    heldout_aus,
    images_to_tensor,
    training_aus,
)
from models.training.ganimation_losses import (
    LossWeights,
    attention_loss,
    critic_loss,
    generator_adversarial_loss,
)
from models.training.generator_eval import evaluate_generator, expression_grid, heldout_psnr_db

CHECKPOINT_NAME = "checkpoint-last.pt"
HISTORY_NAME = "history.json"
GENERATOR_NAME = "generator.pth"
ONNX_NAME = "generator.onnx"
EVAL_NAME = "eval.json"
GRID_NAME = "grid.png"


@dataclass(frozen=True)
class EnrollConfig:
    """Enrolment settings; every field is recorded in the checkpoint and the history.

    steps: optimiser steps of the generator, batch_size AU vectors each.
    lr: Adam's learning rate, held for the first ``1 - decay_fraction`` of
        the steps, then decayed linearly to 0 (the reference's schedule:
        20 epochs constant, 10 decaying). betas: the reference's (0.5, 0.999).
    eval_every: steps between held-out PSNR measurements and checkpoints.
    heldout_size: held-out AU vectors (fixed by ``seed``).
    threads: torch CPU threads.
    adversarial: add the critic; critic_width is its first layer's channels (64 in the reference).

    Defaults, measured on the astronaut on the shared 2-core CPU
    (models/weights/MODEL_CARD_generator.md): width 16 takes 2.4x less time
    a frame than width 32 (OpenVINO f32, side by side under the same load:
    18 against 43 ms), which leaves room in the 25 ms render budget when the
    machine is busy, and still learns the synthesizer's expressions far past
    28 dB; a learning
    rate of 5e-4 beat the reference's 1e-4 and 2e-3 (held-out PSNR after 300
    steps: 30.4 against 27.7 and 27.0 dB); 2000 steps reach 40.6 dB and give
    blinks and brows time to follow the mouth. They take ~8 min on the idle
    machine (0.23 s a step), 20 min with other jobs running.
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.999)
    decay_fraction: float = 1 / 3
    seed: int = 0
    threads: int = 2
    eval_every: int = 250
    heldout_size: int = 64
    adversarial: bool = False
    critic_width: int = 64
    weights: LossWeights = field(default_factory=LossWeights)
    model: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(conv_dim=16, repeat_num=6))


def learning_rate(config: EnrollConfig, step: int) -> float:
    """Learning rate at ``step`` (0-based): constant, then linear to 0 over the last ``decay_fraction``."""
    decay_start = config.steps * (1 - config.decay_fraction)
    if step < decay_start:
        return config.lr
    return config.lr * max(0.0, (config.steps - step) / (config.steps - decay_start))


class _Nets:
    """The generator, the optional critic and their optimisers, saved and restored together."""

    def __init__(self, config: EnrollConfig) -> None:
        self.generator = Generator.from_config(config.model)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=config.betas)
        self.critic: Discriminator | None = None
        self.d_optimizer: torch.optim.Optimizer | None = None
        if config.adversarial:
            self.critic = Discriminator(conv_dim=config.critic_width, c_dim=config.model.c_dim)
            self.d_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.lr, betas=config.betas)

    def set_lr(self, lr: float) -> None:
        for optimizer in (self.g_optimizer, self.d_optimizer):
            if optimizer is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"generator": self.generator.state_dict(), "g_optimizer": self.g_optimizer.state_dict()}
        if self.critic is not None and self.d_optimizer is not None:
            state |= {"critic": self.critic.state_dict(), "d_optimizer": self.d_optimizer.state_dict()}
        return state

    def load(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        if self.critic is not None and self.d_optimizer is not None:
            self.critic.load_state_dict(state["critic"])
            self.d_optimizer.load_state_dict(state["d_optimizer"])


def _train_step(
    nets: _Nets, source: torch.Tensor, aus: np.ndarray, targets: torch.Tensor, weights: LossWeights
) -> dict[str, float]:
    """One critic step (if adversarial) and one generator step on a batch; returns the loss parts."""
    condition = aus_to_condition(aus)
    inputs = source.expand(len(aus), -1, -1, -1)
    parts: dict[str, float] = {}
    if nets.critic is not None and nets.d_optimizer is not None:
        with torch.no_grad():
            fake = blend(inputs, *nets.generator(inputs, condition))
        d_loss, parts = critic_loss(nets.critic, targets, condition, fake, weights)
        nets.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        nets.d_optimizer.step()
    color, mask = nets.generator(inputs, condition)
    output = blend(inputs, color, mask)
    l1 = (output - targets).abs().mean()
    loss = weights.image * l1 + attention_loss(mask, weights)
    if nets.critic is not None:
        adversarial, adversarial_parts = generator_adversarial_loss(nets.critic, output, condition, weights)
        loss = loss + adversarial
        parts |= adversarial_parts
    nets.g_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nets.g_optimizer.step()
    return {"l1": l1.item(), "mask_mean": mask.mean().item(), **parts}


def train_enrollment(
    enrollment: Enrollment,
    out_dir: str | Path,
    config: EnrollConfig,
    *,
    resume: bool = False,
    stop_after_steps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, measure held-out PSNR every ``eval_every`` steps, and write the outputs when done.

    ``stop_after_steps`` ends this run early (time-boxing on a shared
    machine) after saving a checkpoint; ``resume=True`` continues from
    ``checkpoint-last.pt`` exactly where it stopped (batches depend only on
    the seed and the step). The final outputs (generator, ONNX, evaluation,
    grid) are written once all ``config.steps`` are done.

    Returns the history dict also written to ``history.json``; once finished
    it holds the full evaluation under ``"eval"``.
    Raises ValueError when resuming with a config other than the checkpoint's.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    nets = _Nets(config)
    recorded = asdict(config)
    history: dict[str, Any] = {"config": recorded, "log": [], "elapsed_s": 0.0}
    step = 0
    checkpoint = out / CHECKPOINT_NAME
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state["history"]["config"] != recorded:
            raise ValueError(
                f"{checkpoint} was written with another configuration: {state['history']['config']}; "
                "resume with the same settings or start in a new folder"
            )
        nets.load(state["nets"])
        torch.set_rng_state(state["torch_rng"])
        history, step = state["history"], state["step"]

    source = enrollment.input_image()
    eval_aus = heldout_aus(config.seed, config.heldout_size)
    eval_targets = enrollment.render(eval_aus)
    last = config.steps if stop_after_steps is None else min(config.steps, step + stop_after_steps)
    bar = tqdm(total=config.steps, initial=step, desc="enrol", unit="step", disable=not progress)
    recent: list[float] = []
    started = time.perf_counter()
    nets.generator.train()
    while step < last:
        nets.set_lr(learning_rate(config, step))
        aus = training_aus(config.seed, step, config.batch_size)
        parts = _train_step(nets, source, aus, images_to_tensor(enrollment.render(aus)), config.weights)
        recent.append(parts["l1"])
        step += 1
        bar.update()
        bar.set_postfix(l1=f"{np.mean(recent[-50:]):.4f}")
        if step % config.eval_every == 0 or step == last:
            psnr = heldout_psnr_db(nets.generator, enrollment, eval_aus, eval_targets)
            history["elapsed_s"] += time.perf_counter() - started
            started = time.perf_counter()
            history["log"].append(
                {"step": step, "train_l1": float(np.mean(recent)), "heldout_psnr_db": psnr,
                 "elapsed_s": history["elapsed_s"], **{k: v for k, v in parts.items() if k != "l1"}}
            )  # fmt: skip
            recent = []
            if progress:
                tqdm.write(f"step {step}: train L1 {history['log'][-1]['train_l1']:.4f}, held-out PSNR {psnr:.2f} dB")
            torch.save(
                {"nets": nets.state(), "torch_rng": torch.get_rng_state(), "history": history, "step": step},
                checkpoint,
            )
            (out / HISTORY_NAME).write_text(json.dumps(history, indent=2))
    bar.close()
    if step == config.steps:
        history["eval"] = write_outputs(nets.generator, enrollment, out, eval_aus, eval_targets)
        (out / HISTORY_NAME).write_text(json.dumps(history, indent=2))
    return history


def write_outputs(
    generator: Generator, enrollment: Enrollment, out: Path, aus: np.ndarray, targets: np.ndarray
) -> dict[str, Any]:
    """Save the generator and its ONNX export, evaluate it on ``aus``, draw the grid; returns the evaluation."""
    generator.eval()
    card = GeneratorCard.enrolled(portrait_identity(enrollment.avatar))  # the engine picks it for this face only
    save_generator(generator, generator.config, out / GENERATOR_NAME, card=card)
    export_generator_onnx(generator, out / ONNX_NAME, card=card)
    metrics = evaluate_generator(generator, enrollment, aus, targets=targets)
    (out / EVAL_NAME).write_text(json.dumps(metrics, indent=2))
    Image.fromarray(expression_grid(generator, enrollment)).save(out / GRID_NAME)
    return metrics
