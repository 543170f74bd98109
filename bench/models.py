"""The networks a benchmark runs: the server's defaults, or a random generator of a chosen width.

Timing does not depend on the weights, so a width other than the default's is
a randomly initialised (seeded) generator of that ``conv_dim``, saved as a
checkpoint that every backend loads the way it loads real weights (torch
directly, the ONNX runtimes through the cached export).
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

from engine.backends import (
    BACKENDS,
    DEFAULT_BACKEND,
    AUStepBackend,
    BackendOptions,
    GeneratorBackend,
    create_backends,
)
from engine.backends.model_files import UNTRAINED_GENERATOR_WIDTH, ModelSource, resolve_source
from engine.backends.selection import default_options

SEED = 0


@dataclass(frozen=True)
class ModelSetup:
    """Which runtime runs which networks: recorded in every result's machine description.

    backend: a name from ``engine.backends.BACKENDS``.
    precision: generator arithmetic (f32, bf16, int8).
    threads: intra-op threads per generator run.
    streams: generator runs at once.
    generator_width: the generator's conv_dim (None: could not be read).
    """

    backend: str
    precision: str
    threads: int
    streams: int
    generator_width: int | None

    def as_dict(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "precision": self.precision,
            "threads": self.threads,
            "streams": self.streams,
            "generator_width": self.generator_width,
        }


def model_setup(
    backend: str,
    generator: ModelSource,
    *,
    precision: str | None,
    threads: int | None,
    streams: int | None,
    serving: bool = True,
) -> ModelSetup:
    """The setup ``avatar serve`` would run with these flags (None: the backend's default, as the server);
    ``serving=False``: the defaults of ``avatar live`` and ``avatar publish`` (one stream of frames)."""
    options = default_options(
        backend, threads=threads, streams=streams, precision=precision, serving=serving, generator=generator
    )
    return _setup(backend, generator, options)


def _setup(backend: str, generator: ModelSource, options: BackendOptions) -> ModelSetup:
    return ModelSetup(backend, options.precision, options.threads, options.streams, generator_width(generator))


def generator_source(width: int | None, folder: Path) -> ModelSource:
    """``None``: the generator ``avatar serve`` loads by default; a width: a random one, saved in ``folder``."""
    if width is None:
        return resolve_source("generator", None)
    import torch

    from models.ganimation.io import save_generator
    from models.ganimation.net import Generator

    path = folder / f"generator-w{width}-seed{SEED}.pth"
    if not path.is_file():
        torch.manual_seed(SEED)
        net = Generator(conv_dim=width).eval()
        folder.mkdir(parents=True, exist_ok=True)
        save_generator(net, net.config, path)
    return ModelSource("generator", path)


def generator_width(source: ModelSource) -> int | None:
    """The conv_dim of ``source``'s generator, from its checkpoint or its ONNX graph."""
    if source.path is None:
        return UNTRAINED_GENERATOR_WIDTH
    checkpoint = source.checkpoint if source.is_onnx else source.path
    if checkpoint is not None:
        from models.ganimation.io import load_generator

        return load_generator(checkpoint)[1].conv_dim
    import onnx

    graph = onnx.load(str(source.path)).graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    first_conv = next(node for node in graph.node if node.op_type == "Conv")
    return int(weights[first_conv.input[1]].dims[0])


def build_backends(
    backend: str,
    generator: ModelSource,
    *,
    precision: str | None = None,
    threads: int | None = None,
    streams: int | None = None,
) -> tuple[GeneratorBackend, AUStepBackend, ModelSetup]:
    """The generator and CAUSE runtimes (CAUSE: the default weights), and their setup for the record.

    int8 on OpenVINO quantizes the generator first when it has not been
    (``avatar quantize``: NNCF, the quantize extra).
    """
    options = default_options(backend, threads=threads, streams=streams, precision=precision, generator=generator)
    if options.precision == "int8" and not generator.is_openvino_ir:
        _ensure_int8(generator)
    gen, au = create_backends(backend, generator, resolve_source("cause", None), options)
    return gen, au, _setup(backend, generator, options)


def _ensure_int8(generator: ModelSource) -> None:
    """Build the int8 IR ``--precision int8`` loads for ``generator``, unless there is one already."""
    from bench.speech import sample_speech
    from engine.avatar import load_default_avatar
    from engine.backends.model_files import onnx_file
    from engine.backends.openvino_int8 import find_int8_ir, int8_ir_path
    from engine.cli.quantize import build_int8_generator

    onnx = onnx_file(generator)
    if find_int8_ir(onnx) is None:
        target = int8_ir_path(onnx)
        _, report = build_int8_generator(onnx, load_default_avatar().crop, sample_speech(), target)
        print(f"built the int8 generator {target.name}: {report['heldout_speech']['psnr_db']:.1f} dB held-out")


def add_runtime_arguments(group: argparse._ArgumentGroup) -> None:
    """``--precision``, ``--threads``, ``--streams``: the generator runtime's settings, as ``avatar serve``'s."""
    group.add_argument(
        "--precision",
        choices=("f32", "bf16", "int8"),
        default=None,
        help="generator arithmetic (default: the server's, bf16 on openvino where the CPU has it); int8: openvino "
        "with the generator quantized by NNCF (built first if needed: the quantize extra)",
    )
    group.add_argument(
        "--threads", type=int, default=None, help="threads per generator run (default: the server's for the backend)"
    )
    group.add_argument(
        "--streams",
        type=int,
        default=None,
        help="generator runs at once, openvino only (default: the server's for the backend)",
    )


def add_model_arguments(parser: argparse.ArgumentParser, *, default_width: int | None) -> None:
    """``--backend``, ``--precision``, ``--threads``, ``--streams``, ``--width``: one runtime and generator."""
    group = parser.add_argument_group("models and runtime")
    group.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default=DEFAULT_BACKEND,
        help=f"runtime for the networks, as avatar serve --backend (default: {DEFAULT_BACKEND}, the server's on CPU)",
    )
    add_runtime_arguments(group)
    group.add_argument(
        "--width",
        type=int,
        default=default_width,
        help="generator conv_dim: a random generator of this width; omit for the server's default generator "
        f"(default: {default_width or 'the server default'})",
    )
