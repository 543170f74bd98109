"""What the engine needs from PyTorch, provided by this package as a plugin.

The serving engine runs ONNX files and never imports this package: the
package graph goes models -> engine, never back. Where a user hands the
engine a PyTorch checkpoint (the torch reference backend, exporting the
checkpoint to ONNX once, reading a generator's card, describing the networks
for ``avatar info``), ``engine.backends.torch_support`` loads this module
through its entry point (``avatar.torch``, in pyproject.toml) after checking
that torch is installed, and calls these functions.
"""

from pathlib import Path
from typing import Literal

import torch
from torch import nn

from engine.backends.generator_card import GeneratorCard
from models.cause.export import export_step_onnx
from models.cause.io import load_cause
from models.cause.net import CauseConfig, CauseNet, algorithmic_latency_ms, parameter_count, receptive_field_hops
from models.ganimation.export import export_generator_onnx
from models.ganimation.io import load_generator, read_generator_card
from models.ganimation.net import Generator, generator_macs

NetworkKind = Literal["generator", "cause"]


def load_network(kind: NetworkKind, path: Path | None, *, untrained_seed: int, untrained_width: int) -> nn.Module:
    """The network in ``path`` (any checkpoint format we read), or untrained from ``untrained_seed``; eval mode.

    ``untrained_width`` is the untrained generator's conv_dim.
    """
    if kind == "generator":
        if path is None:
            torch.manual_seed(untrained_seed)
            return Generator(conv_dim=untrained_width).eval()
        generator, _, _ = load_generator(path)
        return generator.eval()
    if path is None:
        torch.manual_seed(untrained_seed)
        return CauseNet(CauseConfig()).eval()
    return load_cause(path).eval()


def export_onnx(net: nn.Module, kind: NetworkKind, target: Path, *, card: GeneratorCard | None = None) -> None:
    """Write ``net`` as the ONNX graph the engine's runtimes run (generator, or CAUSE's streaming step).

    card: the generator checkpoint's card, kept in the ONNX file so that the export still says whose face it
    animates (``--renderer auto`` reads it there).
    """
    if kind == "generator":
        assert isinstance(net, Generator)
        export_generator_onnx(net, target, card=card)
    else:
        assert isinstance(net, CauseNet)
        export_step_onnx(net, target)


def generator_card(path: Path) -> GeneratorCard | None:
    """What a generator checkpoint says about whose face it animates (None: it does not say)."""
    return read_generator_card(path)


def describe(net: nn.Module) -> str:
    """One line about a network: size, cost, and for CAUSE its receptive field and latency."""
    if isinstance(net, CauseNet):
        cause = net.config
        return (
            f"CAUSE: {parameter_count(net) / 1e3:.0f} k parameters, receptive field "
            f"{receptive_field_hops(cause)} hops ({receptive_field_hops(cause) * 10} ms), "
            f"lookahead {cause.lookahead_hops} hops, algorithmic latency {algorithmic_latency_ms(cause):.0f} ms"
        )
    assert isinstance(net, Generator)
    generator = net.config
    return (
        f"generator: width {generator.conv_dim}, {generator.repeat_num} residual blocks, "
        f"{parameter_count(net) / 1e6:.2f} M parameters, {generator_macs(generator) / 1e9:.2f} GMAC per frame"
    )
