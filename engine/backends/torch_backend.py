"""The PyTorch reference: the networks exactly as trained, eager mode, on the CPU."""

from typing import Any

import numpy as np

from engine.backends.base import AUStepBackend, GeneratorBackend
from engine.backends.onnx_io import generator_feed
from engine.errors import require


class TorchGenerator(GeneratorBackend):
    name = "torch"

    def __init__(self, generator: Any, *, threads: int) -> None:
        self._torch = require("torch", extra="train", purpose="the torch backend")
        self._torch.set_num_threads(threads)
        self._net = generator.eval()

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        feed = generator_feed(images, aus)
        with torch.inference_mode():
            color, mask = self._net(torch.from_numpy(feed["images"]), torch.from_numpy(feed["aus"]))
        return color.numpy(), mask.numpy()


class TorchAUStep(AUStepBackend):
    name = "torch"

    def __init__(self, cause_net: Any, *, threads: int) -> None:
        self._torch = require("torch", extra="train", purpose="the torch backend")
        self._torch.set_num_threads(threads)
        self._net = cause_net.eval()
        self.lookahead_hops = int(cause_net.config.lookahead_hops)

    def initial_state(self, batch_size: int) -> list[np.ndarray]:
        return [s.numpy() for s in self._net.initial_state(batch_size)]

    def step(self, mel: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        torch = self._torch
        with torch.inference_mode():
            au, *new_state = self._net.step(
                torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)),
                *(torch.from_numpy(s) for s in state),
            )
        return au.numpy(), [s.numpy() for s in new_state]
