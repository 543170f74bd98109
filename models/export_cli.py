"""``avatar export``: both networks as ONNX files in one folder, plus TensorRT engines with ``--trt``.

A plugin command of the models package (entry point ``avatar.commands``):
exporting reads PyTorch checkpoints, which the serving engine never does.
Everything is written into a scratch folder beside the output and moved in
once complete, so a failure (a missing extra, a bad checkpoint, Ctrl-C) leaves
no half-written deployment behind.
"""

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from engine.backends.selection import tensorrt_unavailable_reason
from engine.backends.tensorrt_build import CAUSE_SPEC, GENERATOR_SPEC, TENSORRT_REQUIREMENT
from engine.cli.options import add_weight_options, announce_weights, model_sources
from models.export import MANIFEST_NAME, add_tensorrt_engines, export_networks


def add_export_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="write the networks as ONNX files (and TensorRT engines with --trt) for deployment",
        description="Write generator.onnx (dynamic batch) and cause_step.onnx (the streaming CAUSE step, its "
        f"state as inputs and outputs) with a {MANIFEST_NAME} (files, SHA-256, configs, torch version). "
        "With --trt, also build TensorRT engines for this machine's NVIDIA GPU (generator batch 1..64, "
        "CAUSE batch 1..64 and 1..16 hops per step), reusing engines already built for this GPU, TensorRT "
        "version and ONNX file.",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder to write into (created if missing)")
    parser.add_argument(
        "--trt", action="store_true", help="also build TensorRT engines (needs an NVIDIA GPU and the gpu extra)"
    )
    parser.add_argument(
        "--precision",
        choices=("f16", "f32"),
        default=GENERATOR_SPEC.precision,
        help=f"generator engine arithmetic with --trt; CAUSE is always {CAUSE_SPEC.precision} "
        f"(default: {GENERATOR_SPEC.precision})",
    )
    add_weight_options(parser.add_argument_group("models"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    generator, cause = model_sources(args)
    unavailable = tensorrt_unavailable_reason() if args.trt else None
    if unavailable is not None:  # said first: the ONNX export that follows takes a while
        print(f"avatar export: {TENSORRT_REQUIREMENT} ({unavailable}); writing the ONNX files only", file=sys.stderr)
    announce_weights(generator, cause)
    with _staged(args.output) as staging:
        manifest = export_networks(generator, cause, staging)
        if args.trt and unavailable is None:
            specs = {"generator": dataclasses.replace(GENERATOR_SPEC, precision=args.precision), "cause": CAUSE_SPEC}
            manifest = add_tensorrt_engines(
                staging, manifest, specs=specs, progress=lambda line: print(line, file=sys.stderr)
            )
    for entry in manifest["networks"].values():
        print(f"wrote {args.output / entry['file']} ({entry['bytes'] / 1e6:.1f} MB)")
    for entry in (manifest.get("tensorrt") or {}).get("engines", {}).values():
        print(f"wrote {args.output / entry['file']} ({entry['bytes'] / 1e6:.1f} MB)")
    print(f"wrote {args.output / MANIFEST_NAME}")
    if unavailable is not None:
        print(f"avatar export: error: no TensorRT engines built: {TENSORRT_REQUIREMENT}", file=sys.stderr)
        return 2
    return 0


@contextlib.contextmanager
def _staged(output: Path) -> Iterator[Path]:
    """A scratch folder beside ``output``; its files move into ``output`` only if the block completes."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / f".{output.name}.partial-{os.getpid()}"
    staging.mkdir()
    try:
        yield staging
        output.mkdir(exist_ok=True)
        for path in sorted(staging.iterdir()):
            os.replace(path, output / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
