"""Enrol a portrait: train a GANimation generator on synthesized expressions of that one face.

The generator always sees the same input, the portrait's own crop, with an
AU vector; its blended output is pulled towards the synthesizer's render of
that vector (paired L1), under GANimation's attention regularizers. With
``adversarial=True`` a WGAN-GP critic with an AU regression head joins in,
as in the reference, taking the synthesizer's renders as the real images.

By default it starts from the default generator's weights (a warm start:
enrolled on another face, it already knows how expressions move a face and
learns the new one in a fraction of the steps) and stops as soon as the
held-out PSNR reaches ``target_psnr_db``, or after ``steps``. It saves a
checkpoint at least every ``checkpoint_every_s`` and when asked to stop
(Ctrl-C, SIGTERM); ``resume=True`` continues from it exactly. A finished
run is never overwritten unless asked (``overwrite=True``).

Output folder layout::

    checkpoint-last.pt  everything needed to resume (weights, optimisers, step, history)
    history.json        training loss and held-out PSNR over the steps
    generator.pth       the final generator (models.ganimation.io format)
    generator.onnx      its export for the CPU runtimes and TensorRT
    eval.json           held-out evaluation (models.training.generator_eval)
    grid.png            expressions to judge by eye
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from engine.avatar.identity import portrait_identity
from engine.backends.generator_card import GeneratorCard
from engine.backends.model_files import WEIGHTS_DIR
from engine.errors import EngineError
from models.ganimation.export import export_generator_onnx
from models.ganimation.io import load_generator, save_generator
from models.ganimation.net import Discriminator, Generator, GeneratorConfig, blend
from models.training.enroll_data import (
    Enrollment,
    aus_to_condition,
    heldout_aus,
    images_to_tensor,
    training_aus,
)
from models.training.eta import EtaClock, format_duration
from models.training.ganimation_losses import (
    LossWeights,
    attention_loss,
    critic_loss,
    generator_adversarial_loss,
)
from models.training.generator_eval import evaluate_generator, expression_grid, heldout_psnr_db
from models.training.interrupts import stop_requests

CHECKPOINT_NAME = "checkpoint-last.pt"
HISTORY_NAME = "history.json"
GENERATOR_NAME = "generator.pth"
ONNX_NAME = "generator.onnx"
EVAL_NAME = "eval.json"
GRID_NAME = "grid.png"
DEFAULT_INIT = "default"
"""``EnrollConfig.init`` for the shipped warm start, ``ENROLL_BASE_NAME`` in models/weights."""
ENROLL_BASE_NAME = "enroll_base.pth"
"""The warm start for other portraits: the 6-block generator enrolled on the default avatar, kept when the
default generator went to 3 blocks. After 400 steps on another face it scores about 0.7 dB more than a warm
start from the 3-block one (2.2 dB on the eyes), in the same time (model card)."""
CHECKPOINT_EVERY_S = 60.0
FINAL_OUTPUTS_IN_EVALS = 3
"""The ETA counts writing the outputs (export, full evaluation, grid) as this many held-out checks."""


class RunExistsError(EngineError, FileExistsError):
    """The output folder holds a run that this one would overwrite; the message says what to do."""


@dataclass(frozen=True)
class EnrollConfig:
    """Enrolment settings; every field is recorded in the checkpoint and the history.

    steps: most optimiser steps of the generator, batch_size AU vectors each.
    init: the weights to start from: ``"default"`` (``ENROLL_BASE_NAME``,
        enrolled on the default avatar), a checkpoint path (any format
        models.ganimation.io reads, with this ``model`` shape), or None for
        random weights (a cold start, the reference's way).
    target_psnr_db: stop once the held-out PSNR reaches this (dB), at a
        held-out check; None runs all ``steps``.
    lr: Adam's learning rate, held for the first ``1 - decay_fraction`` of
        the steps, then decayed linearly to 0 (the reference's schedule:
        20 epochs constant, 10 decaying); from ``init``, it first rises
        linearly over ``warmup_steps``. betas: the reference's (0.5, 0.999).
    eval_every: steps between held-out PSNR measurements (each also a checkpoint).
    heldout_size: held-out AU vectors (fixed by ``seed``).
    threads: torch CPU threads.
    precision: ``"bf16"``: forward and backward under bfloat16 autocast
        (weights, optimiser and held-out checks stay float32), faster where
        the CPU computes bfloat16 natively (AVX512-BF16, AMX) and slower
        where it does not (the model card has both runs); ``"fp32"``: all float32.
        ``"auto"`` (default) picks bf16 where the CPU has it, and the run
        records what it used.
    adversarial: add the critic; critic_width is its first layer's channels (64 in the reference).

    Defaults: a warm start from ``ENROLL_BASE_NAME``, at most 400 steps
    at a learning rate of 1e-3 (the last third decaying), held-out checks
    every 100 steps, stopping early at 40 dB. They were chosen to finish
    within minutes on two cores; a longer run (``steps=600``) gains about a
    dB. The cold-start settings (width 16, ``init=None``, 2000 steps at 5e-4)
    made the default generator. The runs behind both choices, with their
    times and quality, are in models/weights/MODEL_CARD_generator.md.
    """

    steps: int = 400
    init: str | None = DEFAULT_INIT
    target_psnr_db: float | None = 40.0
    batch_size: int = 8
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    decay_fraction: float = 1 / 3
    warmup_steps: int = 50
    seed: int = 0
    threads: int = 2
    precision: str = "auto"
    eval_every: int = 100
    heldout_size: int = 64
    adversarial: bool = False
    critic_width: int = 64
    weights: LossWeights = field(default_factory=LossWeights)
    model: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(conv_dim=16, repeat_num=6))


PRECISIONS = ("auto", "bf16", "fp32")


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (else autocast emulates it, slower than float32)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(precision: str) -> str:
    """``EnrollConfig.precision`` made concrete: ``"bf16"`` or ``"fp32"``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def learning_rate(config: EnrollConfig, step: int) -> float:
    """Learning rate at ``step`` (0-based): constant, then linear to 0 over the last ``decay_fraction``.

    A warm start first ramps up linearly over ``warmup_steps``: Adam's first
    updates move every weight by about the full rate whatever its gradient,
    which would knock a trained generator far off before it adapts.
    """
    decay_start = config.steps * (1 - config.decay_fraction)
    if config.init is not None and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
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
    nets: _Nets, source: torch.Tensor, aus: np.ndarray, targets: torch.Tensor, weights: LossWeights, *, bf16: bool
) -> dict[str, float]:
    """One critic step (if adversarial) and one generator step on a batch; returns the loss parts.

    bf16: the generator's forward (and so its backward) under bfloat16
    autocast; the blend and the losses are computed in float32.
    """
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
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        color, mask = nets.generator(inputs, condition)
    color, mask = color.float(), mask.float()
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


def resolve_init(init: str | None) -> Path | None:
    """The checkpoint ``EnrollConfig.init`` names (None: a cold start)."""
    if init is None:
        return None
    return WEIGHTS_DIR / ENROLL_BASE_NAME if init == DEFAULT_INIT else Path(init)


def _warm_start(nets: _Nets, config: EnrollConfig) -> None:
    path = resolve_init(config.init)
    if path is None:
        return
    generator, model, _ = load_generator(path)
    if model != config.model:
        raise ValueError(
            f"{path} is a width {model.conv_dim}, {model.repeat_num}-block generator; enrol with "
            f"--width {model.conv_dim} --repeat-num {model.repeat_num} to start from it, or --init none"
        )
    nets.generator.load_state_dict(generator.state_dict())


def check_output_folder(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to start over a finished run (without ``overwrite``) or an unfinished one (without either flag).

    Raises:
        RunExistsError: with what is there and which flag to use.
    """
    if overwrite:
        return
    history_path, checkpoint = out / HISTORY_NAME, out / CHECKPOINT_NAME
    finished = history_path.is_file() and "eval" in json.loads(history_path.read_text())
    if finished and not resume:
        raise RunExistsError(
            f"{out} holds a finished enrolment ({GENERATOR_NAME}, {EVAL_NAME}); --overwrite replaces it, "
            "or choose another --output"
        )
    if checkpoint.is_file() and not resume:
        raise RunExistsError(
            f"{out} holds an unfinished enrolment ({CHECKPOINT_NAME}); --resume continues it, --overwrite starts again"
        )


def describe_plan(config: EnrollConfig, enrollment: Enrollment, out: Path, step: int, precision: str) -> str:
    """What a run will do, in a few lines, said before its first step."""
    face = enrollment.avatar.face_box
    init = resolve_init(config.init)
    start = "random weights (cold start)" if init is None else f"the weights of {init} (warm start)"
    stop = f"held-out PSNR >= {config.target_psnr_db:g} dB or " if config.target_psnr_db is not None else ""
    model = config.model
    return "\n".join([
        f"enrolment into {out}: generator width {model.conv_dim}, {model.repeat_num} residual blocks, "
        f"{config.threads} threads, {precision}",
        f"  face at {face.x:.0f},{face.y:.0f}, {face.width:.0f}x{face.height:.0f} px in the portrait",
        f"  from {start}" + (f", resuming at step {step}" if step else ""),
        f"  until {stop}step {config.steps} (held-out check every {config.eval_every} steps on "
        f"{config.heldout_size} AU vectors)",
        f"  checkpoint {out / CHECKPOINT_NAME} at every check, every {CHECKPOINT_EVERY_S:g} s and on Ctrl-C or "
        "SIGTERM (continue with --resume)",
        f"  then {GENERATOR_NAME}, {ONNX_NAME}, {EVAL_NAME}, {GRID_NAME} and {HISTORY_NAME}",
    ])  # fmt: skip


def train_enrollment(
    enrollment: Enrollment,
    out_dir: str | Path,
    config: EnrollConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    stop_after_steps: int | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    progress: bool = True,
    say: Callable[[str], None] = lambda text: print(text, flush=True),  # in order with the bar, even in a log file
) -> dict[str, Any]:
    """Train, check held-out PSNR every ``eval_every`` steps, and write the outputs when done.

    Done is: ``config.steps`` steps, or the held-out PSNR at a check reaching
    ``config.target_psnr_db``. ``stop_after_steps`` ends this run early
    (time-boxing on a shared machine) after saving a checkpoint, and so does a
    SIGINT or SIGTERM (``history["interrupted"]`` names it); ``resume=True``
    continues from ``checkpoint-last.pt`` exactly where it stopped (batches
    depend only on the seed and the step). A checkpoint is also written
    whenever ``checkpoint_every_s`` have passed since the last. ``say``
    receives the plan before the first step and one line per check.

    Returns the history dict also written to ``history.json``; once finished
    it holds the full evaluation under ``"eval"``.
    Raises RunExistsError when ``out_dir`` holds a run and neither ``resume``
    nor ``overwrite`` says what to do with it; ValueError when resuming with a
    config other than the checkpoint's, or when ``init`` has another shape.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_output_folder(out, resume=resume, overwrite=overwrite)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    nets = _Nets(config)
    recorded = asdict(config)
    history: dict[str, Any] = {"config": recorded, "log": [], "elapsed_s": 0.0}
    step = 0
    recent: list[float] = []
    checkpoint = out / CHECKPOINT_NAME
    if resume and (out / HISTORY_NAME).is_file():
        written = json.loads((out / HISTORY_NAME).read_text())
        if "eval" in written:
            say(f"{out} holds a finished enrolment: nothing to resume")
            return dict(written)
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state["history"]["config"] != recorded:
            raise ValueError(
                f"{checkpoint} was written with another configuration: {state['history']['config']}; "
                "resume with the same settings or start in a new folder"
            )
        nets.load(state["nets"])
        torch.set_rng_state(state["torch_rng"])
        history, step, recent = state["history"], state["step"], state.get("recent", [])
    else:
        _warm_start(nets, config)
    history.pop("interrupted", None)
    precision = history.setdefault("precision", resolve_precision(config.precision))  # a resumed run keeps its own

    say(describe_plan(config, enrollment, out, step, precision))
    source = enrollment.input_image()
    eval_aus = heldout_aus(config.seed, config.heldout_size)
    eval_targets = enrollment.render(eval_aus)
    last = config.steps if stop_after_steps is None else min(config.steps, step + stop_after_steps)
    bar = tqdm(
        total=config.steps, initial=step, desc="enrol", unit="step", disable=not progress,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
    )  # fmt: skip
    clock = EtaClock()
    started = saved = time.perf_counter()

    def save() -> None:
        nonlocal started, saved
        history["elapsed_s"] += time.perf_counter() - started
        history["step_s"], history["eval_s"] = clock.step_s, clock.eval_s
        started = saved = time.perf_counter()
        state = {"nets": nets.state(), "torch_rng": torch.get_rng_state(), "history": history, "step": step}
        torch.save(state | {"recent": recent}, checkpoint)
        (out / HISTORY_NAME).write_text(json.dumps(history, indent=2))

    reached = False
    nets.generator.train()
    with stop_requests() as stop:
        while step < last and not stop:
            step_started = time.perf_counter()
            nets.set_lr(learning_rate(config, step))
            aus = training_aus(config.seed, step, config.batch_size)
            targets = images_to_tensor(enrollment.render(aus))
            parts = _train_step(nets, source, aus, targets, config.weights, bf16=precision == "bf16")
            recent.append(parts["l1"])
            step += 1
            clock.step_done(time.perf_counter() - step_started)
            if step % config.eval_every == 0 or step == last:
                eval_started = time.perf_counter()
                psnr = heldout_psnr_db(nets.generator, enrollment, eval_aus, eval_targets)
                clock.eval_done(time.perf_counter() - eval_started)
                history["log"].append(
                    {"step": step, "train_l1": float(np.mean(recent)), "heldout_psnr_db": psnr,
                     "elapsed_s": history["elapsed_s"] + time.perf_counter() - started,
                     **{k: v for k, v in parts.items() if k != "l1"}}
                )  # fmt: skip
                recent = []
                reached = config.target_psnr_db is not None and psnr >= config.target_psnr_db
                say(f"step {step}: train L1 {history['log'][-1]['train_l1']:.4f}, held-out PSNR {psnr:.2f} dB")
                save()
                if reached:
                    break
            elif time.perf_counter() - saved >= checkpoint_every_s:
                save()
            evals_left = len(range(step - step % config.eval_every + config.eval_every, last, config.eval_every))
            evals_left += 1 + (FINAL_OUTPUTS_IN_EVALS if last == config.steps else 0)
            bar.set_postfix_str(f"eta {format_duration(clock.remaining_s(last - step, evals_left))}", refresh=False)
            bar.update()
        if stop:
            history["interrupted"] = stop.signal_name
            save()
            say(f"{stop.signal_name}: stopped at step {step}, checkpoint saved; continue with --resume")
    bar.close()
    if reached or step == config.steps:
        history["steps_done"] = step
        history["reached_target"] = reached
        history["eval"] = write_outputs(nets.generator, enrollment, out, eval_aus, eval_targets)
        history["elapsed_s"] += time.perf_counter() - started
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
