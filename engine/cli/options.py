"""Options shared by the subcommands that run the networks, and the loud untrained warning."""

import argparse
import sys
from pathlib import Path

from engine.backends import BACKENDS, DEFAULT_BACKEND, AUStepBackend, BackendOptions, GeneratorBackend, create_backends
from engine.backends.model_files import ModelSource, resolve_source
from engine.backends.selection import AUTO, default_precision, select_backend

UNTRAINED_BANNER = """\
************************************************************************
*  WARNING: UNTRAINED WEIGHTS                                          *
*  No trained {what} weights were found, so random (seeded) weights    *
*  are used. The pipeline runs end to end, but the face will NOT move  *
*  with the speech and may look distorted. Give trained weights with   *
*  --generator / --cause, or train them (README.md, "Weights").      *
************************************************************************"""


def add_avatar_options(parser: argparse.ArgumentParser) -> None:
    """``--avatar`` and ``--face-box``: which portrait, for every subcommand that animates one."""
    parser.add_argument(
        "--avatar",
        type=Path,
        default=None,
        help="portrait image (PNG/JPEG, any size); default: the NASA astronaut portrait (public domain)",
    )
    parser.add_argument(
        "--face-box",
        metavar="X,Y,W,H",
        default=None,
        help="face rectangle in portrait pixels, to use when face detection fails or picks the wrong face",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models and runtime")
    group.add_argument(
        "--backend",
        choices=[AUTO, *sorted(BACKENDS)],
        default=AUTO,
        help=f"runtime for both networks; {AUTO} picks tensorrt where a CUDA GPU and the gpu extra are "
        f"present, else {DEFAULT_BACKEND} (the fastest measured on CPU) (default: {AUTO})",
    )
    group.add_argument(
        "--precision",
        choices=("f32", "bf16", "f16"),
        default=None,
        help="generator arithmetic; bf16 needs --backend openvino and a CPU with bfloat16, f16 needs tensorrt "
        "(default: f16 on tensorrt, f32 elsewhere)",
    )
    group.add_argument("--threads", type=int, default=2, help="CPU threads per network (default: 2)")
    add_weight_options(group)


def add_weight_options(group: argparse._ArgumentGroup) -> None:
    """``--generator`` and ``--cause``: which weights, for every subcommand that loads the networks."""
    group.add_argument(
        "--generator",
        metavar="PATH",
        help="GANimation generator: .onnx, or a checkpoint in the reference (net_epoch_*_id_G.pth), "
        "ganimation_replicate (*_net_gen.pth) or our own format (default: models/weights/)",
    )
    group.add_argument(
        "--cause", metavar="PATH", help="CAUSE AU estimator: .onnx step graph or our checkpoint (default: models/weights/)"
    )


def model_sources(args: argparse.Namespace) -> tuple[ModelSource, ModelSource]:
    return resolve_source("generator", args.generator), resolve_source("cause", args.cause)


def announce_weights(*sources: ModelSource) -> None:
    """Say on stderr which weights run, and shout if any are untrained."""
    print("weights: " + "; ".join(source.describe() for source in sources), file=sys.stderr)
    untrained = [s.kind for s in sources if not s.trained]
    if untrained:
        print(UNTRAINED_BANNER.format(what=" and ".join(untrained).ljust(19)), file=sys.stderr)


def runtime_options(args: argparse.Namespace) -> tuple[str, BackendOptions]:
    """The backend ``--backend`` resolves to (``auto`` decided and said on stderr) and its options."""
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    choice = select_backend(args.backend)
    print(choice.describe(), file=sys.stderr)
    return choice.name, BackendOptions(threads=args.threads, precision=args.precision or default_precision(choice.name))


def build_backends(args: argparse.Namespace) -> tuple[GeneratorBackend, AUStepBackend]:
    """The runtimes the options ask for, after announcing which weights they run."""
    generator, cause = model_sources(args)
    announce_weights(generator, cause)
    backend, options = runtime_options(args)
    return create_backends(backend, generator, cause, options)
