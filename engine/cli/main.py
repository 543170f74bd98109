"""``avatar``: serve, render, inspect and export the speech-driven avatar (and train it, with the extra).

Each subcommand lives in its own module with an ``add_parser`` and a ``run``;
this module only wires them together and turns the engine's own errors
(``engine.errors.EngineError``: bad input files, flags that cannot work, a
port in use, missing extras) into one clear line and exit status 2. Anything
else is a bug and keeps its traceback.
"""

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from engine.cli import info, live, publish, quantize, render, serve
from engine.errors import EngineError

SUBCOMMANDS = {
    "render": render,
    "info": info,
    "serve": serve,
    "live": live,
    "publish": publish,
    "quantize": quantize,
}
PLUGIN_GROUP = "avatar.commands"
"""Entry points adding subcommands from outside engine/ (the training commands): each is
``add_parser(commands, name)``, so the engine never imports training code itself."""

EPILOG = """\
examples:
  avatar render                          default avatar speaks the built-in sample to out/avatar.mp4
  avatar render --audio talk.wav --avatar me.jpg -o talk.mp4
  avatar render --avatar me.jpg --face-box 120,80,200,200   when no face is detected
  avatar info                            models, weights, latency and runtimes on this machine
  avatar live --camera /dev/video10      microphone in, the avatar as a virtual camera for video calls
  avatar publish --whip URL --token T    the avatar into a WebRTC room (Janus, LiveKit, ...) over WHIP
  avatar export -o deploy/ --trt         ONNX files, manifest and TensorRT engines for this GPU
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatar",
        description="Real-time speech-driven avatar engine: speech in, a talking portrait out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        module.add_parser(commands, name)
    for plugin in entry_points(group=PLUGIN_GROUP):
        plugin.load()(commands, plugin.name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except EngineError as exc:
        print(f"avatar {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
