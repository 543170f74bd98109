"""CAUSE: causal, streaming estimation of facial action unit intensities from speech.

After Kameoka, Kaneko, Seki and Tanaka, "Crossmodal action unit sequence
estimation from speech", Interspeech 2022: a fully convolutional network maps a
log-mel spectrogram to a sequence of ``N_AUS`` action unit (AU) intensities in
0..5. Ours is made causal and streaming:

- input normalisation ``(mel - mel_mean) / mel_std`` with fixed buffers
  (defaults ``DEFAULT_MEL_MEAN`` / ``DEFAULT_MEL_STD``; training code sets the
  data set's statistics with ``CauseNet.set_mel_normalization``);
- a pointwise (1x1) input conv to ``channels``;
- one residual gated block per entry of ``dilations``:
  ``h = h + GLU(conv_k,d(h))``, the conv causal (left context only) and dilated;
- a pointwise output conv to ``n_aus`` and ``5 * sigmoid``.

Every conv is weight-normalised
(``torch.nn.utils.parametrizations.weight_norm``); the ONNX export folds the
normalisation into plain weights.

Time conventions
----------------
Hop ``t`` is the ``t``-th log-mel frame (10 ms hop, 25 ms window, 100 Hz;
computed by ``engine.audio``). The raw causal output ``y[t]`` depends on mel
hops ``t - R + 1 .. t`` only, ``R = receptive_field_hops(config)``, with zeros
(after the input conv) before the first hop. The only future input is the
lookahead ``L = config.lookahead_hops``, implemented as an output delay: the
AU estimate for hop ``t`` is ``y[t + L]``, so it uses mel hops
``t + L - R + 1 .. t + L``. Hence

- ``CauseNet.forward(mel (B, T, n_mels)) -> (B, max(T - L, 0), n_aus)``: row
  ``t`` is the estimate for hop ``t``; the last ``L`` hops have no estimate
  until more audio arrives.
- ``CauseNet.step`` returns the raw causal outputs ``y`` for new hops (no
  delay applied); a streaming caller drops the first ``L`` of them, and its
  outputs, concatenated over any chunking, then equal ``forward`` on the
  whole sequence.

AUs come out at the hop rate (100 Hz); ``engine.pipeline.frame_hop`` maps
video frames to hops.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from engine.au import AU_MAX_INTENSITY, N_AUS
from engine.audio import HOP_MS, WINDOW_MS

DEFAULT_MEL_MEAN = -4.0
"""Default input normalisation mean, in log-mel units (natural log of mel power)."""
DEFAULT_MEL_STD = 4.0
"""Default input normalisation standard deviation, in log-mel units."""
OUTPUT_BIAS_INIT = -4.0
"""Initial output bias: 5 * sigmoid(-4) = 0.09, a face near rest. Starting from the
sigmoid's midpoint (2.5 on every AU) the first steps drive most outputs down so hard
that the sigmoid saturates and training stalls; faces are at rest most of the time."""


@dataclass(frozen=True, kw_only=True)
class CauseConfig:
    """Hyper-parameters of a ``CauseNet``.

    Attributes:
        n_mels: mel bins of the input.
        channels: width of the residual stream (the gated convs output
            ``2 * channels`` before the GLU).
        kernel_size: taps of each dilated causal conv (>= 2).
        dilations: dilation of each gated block, one block per entry.
        lookahead_hops: future mel hops used by each estimate (10 ms each);
            ``0 <= lookahead_hops < receptive_field_hops(config)``.
        n_aus: AU intensities estimated per hop.

    The defaults give 61 hops (610 ms) of receptive field, 2 hops (20 ms) of
    lookahead and about 0.31 M parameters.
    """

    n_mels: int = 80
    channels: int = 80
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)
    lookahead_hops: int = 2
    n_aus: int = N_AUS

    def __post_init__(self) -> None:
        object.__setattr__(self, "dilations", tuple(self.dilations))
        for name in ("n_mels", "channels", "n_aus"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2, got {self.kernel_size}")
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"dilations must be a non-empty sequence of ints >= 1, got {self.dilations}")
        receptive_field = receptive_field_hops(self)
        if not 0 <= self.lookahead_hops < receptive_field:
            raise ValueError(
                f"lookahead_hops must be in 0..{receptive_field - 1} (receptive field {receptive_field} hops),"
                f" got {self.lookahead_hops}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (lists, ints) for checkpoints."""
        fields = dataclasses.asdict(self)
        fields["dilations"] = list(self.dilations)
        return fields

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> CauseConfig:
        """Inverse of ``to_dict``; raises ``ValueError`` on unknown or invalid fields."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        return cls(**fields)


def receptive_field_hops(config: CauseConfig) -> int:
    """Mel hops that one raw causal output depends on (the current hop included).

    ``1 + (kernel_size - 1) * sum(dilations)``; the pointwise convs add nothing.
    """
    return 1 + (config.kernel_size - 1) * sum(config.dilations)


def algorithmic_latency_ms(config: CauseConfig) -> float:
    """Audio the estimate for hop ``t`` waits for beyond the start of hop ``t``, in ms.

    ``lookahead_hops * HOP_MS + WINDOW_MS``: the estimate needs mel hop
    ``t + L``, whose 25 ms window starts ``L`` hops after hop ``t``'s and is
    complete only when its last sample has arrived. Not included: compute time,
    audio packetization, network and jitter buffers, buffering in the mel
    front end beyond the window, and the quantization of hops to video frames
    (``engine.pipeline.frame_hop``).
    """
    return config.lookahead_hops * HOP_MS + WINDOW_MS


def parameter_count(net: nn.Module) -> int:
    """Number of trainable scalars (weight-norm gains and directions counted separately; buffers excluded)."""
    return sum(parameter.numel() for parameter in net.parameters() if parameter.requires_grad)


class _GatedBlock(nn.Module):
    """Residual gated causal dilated conv: ``h + GLU(conv(h))``, time-major ``(B, T, C)``.

    The conv has ``kernel_size`` taps ``dilation`` hops apart, the last at the
    current hop, and ``2 * C`` outputs. It is computed as a pointwise conv (a
    ``Linear`` over channels) on the taps stacked along channels: input
    channel ``j * C + c`` is channel ``c`` delayed by
    ``(kernel_size - 1 - j) * dilation`` hops. This is the arithmetic of
    ``nn.Conv1d(C, 2 * C, kernel_size, dilation=dilation)`` with weight
    ``w[o, c, j]`` stored as ``[o, j * C + c]`` (weight norm over a row is
    the same norm), but torch's CPU dilated conv is about 10x slower on one
    hop.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.context_hops = (kernel_size - 1) * dilation
        self.conv = weight_norm(nn.Linear(kernel_size * channels, 2 * channels))

    def forward(self, hidden: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """Run on ``hidden (B, k, C)``, k >= 1, after ``context (B, context_hops, C)``.

        Returns the block output ``(B, k, C)`` and the new context: the last
        ``context_hops`` input frames ``(B, context_hops, C)``, oldest first.
        """
        n_hops = hidden.shape[1]
        padded = torch.cat([context, hidden], dim=1)
        taps = [padded[:, j * self.dilation : j * self.dilation + n_hops] for j in range(self.kernel_size - 1)]
        stacked = torch.cat([*taps, hidden], dim=2)
        return hidden + F.glu(self.conv(stacked), dim=2), padded[:, -self.context_hops :]


class CauseNet(nn.Module):
    """Causal fully convolutional AU estimator (see the module docstring).

    Offline: ``net(mel)``. Streaming: ``net.initial_state(B)`` then
    ``net.step(chunk, *state)`` repeatedly. Tensors
    are time-major, ``(batch, hops, channels)``; the pointwise convs are
    ``Linear`` layers over the channel axis.
    """

    mel_mean: Tensor
    mel_std: Tensor
    """Buffers (registered in ``__init__``): the input normalisation, saved in checkpoints and exports."""

    def __init__(self, config: CauseConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else CauseConfig()
        cfg = self.config
        self.register_buffer("mel_mean", torch.full((cfg.n_mels,), DEFAULT_MEL_MEAN))
        self.register_buffer("mel_std", torch.full((cfg.n_mels,), DEFAULT_MEL_STD))
        self.input_conv = weight_norm(nn.Linear(cfg.n_mels, cfg.channels))
        self.blocks = nn.ModuleList(_GatedBlock(cfg.channels, cfg.kernel_size, d) for d in cfg.dilations)
        self.output_conv = weight_norm(nn.Linear(cfg.channels, cfg.n_aus))
        nn.init.constant_(self.output_conv.bias, OUTPUT_BIAS_INIT)

    def set_mel_normalization(self, mean: float | np.ndarray | Tensor, std: float | np.ndarray | Tensor) -> None:
        """Set the input normalisation ``(mel - mean) / std``.

        ``mean`` and ``std`` are scalars or per-bin values of shape
        ``(n_mels,)``, in log-mel units; ``std`` must be > 0. They are buffers:
        saved in checkpoints and baked into ONNX exports.
        """
        n_mels = self.config.n_mels
        mean_t = torch.as_tensor(mean, dtype=torch.float32).broadcast_to((n_mels,))
        std_t = torch.as_tensor(std, dtype=torch.float32).broadcast_to((n_mels,))
        if not bool((std_t > 0).all()):
            raise ValueError("std must be > 0 in every mel bin")
        self.mel_mean.copy_(mean_t)
        self.mel_std.copy_(std_t)

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        """Streaming state before the first hop: zeros, one tensor per gated block.

        State ``i`` has shape ``(batch_size, (kernel_size - 1) * dilations[i],
        channels)``: the last input frames of block ``i``, oldest first.
        Zeros equal the zero left padding of the offline ``forward``.
        """
        return tuple(
            self.mel_mean.new_zeros((batch_size, block.context_hops, self.config.channels)) for block in self._blocks()
        )

    def _blocks(self) -> list[_GatedBlock]:
        """The gated blocks, typed (``nn.ModuleList`` iterates as plain modules)."""
        return [cast(_GatedBlock, block) for block in self.blocks]

    def step(self, mel_chunk: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """Consume ``k >= 1`` new mel hops; return their raw causal outputs and the new state.

        Args:
            mel_chunk: log-mel ``(B, k, n_mels)``.
            state: ``len(config.dilations)`` tensors from ``initial_state`` or
                the previous ``step``.

        Returns:
            ``(au, *new_state)``: ``au (B, k, n_aus)`` in ``[0, 5]``, the raw
            outputs ``y`` for these hops, not yet delayed by the lookahead
            (``y[t]`` is the estimate for hop ``t - lookahead_hops``), and the
            state after them, shaped as ``initial_state``'s.
        """
        if len(state) != len(self.blocks):
            raise ValueError(f"expected {len(self.blocks)} state tensors, got {len(state)}")
        hidden = self.input_conv((mel_chunk - self.mel_mean) / self.mel_std)
        new_state = []
        for block, context in zip(self._blocks(), state):
            hidden, context = block(hidden, context)
            new_state.append(context)
        au = AU_MAX_INTENSITY * torch.sigmoid(self.output_conv(hidden))
        return (au, *new_state)

    def forward(self, mel: Tensor) -> Tensor:
        """Offline estimate: ``mel (B, T, n_mels)`` -> AUs ``(B, max(T - L, 0), n_aus)`` in ``[0, 5]``.

        Row ``t`` is the estimate for hop ``t`` and uses mel hops
        ``max(t + L - R + 1, 0) .. t + L`` (``L = config.lookahead_hops``,
        ``R = receptive_field_hops(config)``), at 100 Hz.
        """
        batch_size, n_hops, _ = mel.shape
        if n_hops == 0:
            return mel.new_zeros((batch_size, 0, self.config.n_aus))
        raw = self.step(mel, *self.initial_state(batch_size))[0]
        return raw[:, self.config.lookahead_hops :]


def fold_weight_norm(net: CauseNet) -> CauseNet:
    """An eval-mode ``CauseNet`` sharing no storage with ``net``, with plain weights equal to its normalised ones.

    What the ONNX export traces, so that the graph holds plain weights: weight
    norm is a training device, and a graph would recompute it on every step.
    Later changes to ``net`` are not seen by the copy.

    Built fresh (restoring torch's CPU random generator after the throw-away
    initialisation) rather than by removing the parametrizations from a deep copy:
    a copy shares its parametrized module classes with the original, and
    removal deletes the ``weight`` property from the shared class, breaking
    ``net``.
    """
    with torch.random.fork_rng(devices=[]):
        folded = CauseNet(net.config)
    for module in folded.modules():
        if parametrize.is_parametrized(module):
            for name in list(cast(nn.ModuleDict, module.parametrizations)):
                parametrize.remove_parametrizations(module, name)
    with torch.no_grad():
        plain = {}
        for key in folded.state_dict():
            module_path, _, attribute = key.rpartition(".")
            plain[key] = getattr(net.get_submodule(module_path), attribute).detach().clone()
    folded.load_state_dict(plain, assign=True)
    return folded.eval()
