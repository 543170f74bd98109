"""CAUSE checkpoints: our own format, a ``torch.save`` dict of plain tensors and the network's config.

Read with ``torch.load(..., weights_only=True)``: a checkpoint is data, and
loading one must not run code from it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import Tensor

from models.cause.net import CauseConfig, CauseNet
from models.errors import CheckpointError

CHECKPOINT_FORMAT = "avatar-engine/cause"
CHECKPOINT_VERSION = 1


def save_cause(net: CauseNet, path: str | Path) -> None:
    """Write ``net`` in our checkpoint format.

    A ``torch.save`` file holding ``{"format": "avatar-engine/cause",
    "version": 1, "config": CauseConfig.to_dict(), "state_dict": ...}`` (CPU
    tensors, weight-norm parametrizations and normalisation buffers included).
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": net.config.to_dict(),
        "state_dict": {key: value.detach().cpu() for key, value in net.state_dict().items()},
    }
    torch.save(payload, Path(path))


def load_cause(path: str | Path) -> CauseNet:
    """Read a checkpoint written by ``save_cause``; returns an eval-mode CPU ``CauseNet``.

    Raises:
        CheckpointError: the file is unreadable (e.g. truncated), not our
            format or version, its config is invalid, or its tensors do not fit
            the config (missing / unexpected keys, shape mismatches). The
            message names the file.
        OSError: the file cannot be opened.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint of plain tensors (truncated or corrupt?; {type(error).__name__})"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: not a CAUSE checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported CAUSE checkpoint version {payload.get('version')!r}, expected {CHECKPOINT_VERSION}"
        )
    try:
        config = CauseConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: invalid config: {error}") from error
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: no state_dict")
    net = CauseNet(config)
    expected = net.state_dict()
    not_tensors = sorted(key for key, value in state_dict.items() if not isinstance(value, Tensor))
    if not_tensors:
        raise CheckpointError(f"{path}: state_dict entries that are not tensors: {not_tensors}")
    problems = []
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    mismatched = [
        f"{key}: file {tuple(state_dict[key].shape)}, config {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(state_dict))
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    ]
    if mismatched:
        problems.append(f"shape mismatches [{'; '.join(mismatched)}]")
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not fit its config {config}: {', '.join(problems)}")
    net.load_state_dict(state_dict)
    return net.eval()
