"""The GANimation generator as one self-contained ONNX file, for the CPU runtimes and TensorRT."""

from __future__ import annotations

import os

import torch

from engine.backends.generator_card import CARD_METADATA_KEY, GeneratorCard
from models.ganimation.io import StrPath
from models.ganimation.net import IMAGE_CHANNELS, Generator
from models.onnx_export import quiet_onnx_export

ONNX_IMAGE_SIZE = 128
"""Height and width of the exported graph's input, the size both upstream codebases train at."""


def export_generator_onnx(
    generator: Generator, path: StrPath, *, opset: int = 17, card: GeneratorCard | None = None
) -> None:
    """Export ``generator`` to one self-contained ONNX file for the CPU runtime and TensorRT.

    card: recorded as the metadata property ``CARD_METADATA_KEY`` (what the
    serving engine reads to pick a renderer, without torch).

    Inputs: ``images`` (B, 3, 128, 128) float32 in [-1, 1] and ``aus``
    (B, c_dim) float32 in [0, 1]; outputs ``color`` (B, 3, 128, 128) in
    [-1, 1] and ``mask`` (B, 1, 128, 128) in [0, 1]; B is dynamic.

    Uses the torch.export-based exporter (``dynamo=True``): in torch 2.13 it is
    the default and gives a clean graph (Conv, InstanceNormalization, Relu, ...,
    no shape arithmetic), while the TorchScript exporter (``dynamo=False``)
    also works but warns that it will be removed and traces with warnings. The
    new exporter's lowest native opset is 18; it converts down to 17 with
    ONNX's version converter, which handles every op of this network. The
    example batch is 2 because torch.export specialises a dimension whose
    example size is 1. Weights are embedded (``external_data=False``): the
    reference width is ~34 MB, far from ONNX's 2 GB limit. What is exported is
    :class:`ServingGraph`: the same function, a cheaper graph.
    """
    c_dim = generator.config.c_dim
    serving = ServingGraph(generator, ONNX_IMAGE_SIZE).eval()
    batch = torch.export.Dim("batch")
    example = (
        torch.zeros(2, IMAGE_CHANNELS, ONNX_IMAGE_SIZE, ONNX_IMAGE_SIZE),
        torch.zeros(2, c_dim),
    )
    with quiet_onnx_export():
        torch.onnx.export(
            serving,
            example,
            os.fspath(path),
            input_names=["images", "aus"],
            output_names=["color", "mask"],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes={"images": {0: batch}, "aus": {0: batch}},
            external_data=False,
            verbose=False,
        )
    if card is not None:
        write_onnx_card(path, card)


class ServingGraph(torch.nn.Module):
    """A generator as the runtimes get it: the same function, in a graph that costs a CPU less.

    Two rewrites, each the same arithmetic up to the order of float additions:

    - **The AU planes' share of the first 7x7 convolution.** Each AU plane is
      constant, so its convolution depends only on which of the kernel's taps
      fall inside the image: 7 cases per axis (3 rows or columns at each border,
      and the interior). Per AU that is a (C, 7, 7) table, computed once here
      by convolving a 7x7 plane of ones; per frame the AU vector mixes the
      tables (one matrix product) and every pixel takes its row's and column's
      case (two gathers). The convolution itself reads the 3 image channels
      instead of 3 + 17.
    - **The two heads as one convolution.** Colour (3 channels, tanh) and mask
      (1 channel, sigmoid) become one 4-channel convolution and one tanh, the
      mask's weights halved: sigmoid(x) = (tanh(x / 2) + 1) / 2. A 7x7
      convolution to 1 or 3 channels costs a CPU runtime nearly as much as one
      to 4 (reading the features dominates), and a tanh fuses into it.

    Per-layer profile and timings: bench/README.md, "CPU serving setup". Export only;
    checkpoints keep the reference's layers.
    """

    au_tables: torch.Tensor
    """(c_dim, C * 7 * 7): each AU plane's response, per case of rows x columns."""
    cases: torch.Tensor
    """(image_size,) int: the case of each row (and column) index, 0..6."""

    def __init__(self, generator: Generator, image_size: int) -> None:
        """image_size: the height and width of the images this graph will be given (the first convolution's
        response to the AU planes depends on it)."""
        super().__init__()
        first = generator.main[0]
        color, mask = generator.img_reg[0], generator.attetion_reg[0]
        assert isinstance(first, torch.nn.Conv2d) and isinstance(color, torch.nn.Conv2d)
        assert isinstance(mask, torch.nn.Conv2d)
        kernel = first.kernel_size[0]
        for conv in (first, color, mask):  # the reference's 7x7 "same" convolutions, as net.py builds them
            assert conv.kernel_size == (kernel, kernel) and conv.padding == (kernel // 2, kernel // 2)
        self.rest = generator.main[1:]
        self.image_conv = torch.nn.Conv2d(IMAGE_CHANNELS, first.out_channels, kernel, padding=kernel // 2, bias=False)
        self.heads = torch.nn.Conv2d(color.in_channels, IMAGE_CHANNELS + 1, kernel, padding=kernel // 2, bias=False)
        c_dim = first.in_channels - IMAGE_CHANNELS
        with torch.no_grad():
            self.image_conv.weight.copy_(first.weight[:, :IMAGE_CHANNELS])
            self.heads.weight.copy_(torch.cat([color.weight, mask.weight / 2]))
            # One AU's plane of ones alone, convolved: its response for every case of rows x columns.
            ones = torch.eye(c_dim)[:, :, None, None].expand(-1, -1, kernel, kernel)
            tables = torch.nn.functional.conv2d(ones, first.weight[:, IMAGE_CHANNELS:], padding=kernel // 2)
        self.register_buffer("au_tables", tables.reshape(c_dim, -1).contiguous())
        self.table_shape = (first.out_channels, kernel, kernel)
        half = kernel // 2
        positions = torch.arange(image_size)
        cases = torch.where(
            positions < half,
            positions,
            torch.where(positions < image_size - half, half, positions - image_size + kernel),
        )
        self.register_buffer("cases", cases)

    def forward(self, images: torch.Tensor, aus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's ``(color, mask)`` (:meth:`Generator.forward`)."""
        au_share = (aus @ self.au_tables).reshape(-1, *self.table_shape)
        au_share = au_share.index_select(2, self.cases).index_select(3, self.cases)
        features = self.rest(self.image_conv(images) + au_share)
        color, half = torch.tanh(self.heads(features)).split([IMAGE_CHANNELS, 1], dim=1)
        return color, half * 0.5 + 0.5


def write_onnx_card(path: StrPath, card: GeneratorCard) -> None:
    """Set (or replace) the card in an ONNX file's metadata, in place; the graph is untouched."""
    import onnx

    model = onnx.load(os.fspath(path))
    kept = [prop for prop in model.metadata_props if prop.key != CARD_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=CARD_METADATA_KEY, value=card.to_json())
    onnx.save(model, os.fspath(path))
