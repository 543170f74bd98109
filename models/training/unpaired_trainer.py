"""The reference GANimation training, for users with a real face data set (no paired targets).

Follows albertpumarola/GANimation (``train.py``, ``models/ganimation.py``,
``data/dataset_aus.py``): each image is animated towards the AUs of another,
random image of the set plus uniform noise of +-0.1 (in AU / 5 units); the
critic scores realism and regresses AUs; the generator is trained every 5th
critic step on realism, AU regression of its output, the cycle back to the
original AUs (L1), and the attention regularizers of both passes. Random
horizontal flips; convolutions initialised N(0, 0.02); Adam 1e-4, betas
(0.5, 0.999); 20 epochs at the full learning rate, then 10 decaying
linearly. One departure: the gradient penalty
is part of the critic's loss and step rather than a second Adam step of its own.

Output folder layout::

    checkpoint-last.pt  everything needed to resume, written every epoch
    history.json        mean losses per epoch
    generator.pth       the final generator (models.ganimation.io format)
    generator.onnx      its export
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from engine.au import AU_MAX_INTENSITY
from engine.backends.generator_card import GeneratorCard
from models.ganimation.export import export_generator_onnx
from models.ganimation.io import save_generator
from models.ganimation.net import Discriminator, Generator, GeneratorConfig, blend
from models.training.enroll_data import images_to_tensor
from models.training.face_au_data import IMAGE_SIZE, FaceAuData
from models.training.ganimation_losses import (
    LossWeights,
    attention_loss,
    critic_loss,
    generator_adversarial_loss,
)
from models.training.generator_trainer import CHECKPOINT_NAME, GENERATOR_NAME, HISTORY_NAME, ONNX_NAME


@dataclass(frozen=True)
class UnpairedConfig:
    """Reference settings, except the generator's width (see GeneratorConfig: 64 is not real time on a CPU).

    epochs: passes over the data set, the last ``decay_epochs`` of them
        with the learning rate falling linearly (the reference's 20 + 10).
    generator_every: critic steps per generator step.
    target_noise: half-width of the uniform noise added to the borrowed
        target AUs, in AU / 5 units.
    critic_width: the critic's first-layer channels (64 in the reference).
    """

    epochs: int = 30
    decay_epochs: int = 10
    batch_size: int = 4
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    generator_every: int = 5
    target_noise: float = 0.1
    flip: bool = True
    seed: int = 0
    threads: int = 2
    critic_width: int = 64
    weights: LossWeights = field(default_factory=LossWeights)
    model: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(conv_dim=32, repeat_num=6))


def learning_rate(config: UnpairedConfig, epoch: int) -> float:
    """The reference schedule at 0-based ``epoch``: full, then one ``1/decay_epochs`` step down per epoch."""
    if epoch < config.epochs - config.decay_epochs:
        return config.lr
    return config.lr * max(0.0, (config.epochs - epoch) / config.decay_epochs)


def init_reference_weights(module: torch.nn.Module) -> None:
    """The reference initialisation: convolution weights N(0, 0.02), biases 0 (norms keep 1 and 0)."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)


def _batch(
    data: FaceAuData, rng: np.random.Generator, config: UnpairedConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random images (B, 3, 128, 128) in [-1, 1], their AUs and the target AUs (B, 17), both AU / 5."""
    index = rng.integers(0, len(data), config.batch_size)
    pictures = np.stack([data.image(i) for i in index])
    if config.flip:
        flipped = rng.random(config.batch_size) < 0.5
        pictures[flipped] = pictures[flipped, :, ::-1]
    real_aus = data.aus[index] / AU_MAX_INTENSITY
    borrowed = data.aus[rng.integers(0, len(data), config.batch_size)] / AU_MAX_INTENSITY
    desired = borrowed + rng.uniform(-config.target_noise, config.target_noise, borrowed.shape)
    return (
        images_to_tensor(np.ascontiguousarray(pictures)),
        torch.from_numpy(real_aus.astype(np.float32)),
        torch.from_numpy(desired.astype(np.float32)),
    )


def _generator_loss(
    generator: Generator,
    critic: Discriminator,
    real: torch.Tensor,
    real_aus: torch.Tensor,
    desired: torch.Tensor,
    weights: LossWeights,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Realism and AUs of the animated image, its cycle back to the original, both passes' mask terms."""
    color, mask = generator(real, desired)
    fake = blend(real, color, mask)
    adversarial, parts = generator_adversarial_loss(critic, fake, desired, weights)
    back_color, back_mask = generator(fake, real_aus)
    cycle = (blend(fake, back_color, back_mask) - real).abs().mean()
    loss = adversarial + weights.image * cycle + attention_loss(mask, weights) + attention_loss(back_mask, weights)
    return loss, {**parts, "g_cycle": cycle.item(), "mask_mean": mask.mean().item()}


def train_unpaired(
    data: FaceAuData,
    out_dir: str | Path,
    config: UnpairedConfig,
    *,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on ``data`` for ``config.epochs`` epochs of len(data) / batch_size iterations each.

    Checkpoints every epoch; ``resume=True`` continues from the last one,
    ``stop_after_epochs`` ends this run early. The generator and its ONNX
    export are written when all epochs are done. Returns the history dict
    also written to ``history.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = Generator.from_config(config.model)
    critic = Discriminator(image_size=IMAGE_SIZE, conv_dim=config.critic_width, c_dim=config.model.c_dim)
    init_reference_weights(generator)
    init_reference_weights(critic)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
    d_optimizer = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas)
    rng = np.random.default_rng(config.seed)
    history: dict[str, Any] = {"config": asdict(config), "images": len(data), "epochs": []}
    start_epoch, iteration = 0, 0
    checkpoint = out / CHECKPOINT_NAME
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        generator.load_state_dict(state["generator"])
        critic.load_state_dict(state["critic"])
        g_optimizer.load_state_dict(state["g_optimizer"])
        d_optimizer.load_state_dict(state["d_optimizer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        history, start_epoch, iteration = state["history"], state["epoch"] + 1, state["iteration"]

    iterations_per_epoch = math.ceil(len(data) / config.batch_size)
    last_epoch = config.epochs if stop_after_epochs is None else min(config.epochs, start_epoch + stop_after_epochs)
    generator.train()
    critic.train()
    for epoch in range(start_epoch, last_epoch):
        for optimizer in (g_optimizer, d_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, epoch)
        started = time.perf_counter()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        bar = tqdm(range(iterations_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress)
        for _ in bar:
            real, real_aus, desired = _batch(data, rng, config)
            with torch.no_grad():
                fake = blend(real, *generator(real, desired))
            d_loss, parts = critic_loss(critic, real, real_aus, fake, config.weights)
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()
            iteration += 1
            if iteration % config.generator_every == 0:
                g_loss, g_parts = _generator_loss(generator, critic, real, real_aus, desired, config.weights)
                g_optimizer.zero_grad(set_to_none=True)
                g_loss.backward()
                g_optimizer.step()
                parts |= g_parts
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value
                counts[name] = counts.get(name, 0) + 1
            bar.set_postfix(d_w=f"{parts['d_wasserstein']:.3f}")
        record = {"epoch": epoch + 1, "seconds": time.perf_counter() - started}
        record |= {name: sums[name] / counts[name] for name in sums}
        history["epochs"].append(record)
        torch.save(
            {
                "generator": generator.state_dict(),
                "critic": critic.state_dict(),
                "g_optimizer": g_optimizer.state_dict(),
                "d_optimizer": d_optimizer.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "epoch": epoch,
                "iteration": iteration,
            },
            checkpoint,
        )
        (out / HISTORY_NAME).write_text(json.dumps(history, indent=2))
    if last_epoch == config.epochs:
        generator.eval()
        card = GeneratorCard("any-face")  # trained on a face data set: the engine may use it for any portrait
        save_generator(generator, generator.config, out / GENERATOR_NAME, card=card)
        export_generator_onnx(generator, out / ONNX_NAME, card=card)
    return history
