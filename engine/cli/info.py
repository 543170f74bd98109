"""``avatar info``: which weights, how big, how much latency, which runtimes work here."""

import argparse
import importlib.util

from engine.avatar import load_avatar, parse_face_box
from engine.backends import BACKENDS, DEFAULT_BACKEND
from engine.backends.generator_card import read_card
from engine.backends.model_files import load_torch_network
from engine.backends.selection import default_options, select_backend
from engine.backends.torch_support import torch_support
from engine.cli.options import add_avatar_options, add_model_options, model_sources
from engine.pipeline.renderer_choice import choose_renderer

RUNTIME_PACKAGES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt"}


def add_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="show models, weights, the renderer for a portrait, latency and available runtimes",
        description="Show which weights would be used and what the generator's file says about itself, which "
        "renderer would draw the portrait (--avatar, default the astronaut) and why, the networks' sizes and "
        "algorithmic latency, and which runtimes are installed.",
    )
    add_avatar_options(parser)
    add_model_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    generator, cause = model_sources(args)
    print("weights")
    for source in (generator, cause):
        print(f"  {source.describe()}")
    card = read_card(generator)
    print(f"  generator card: {card.describe() if card else 'none (the file does not say whose face it animates)'}")
    avatar = load_avatar(args.avatar, parse_face_box(args.face_box) if args.face_box else None, args.framing)
    height, width = avatar.portrait.shape[:2]
    print(f"portrait: {width}x{height} ({args.framing}), face box {avatar.face_box.width:g} px")
    print(choose_renderer(args.renderer, card, avatar).describe())
    print("runtimes")
    for name in BACKENDS:
        installed = importlib.util.find_spec(RUNTIME_PACKAGES[name]) is not None
        mark = " (default)" if name == DEFAULT_BACKEND else ""
        print(f"  {name}{mark}: {'installed' if installed else 'not installed'}")
    choice = select_backend(args.backend)
    serving = default_options(
        choice.name, threads=args.threads, streams=args.streams, precision=args.precision, generator=generator
    )
    print(f"serving here: {choice.describe()}; {serving.describe()}")
    if importlib.util.find_spec("torch") is None:
        print("networks: install the train extra (torch) to inspect checkpoints")
        return 0
    plugin = torch_support("describing the networks")
    for source in (generator, cause):
        if not source.is_onnx or source.checkpoint:
            print(plugin.describe(load_torch_network(source)))
    return 0
