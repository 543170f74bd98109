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
    reference width is ~34 MB, far from ONNX's 2 GB limit.
    """
    c_dim = generator.config.c_dim
    batch = torch.export.Dim("batch")
    example = (
        torch.zeros(2, IMAGE_CHANNELS, ONNX_IMAGE_SIZE, ONNX_IMAGE_SIZE),
        torch.zeros(2, c_dim),
    )
    with quiet_onnx_export():
        torch.onnx.export(
            generator,
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


def write_onnx_card(path: StrPath, card: GeneratorCard) -> None:
    """Set (or replace) the card in an ONNX file's metadata, in place; the graph is untouched."""
    import onnx

    model = onnx.load(os.fspath(path))
    kept = [prop for prop in model.metadata_props if prop.key != CARD_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=CARD_METADATA_KEY, value=card.to_json())
    onnx.save(model, os.fspath(path))
