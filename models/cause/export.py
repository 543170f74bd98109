"""CAUSE's streaming step as an ONNX graph: the file every runtime of the engine runs."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from engine.audio import HOP_RATE_HZ
from models.cause.io import CHECKPOINT_FORMAT
from models.cause.net import CauseNet, fold_weight_norm
from models.onnx_export import quiet_onnx_export

ONNX_OPSET = 18


class _StepModule(nn.Module):
    """``CauseNet.step`` as a module's ``forward``, for export."""

    def __init__(self, net: CauseNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, mel: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        return self.net.step(mel, *state)


def export_step_onnx(net: CauseNet, path: str | Path) -> Path:
    """Export ``net.step`` to an ONNX file with plain (weight-norm-folded) weights.

    Uses the ``torch.export``-based exporter (``torch.onnx.export(...,
    dynamo=True)``, opset ``ONNX_OPSET``, needs ``onnxscript``), the default
    since torch 2.9; the TorchScript exporter (``dynamo=False``) still works
    in torch 2.13 but warns that it is deprecated. Graph:

    - inputs ``mel (batch, hops, n_mels)`` float32 and ``state_0`` ..
      ``state_{n-1}`` ``(batch, context_i, channels)``, ``context_i = (kernel_size - 1) *
      dilations[i]``;
    - outputs ``au (batch, hops, n_aus)`` (raw causal outputs, not delayed:
      the caller drops the first ``lookahead_hops`` of a stream) and
      ``new_state_0`` .. ``new_state_{n-1}``;
    - ``batch`` and ``hops`` are dynamic (``hops >= 1``); the state starts as
      zeros of the shapes above (``CauseNet.initial_state``);
    - metadata ``lookahead_hops``, ``hop_rate_hz``, ``n_aus``, ``format``.

    The input normalisation is baked in. Returns the path written.
    """
    path = Path(path)
    folded = fold_weight_norm(net).cpu()
    n_state = len(folded.blocks)
    example_batch, example_hops = 2, 3  # > 1 so that neither axis is specialised to a constant
    mel = torch.zeros((example_batch, example_hops, folded.config.n_mels))
    state = folded.initial_state(example_batch)
    batch = torch.export.Dim("batch", min=1)
    hops = torch.export.Dim("hops", min=1)
    dynamic_shapes = ({0: batch, 1: hops}, tuple({0: batch} for _ in range(n_state)))  # forward(mel, *state)
    with torch.no_grad(), quiet_onnx_export():
        program = torch.onnx.export(
            _StepModule(folded).eval(),
            (mel, *state),
            dynamo=True,
            opset_version=ONNX_OPSET,
            input_names=["mel", *(f"state_{i}" for i in range(n_state))],
            output_names=["au", *(f"new_state_{i}" for i in range(n_state))],
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
    assert program is not None  # dynamo export returns the program
    program.model.metadata_props.update(
        {
            "format": CHECKPOINT_FORMAT,
            "lookahead_hops": str(folded.config.lookahead_hops),
            "hop_rate_hz": str(HOP_RATE_HZ),
            "n_aus": str(folded.config.n_aus),
        }
    )
    program.save(path, external_data=False)
    return path
