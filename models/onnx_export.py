"""Shared set-up for torch's ONNX exporter, so every export is quiet and alike."""

import contextlib
import logging
import warnings
from collections.abc import Iterator

_NOISY_LOGGERS = ("torch.onnx", "onnxscript", "torch.export", "torch._export")


@contextlib.contextmanager
def quiet_onnx_export() -> Iterator[None]:
    """Silence the exporter's own notes about its internals (not about our models).

    torch 2.13's exporter warns that one Dim shared by several inputs "will not
    be used" (sharing is what we mean), about an internal pytree deprecation,
    about skipping torchvision ops we do not use, and about converting opset 18
    down. Real errors still raise.
    """
    levels = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    try:
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*The axis name: .* will not be used", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
