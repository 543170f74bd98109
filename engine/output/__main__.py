"""``python -m engine.output``: speak a recording into avatar apps (VMC receivers, VTube Studio, Unreal).

    python -m engine.output speech.wav --vmc 127.0.0.1:39539 --vmc-shapes vrm1     # VSeeFace, Warudo, VNyan
    python -m engine.output speech.wav --vts ws://127.0.0.1:8001                    # VTube Studio
    python -m engine.output speech.wav --livelink 127.0.0.1:11111                   # Unreal Live Link

The audio is estimated with CAUSE (the trained default, or ``--cause``) and
sent in real time, one record per frame, to every receiver named. Exit
status: 0 done, 2 bad arguments or input, 1 a receiver refused (VTube Studio).
"""

import argparse
import asyncio
import sys
from pathlib import Path

import numpy as np

from engine.audio import AudioFileError, load_audio_file
from engine.backends.model_files import ModelSource, onnx_file, resolve_source
from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep
from engine.live.outputs import AUOutput
from engine.output.destinations import DEFAULT_PORTS, parse_destination
from engine.output.errors import OutputUnavailable
from engine.output.feed import feed
from engine.output.vmc import DEFAULT_SHAPE_SET, SHAPE_SETS
from engine.output.vtube_studio import VTubeStudioError
from engine.pipeline import Session

DEFAULT_TOKEN_PATH = Path.home() / ".config" / "avatar-engine" / "vtube-studio-token.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine.output",
        description="Animate avatar apps from a recording: VMC protocol (VSeeFace, Warudo, VNyan), VTube Studio's "
        "plugin API, or Unreal's Live Link (Live Link Face packets). The speech is sent in real time.",
    )
    parser.add_argument("audio", type=Path, help="speech to play (any file FFmpeg decodes, 8-48 kHz)")
    parser.add_argument(
        "--vmc", metavar="HOST[:PORT]", help=f"send VMC over OSC/UDP here (port default {DEFAULT_PORTS['vmc']})"
    )
    parser.add_argument(
        "--vmc-shapes",
        choices=SHAPE_SETS,
        default=DEFAULT_SHAPE_SET,
        help=f"VMC shape names: VRM 1.0 or 0.x presets, or the 52 ARKit names (default: {DEFAULT_SHAPE_SET})",
    )
    parser.add_argument(
        "--livelink",
        metavar="HOST[:PORT]",
        help=f"send Live Link Face packets over UDP here (port default {DEFAULT_PORTS['livelink']})",
    )
    parser.add_argument("--livelink-subject", default="Avatar", help="Live Link subject name (default: Avatar)")
    parser.add_argument("--vts", metavar="ws://HOST[:PORT]", help="drive VTube Studio through its plugin API here")
    parser.add_argument(
        "--vts-token",
        type=Path,
        default=DEFAULT_TOKEN_PATH,
        help=f"where VTube Studio's plugin token is kept (default: {DEFAULT_TOKEN_PATH})",
    )
    parser.add_argument("--fps", type=int, default=25, help="records per second, 1..100 (default: 25)")
    parser.add_argument(
        "--cause", type=Path, default=None, help="CAUSE weights (.pt or .onnx; default: the trained ones)"
    )
    return parser


async def _run(args: argparse.Namespace, samples: np.ndarray, cause: ModelSource) -> int:
    au_backend = OnnxRuntimeAUStep(onnx_file(cause), threads=1)
    outputs: list[AUOutput] = []
    try:
        if args.vmc:
            from engine.output.vmc import VmcOutput

            outputs.append(VmcOutput(host=args.vmc.host, port=args.vmc.port, shape_set=args.vmc_shapes))
        if args.livelink:
            from engine.output.livelink import LiveLinkOutput

            link = args.livelink
            outputs.append(LiveLinkOutput(host=link.host, port=link.port, fps=args.fps, subject=args.livelink_subject))
        if args.vts:
            from engine.output.vtube_studio import VTubeStudioOutput

            url = f"ws://{args.vts.host}:{args.vts.port}"
            outputs.append(await VTubeStudioOutput.connect(url, token_path=args.vts_token))
        frames = await feed(Session(au_backend, fps=args.fps), samples, outputs)
    finally:
        for output in outputs:
            await output.close()
    print(f"sent {frames} frames to {', '.join(o.name for o in outputs)}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.vmc or args.livelink or args.vts):
        parser.error("name at least one receiver: --vmc, --vts or --livelink")
    if not 1 <= args.fps <= 100:
        parser.error(f"--fps must be in 1..100, got {args.fps}")
    try:
        for kind, text in (("vmc", args.vmc), ("livelink", args.livelink), ("vts", args.vts)):
            if text:
                setattr(args, kind, parse_destination(text.removeprefix("ws://"), kind))
    except ValueError as exc:
        parser.error(str(exc))
    try:
        samples = load_audio_file(args.audio)
        cause = resolve_source("cause", args.cause)
    except (AudioFileError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, samples, cause))
    except (OutputUnavailable, VTubeStudioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
