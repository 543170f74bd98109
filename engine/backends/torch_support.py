"""PyTorch checkpoints, through the plugin the models package provides (entry point ``avatar.torch``).

Serving needs no torch and no training code: it runs ONNX files. Four things
need a PyTorch checkpoint read: the torch reference backend, exporting a
checkpoint to ONNX once, reading a generator checkpoint's card and describing
the networks. They go through :func:`torch_support`, which checks that torch
is installed (else the error names the ``train`` extra) and loads the module
registered under the entry point, so the engine never imports ``models``.
"""

from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from engine.errors import MissingExtraError, require

if TYPE_CHECKING:  # generator_card imports model_files, which imports this module
    from engine.backends.generator_card import GeneratorCard

ENTRY_POINT_GROUP = "avatar.torch"
ENTRY_POINT_NAME = "networks"


class TorchSupport(Protocol):
    """The functions of ``models.torch_support``."""

    def load_network(
        self, kind: Literal["generator", "cause"], path: Path | None, *, untrained_seed: int, untrained_width: int
    ) -> Any: ...

    def export_onnx(
        self, net: Any, kind: Literal["generator", "cause"], target: Path, *, card: "GeneratorCard | None" = None
    ) -> None: ...

    def generator_card(self, path: Path) -> "GeneratorCard | None": ...

    def describe(self, net: Any) -> str: ...


def torch_support(purpose: str) -> TorchSupport:
    """The torch plugin, for ``purpose`` (said in the error when torch or the plugin is missing)."""
    require("torch", extra="train", purpose=purpose)
    found = entry_points(group=ENTRY_POINT_GROUP, name=ENTRY_POINT_NAME)
    if not found:
        raise MissingExtraError(
            f"{purpose} needs the avatar-engine models package registered under the {ENTRY_POINT_GROUP!r} entry "
            "point: reinstall the package (pip install -e '.[train]' in a checkout)"
        )
    return cast(TorchSupport, next(iter(found)).load())
