"""Load and save GANimation generators, whatever codebase trained them.

Three on-disk formats load into the one :class:`~models.ganimation.net.Generator`;
the width (``conv_dim``), depth (``repeat_num``) and AU count (``c_dim``) are
read from the tensor shapes, so no side file is needed:

- ``ganimation``: albertpumarola/GANimation, ``net_epoch_<E>_id_G.pth``, a bare
  ``state_dict`` (``main.*``, ``img_reg.0.weight``, ``attetion_reg.0.weight``).
  Loads by key. A ``module.`` prefix (saved from ``DataParallel``) is stripped;
  ``running_mean`` / ``running_var`` / ``num_batches_tracked`` of the instance
  norms (saved by PyTorch < 0.4, where instance norm used per-image statistics
  anyway) are dropped.
- ``ganimation_replicate``: donydchen/ganimation_replicate, ``<E>_net_gen.pth``,
  a bare ``state_dict`` of its ``SplitGenerator`` (``model.*``, residual blocks
  ``model.N.conv_block.*``, ``color_top.0.weight``, ``au_top.0.weight``). The
  same network up to three details, converted exactly: its convolutions have
  biases but each is followed by an instance norm, which subtracts the
  per-channel mean and so cancels them (dropped); its instance norm has no
  affine parameters (weight 1, bias 0 here); an optional dropout in the
  residual blocks shifts the second convolution's index and is the identity
  at inference. Its heads have no bias. Its residual blocks pad with zeros by
  default, as ours do; reflection or replication padding, or ``--norm batch``,
  cannot be converted and are refused.
- ``avatar-engine/generator``: ours, written by :func:`save_generator`; a dict
  with ``format``, ``version``, ``config`` and ``state_dict``, and optionally
  ``card``: whose face it animates and what its AUs mean
  (:mod:`engine.backends.generator_card`; :func:`read_generator_card`).
  Upstream checkpoints are person-agnostic by their nature.

Everything is read with ``torch.load(..., weights_only=True)``: a checkpoint is
data, and loading one must not run code from it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from engine.au import N_AUS
from engine.backends.generator_card import GeneratorCard
from models.errors import CheckpointError
from models.ganimation.net import IMAGE_CHANNELS, Generator, GeneratorConfig

REFERENCE_FORMAT = "ganimation"
REPLICATE_FORMAT = "ganimation_replicate"
NATIVE_FORMAT = "avatar-engine/generator"
NATIVE_VERSION = 1

_RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")
_DATA_PARALLEL_PREFIX = "module."
_MAX_KEYS_LISTED = 40

StrPath = str | os.PathLike[str]


def load_generator(path: StrPath, *, c_dim: int = N_AUS) -> tuple[Generator, GeneratorConfig, str]:
    """Read a generator checkpoint of any supported format.

    c_dim: the AU vector length the caller will feed (17 OpenFace AUs); a
        checkpoint conditioned on another count is refused with what it has.
    Returns the generator in eval mode on the CPU, its shape, and the format
    name (:data:`REFERENCE_FORMAT`, :data:`REPLICATE_FORMAT` or
    :data:`NATIVE_FORMAT`).
    Raises CheckpointError, naming the file, when it cannot be read, is not a
    generator checkpoint, or its tensors do not fit (missing and unexpected
    keys, shape mismatches); FileNotFoundError when there is no file.
    """
    path = Path(path)
    payload = _read(path)
    if isinstance(payload, Mapping) and "format" in payload:
        config, state = _unpack_native(payload, path)
        fmt = NATIVE_FORMAT
    else:
        state = _as_state_dict(payload, path)
        state = {k.removeprefix(_DATA_PARALLEL_PREFIX): v for k, v in state.items()}
        fmt = _detect_format(state, path)
        if fmt == REPLICATE_FORMAT:
            state = _rename_replicate(state, path)
        config = _infer_config(state, default_c_dim=c_dim)
    if config.c_dim != c_dim:
        raise CheckpointError(
            f"{path}: the generator is conditioned on {config.c_dim} values (its first convolution takes "
            f"{IMAGE_CHANNELS} + {config.c_dim} input channels) but {c_dim} AUs are expected"
            + (" (5 is the CelebA attribute setting)" if config.c_dim == 5 else "")
            + f"; pass c_dim={config.c_dim} to load it anyway"
        )
    generator = Generator.from_config(config)
    if fmt != NATIVE_FORMAT:
        state = _fit_norms(generator, state, path, replicate=fmt == REPLICATE_FORMAT)
    _load_exactly(generator, state, path, fmt)
    return generator.eval(), config, fmt


def read_generator_card(path: StrPath) -> GeneratorCard | None:
    """What the checkpoint says about itself: our format's card (None if it has none), or
    person-agnostic for the upstream formats. Raises CheckpointError as :func:`load_generator`."""
    path = Path(path)
    payload = _read(path)
    if isinstance(payload, Mapping) and "format" in payload:
        card = payload.get("card")
        return None if card is None else GeneratorCard.from_json(str(card), path)
    state = _as_state_dict(payload, path)
    _detect_format({k.removeprefix(_DATA_PARALLEL_PREFIX): v for k, v in state.items()}, path)
    return GeneratorCard("any-face")


def save_generator(
    generator: Generator, config: GeneratorConfig, path: StrPath, *, card: GeneratorCard | None = None
) -> None:
    """Write ``generator`` in this project's format, readable by :func:`load_generator`.

    card: whose face it animates and what its AUs mean; None writes no card
        (the engine then does not pick it for any portrait by itself).

    The file is written beside its destination and renamed into place, so an
    interrupted save never leaves a truncated checkpoint under ``path``.
    Raises ValueError when ``config`` does not describe ``generator``.
    """
    if config != generator.config:
        raise ValueError(f"config {config} does not describe the generator ({generator.config})")
    path = Path(path)
    payload = {
        "format": NATIVE_FORMAT,
        "version": NATIVE_VERSION,
        "config": dataclasses.asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
    }
    if card is not None:
        payload["card"] = card.to_json()
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save(payload, partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def _read(path: Path) -> object:
    """The unpickled file content; any decoding failure becomes a CheckpointError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # no such file, no permission: not a content problem
    except Exception as error:
        # Damaged bytes surface as almost any exception type from the zip
        # reader or the unpickler (RuntimeError, EOFError, KeyError,
        # UnpicklingError, ...); all mean the same thing here.
        raise CheckpointError(
            f"{path}: cannot read as a PyTorch checkpoint of plain tensors (truncated, damaged, not written "
            f"by torch.save, or holding objects that weights-only loading refuses; {type(error).__name__})"
        ) from error


def _as_state_dict(payload: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(payload, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        raise CheckpointError(
            f"{path}: expected a state dict (names to tensors), found {type(payload).__name__}"
            + (f" with keys {_listing(payload.keys())}" if isinstance(payload, Mapping) else "")
        )
    return dict(payload)


def _unpack_native(payload: Mapping[object, object], path: Path) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    if payload.get("format") != NATIVE_FORMAT:
        raise CheckpointError(
            f"{path}: unknown checkpoint format {payload.get('format')!r}; expected {NATIVE_FORMAT!r}"
        )
    if payload.get("version") != NATIVE_VERSION:
        raise CheckpointError(
            f"{path}: {NATIVE_FORMAT} version {payload.get('version')!r}; this code reads version {NATIVE_VERSION}"
        )
    fields = {field.name for field in dataclasses.fields(GeneratorConfig)}
    raw = payload.get("config")
    if (
        not isinstance(raw, Mapping)
        or set(raw) != fields
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw.values())
    ):
        raise CheckpointError(f"{path}: config must map {sorted(fields)} to integers, found {raw!r}")
    return GeneratorConfig(**raw), _as_state_dict(payload.get("state_dict"), path)


def _detect_format(state: Mapping[str, torch.Tensor], path: Path) -> str:
    keys = set(state)
    if keys & {"img_reg.0.weight", "attetion_reg.0.weight"}:
        return REFERENCE_FORMAT
    if keys & {"color_top.0.weight", "au_top.0.weight"}:
        return REPLICATE_FORMAT
    if keys & {"conv1.weight", "conv2.weight", "dis_top.weight", "aus_top.weight"}:
        raise CheckpointError(
            f"{path}: this is a discriminator checkpoint (critic and AU heads); "
            "load the generator file (net_epoch_<E>_id_G.pth or <E>_net_gen.pth)"
        )
    # Heads missing (a damaged or hand-edited file): go by the trunk's name and
    # let the exact load below list what is missing.
    if any(k.startswith("main.") for k in keys):
        return REFERENCE_FORMAT
    if any(k.startswith("model.") for k in keys):
        return REPLICATE_FORMAT
    raise CheckpointError(f"{path}: not a GANimation generator checkpoint; its keys are {_listing(keys)}")


_REPLICATE_BLOCK_KEY = re.compile(r"model\.(\d+)\.conv_block\.(\d+)\.(.+)")
_REPLICATE_HEADS = {"color_top.": "img_reg.", "au_top.": "attetion_reg."}


def _rename_replicate(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """ganimation_replicate key names to ours; the tensors are untouched.

    Its ``model`` Sequential has our ``main`` indices. In a residual block,
    ``conv_block`` is [conv, norm, ReLU, conv, norm] with zero padding, or has
    a Dropout before the second conv (``--use_dropout``), which moves it to
    index 4. Padding layers (reflect / replicate) would put the first conv at 1.
    """
    block_convs: dict[str, list[int]] = {}
    for key, tensor in state.items():
        match = _REPLICATE_BLOCK_KEY.fullmatch(key)
        if match and match[3] == "weight" and tensor.dim() == 4:
            block_convs.setdefault(match[1], []).append(int(match[2]))
    index_maps: dict[str, dict[int, int]] = {}
    for block, convs in block_convs.items():
        convs.sort()
        if len(convs) != 2 or convs[0] != 0 or convs[1] not in (3, 4):
            raise CheckpointError(
                f"{path}: residual block model.{block} has convolutions at conv_block indices {convs}; "
                "only the zero-padded layout [conv, norm, ReLU, (dropout,) conv, norm] converts exactly "
                "(reflection or replication padding would put the first conv at index 1)"
            )
        index_maps[block] = {0: 0, 1: 1, convs[1]: 3, convs[1] + 1: 4}

    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        match = _REPLICATE_BLOCK_KEY.fullmatch(key)
        if match and match[1] in index_maps and int(match[2]) in index_maps[match[1]]:
            key = f"main.{match[1]}.main.{index_maps[match[1]][int(match[2])]}.{match[3]}"
        elif key.startswith("model."):
            key = "main." + key.removeprefix("model.")
        else:
            for theirs, ours in _REPLICATE_HEADS.items():
                if key.startswith(theirs):
                    key = ours + key.removeprefix(theirs)
        renamed[key] = tensor
    return renamed


_RESIDUAL_KEY = re.compile(r"main\.(\d+)\.main\.")


def _infer_config(state: Mapping[str, torch.Tensor], *, default_c_dim: int) -> GeneratorConfig:
    """The shape the tensors describe (in our key names).

    Width and AU count come from the first convolution, (conv_dim, 3 + c_dim,
    7, 7); failing that the width comes from a head's input channels and the
    rest from the defaults, so that the exact load reports what is missing.
    """
    repeat_num = len({match[1] for key in state if (match := _RESIDUAL_KEY.match(key))})
    first = state.get("main.0.weight")
    if first is not None and first.dim() == 4:
        return GeneratorConfig(conv_dim=first.shape[0], repeat_num=repeat_num, c_dim=first.shape[1] - IMAGE_CHANNELS)
    head = state.get("img_reg.0.weight", state.get("attetion_reg.0.weight"))
    conv_dim = head.shape[1] if head is not None and head.dim() == 4 else GeneratorConfig.conv_dim
    return GeneratorConfig(conv_dim=conv_dim, repeat_num=repeat_num, c_dim=default_c_dim)


def _conv_norm_pairs(generator: Generator) -> dict[str, str]:
    """Each convolution that is directly followed by an instance norm, mapped to that norm's name."""
    pairs: dict[str, str] = {}
    for name, module in generator.named_modules():
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (conv_name, conv), (norm_name, norm) in zip(children, children[1:]):
                if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(norm, nn.InstanceNorm2d):
                    pairs[f"{name}.{conv_name}"] = f"{name}.{norm_name}"
    return pairs


def _fit_norms(
    generator: Generator, state: Mapping[str, torch.Tensor], path: Path, *, replicate: bool
) -> dict[str, torch.Tensor]:
    """Drop stale running statistics; for ganimation_replicate, cancel biases and add unit affine norms.

    A bias is dropped only on a convolution that our architecture follows with
    an instance norm; any other bias stays and is reported as unexpected.
    """
    expected = generator.state_dict()
    fitted = dict(state)
    for conv, norm in _conv_norm_pairs(generator).items():
        for stat in _RUNNING_STATS:
            fitted.pop(f"{norm}.{stat}", None)
        if not replicate:
            continue
        affine = [k for k in (f"{norm}.weight", f"{norm}.bias") if k in fitted]
        if affine:
            raise CheckpointError(
                f"{path}: ganimation_replicate norm layer has parameters {affine}: trained with --norm batch? "
                "Only its default, non-affine instance norm converts exactly"
            )
        fitted.pop(f"{conv}.bias", None)  # the norm subtracts each channel's mean, bias included
        fitted[f"{norm}.weight"] = torch.ones_like(expected[f"{norm}.weight"])
        fitted[f"{norm}.bias"] = torch.zeros_like(expected[f"{norm}.bias"])
    return fitted


def _load_exactly(generator: Generator, state: Mapping[str, torch.Tensor], path: Path, fmt: str) -> None:
    """Load every tensor or none; the error lists all missing, unexpected and mis-shaped keys."""
    expected = generator.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    mismatched = [
        f"{key}: expected {tuple(expected[key].shape)}, got {tuple(state[key].shape)}"
        for key in sorted(expected.keys() & state.keys())
        if expected[key].shape != state[key].shape
    ]
    if missing or unexpected or mismatched:
        problems = [
            f"{label} {_listing(items)}"
            for label, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
            )
            if items
        ]
        renamed = " (key names after conversion to ours)" if fmt == REPLICATE_FORMAT else ""
        raise CheckpointError(
            f"{path}: {fmt} checkpoint does not fit a generator with {generator.config}{renamed}: "
            + "; ".join(problems)
        )
    generator.load_state_dict(state, strict=True)


def _listing(items: Iterable[object]) -> str:
    names = [str(item) for item in items]
    shown = ", ".join(names[:_MAX_KEYS_LISTED])
    return f"[{shown}{', ...' if len(names) > _MAX_KEYS_LISTED else ''}] ({len(names)})"
