"""Small randomly initialised networks and their runtimes, shared by the engine tests."""

from pathlib import Path

import numpy as np
import torch

from engine.backends.base import AUStepBackend
from engine.backends.model_files import export_onnx
from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep
from engine.backends.torch_backend import TorchAUStep
from models.cause.net import CauseConfig, CauseNet
from models.ganimation.net import Generator


def small_cause(lookahead_hops: int = 2, seed: int = 0) -> CauseNet:
    """A random CAUSE whose outputs swing with its input.

    Training starts the output bias near rest (``OUTPUT_BIAS_INIT``), where the
    sigmoid is flat; plumbing tests want a random network whose AUs visibly
    follow the audio, so its outputs are centred on the sigmoid's midpoint.
    """
    torch.manual_seed(seed)
    net = CauseNet(CauseConfig(lookahead_hops=lookahead_hops)).eval()
    with torch.no_grad():
        net.output_conv.bias.zero_()
    return net


def small_generator(width: int = 8, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(conv_dim=width, repeat_num=2).eval()


def au_step_backends(net: CauseNet, tmp: Path) -> dict[str, AUStepBackend]:
    """The same CAUSE weights in every CPU runtime."""
    onnx_path = tmp / "cause.onnx"
    export_onnx(net, "cause", onnx_path)
    return {
        "torch": TorchAUStep(net, threads=1),
        "onnxruntime": OnnxRuntimeAUStep(onnx_path, threads=1),
    }


def random_mel(n_hops: int, seed: int = 1) -> np.ndarray:
    """(n_hops, 80) log-mel-like values: smooth in time, in the range speech produces."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.5, (n_hops, 80)).astype(np.float32)
    return (np.cumsum(steps, axis=0) * 0.2 - 5.0).astype(np.float32)
