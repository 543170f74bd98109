"""Where each network's weights come from, and their ONNX files for the CPU runtimes.

A network is given as a PyTorch checkpoint (any format :mod:`models.ganimation.io`
or :mod:`models.cause.io` reads), as an ONNX file, or not at all. "Not at all"
means the defaults: the trained files in ``models/weights/`` when they exist,
otherwise an *untrained* network from a fixed seed, which is announced loudly
wherever it is used because its faces and AUs are meaningless.

ONNX runtimes need ONNX files; a checkpoint (or the untrained default) is
exported once, with torch, into a cache folder keyed by the checkpoint's
content hash, so that a serving process started later needs no torch at all.
"""

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.backends.torch_support import torch_support
from engine.errors import EngineError, ModelFileError, first_line, require

NetworkKind = Literal["generator", "cause"]

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "models" / "weights"
DEFAULT_ONNX_NAMES: dict[str, str] = {"generator": "generator.onnx", "cause": "cause_step.onnx"}
DEFAULT_CHECKPOINT_NAMES: dict[str, str] = {"generator": "generator.pth", "cause": "cause.pt"}
"""The trained defaults come as ONNX (what serving runs, no torch needed) plus the
checkpoint they were exported from (what the torch reference backend loads)."""
UNTRAINED_SEED = 0
UNTRAINED_GENERATOR_WIDTH = 32
"""conv_dim of the untrained default generator: width 32 runs in real time on a
2-core CPU (FIELD_NOTES.md), the reference width 64 does not."""
EXPORT_FORMAT_VERSION = 3
"""Bumped whenever an export changes, so stale cached ONNX files are not reused."""


@dataclass(frozen=True)
class ModelSource:
    """One network's weights: a checkpoint or ONNX file, or ``None`` for untrained.

    ``checkpoint`` is the PyTorch file behind an ONNX ``path`` when known (the
    trained defaults ship both), so the torch backend can load the same weights.
    """

    kind: NetworkKind
    path: Path | None
    checkpoint: Path | None = None

    @property
    def trained(self) -> bool:
        return self.path is not None

    @property
    def is_onnx(self) -> bool:
        return self.path is not None and self.path.suffix.lower() == ".onnx"

    @property
    def is_openvino_ir(self) -> bool:
        """An OpenVINO IR (``.xml`` beside its ``.bin``), e.g. an int8 generator: only OpenVINO runs it."""
        return self.path is not None and self.path.suffix.lower() == ".xml"

    def describe(self) -> str:
        if self.path is None:
            return f"{self.kind}: UNTRAINED (random weights, seed {UNTRAINED_SEED})"
        return f"{self.kind}: {self.path}"


def resolve_source(kind: NetworkKind, path: str | Path | None) -> ModelSource:
    """The user's file if given (it must exist), else the trained default, else untrained."""
    if path is not None:
        resolved = Path(path).expanduser()
        if not resolved.is_file():
            raise ModelFileError(f"{kind} weights not found: {resolved}")
        return ModelSource(kind, resolved)
    default = WEIGHTS_DIR / DEFAULT_ONNX_NAMES[kind]
    checkpoint = WEIGHTS_DIR / DEFAULT_CHECKPOINT_NAMES[kind]
    if not default.is_file():
        return ModelSource(kind, None)
    return ModelSource(kind, default, checkpoint if checkpoint.is_file() else None)


def cache_dir() -> Path:
    """``$AVATAR_CACHE_DIR`` or ``~/.cache/avatar-engine``: exported ONNX files live here."""
    root = os.environ.get("AVATAR_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "avatar-engine"


def load_torch_network(source: ModelSource) -> Any:
    """The network as an eval-mode torch module (for the torch backend and for exports)."""
    if source.is_onnx or source.is_openvino_ir:
        if source.checkpoint is None:
            kind = "an ONNX file" if source.is_onnx else "an OpenVINO IR"
            raise ModelFileError(f"{source.path} is {kind}; the torch backend needs a PyTorch checkpoint")
        source = ModelSource(source.kind, source.checkpoint)
    plugin = torch_support("loading a PyTorch checkpoint (or building untrained weights)")
    return plugin.load_network(
        source.kind, source.path, untrained_seed=UNTRAINED_SEED, untrained_width=UNTRAINED_GENERATOR_WIDTH
    )


def onnx_path(source: ModelSource) -> Path:
    """Where ``source``'s ONNX file is: the file itself, or where its cached export is or will be."""
    if source.is_openvino_ir:
        raise ModelFileError(f"{source.path} is an OpenVINO IR: it runs on --backend openvino only")
    if source.is_onnx:
        assert source.path is not None
        return source.path
    if source.path is None:
        key = f"untrained-seed{UNTRAINED_SEED}-w{UNTRAINED_GENERATOR_WIDTH}"
    else:
        key = hashlib.sha256(source.path.read_bytes()).hexdigest()[:16]
    return cache_dir() / f"{source.kind}-{key}-v{EXPORT_FORMAT_VERSION}.onnx"


def onnx_file(source: ModelSource) -> Path:
    """An ONNX file for ``source``: the file itself, or a cached export of it (made now if missing)."""
    target = onnx_path(source)
    if not target.is_file():
        export_onnx(load_torch_network(source), source.kind, target, checkpoint=source.path)
    return target


def export_onnx(net: Any, kind: NetworkKind, target: Path, *, checkpoint: Path | None = None) -> None:
    """Export ``net`` atomically (a half-written file must never be picked up as cached).

    checkpoint: the file ``net`` was loaded from; a generator's card (whose face it animates) goes into the
    export too.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    require("onnx", extra="train", purpose="exporting a PyTorch checkpoint to ONNX")
    support = torch_support("exporting a PyTorch checkpoint to ONNX")
    try:
        card = support.generator_card(checkpoint) if kind == "generator" and checkpoint is not None else None
        support.export_onnx(net, kind, partial, card=card)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def loading(path: Path, kind: NetworkKind, runtime: str) -> Iterator[None]:
    """Turn a runtime's failure to read ``path`` into a ModelFileError that names the file.

    ONNX Runtime and OpenVINO answer a truncated or foreign file with protobuf
    or parser dumps that never name it; the user needs the file, the network
    it was meant for, and the gist.
    """
    try:
        yield
    except EngineError:
        raise
    except Exception as exc:
        raise ModelFileError(
            f"{path} cannot be loaded as the {kind} network by {runtime} (is it one of ours, and whole?): "
            f"{first_line(exc)}"
        ) from exc
