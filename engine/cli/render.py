"""``avatar render``: an audio file spoken by a portrait, written to an mp4."""

import argparse
import sys
from pathlib import Path

from engine.audio import SAMPLE_SPEECH
from engine.avatar import load_avatar, parse_face_box
from engine.cli.options import (
    add_avatar_options,
    add_liveness_options,
    add_model_options,
    build_backends,
    liveness_settings,
    model_sources,
)
from engine.output.offline import render_file
from engine.pipeline.renderer_choice import build_face_renderer


def add_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="render an audio file spoken by a portrait to an mp4",
        description="Animate a portrait with speech and write an H.264 mp4 (25 fps by default) with "
        "the audio muxed in. Runs the same streaming chain as a live session, 20 ms at a time.",
    )
    parser.add_argument(
        "--audio",
        type=Path,
        default=SAMPLE_SPEECH,
        help="speech to animate: wav, mp3, ogg, m4a, ... any rate 8-48 kHz, mono or stereo "
        "(default: a built-in English sample)",
    )
    add_avatar_options(parser)
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("out/avatar.mp4"), help="mp4 path (default: out/avatar.mp4)"
    )
    parser.add_argument("--fps", type=int, default=25, help="video frame rate, 1..100 (default: 25)")
    parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    add_liveness_options(parser)
    add_model_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    liveness = liveness_settings(args)
    avatar = load_avatar(args.avatar, parse_face_box(args.face_box) if args.face_box else None, args.framing)
    generator, au_backend = build_backends(args, serving=False)  # one frame at a time: every core on it
    faces, choice = build_face_renderer(args.renderer, model_sources(args)[0], avatar, lambda: generator)
    print(choice.describe(), file=sys.stderr)
    print(liveness.describe(), file=sys.stderr)
    report = render_file(
        args.audio,
        args.output,
        avatar=avatar,
        faces=faces,
        au_backend=au_backend,
        fps=args.fps,
        progress=not args.no_progress,
        liveness=liveness,
    )
    runtime = f", {generator.name}" if choice.name == "ganimation" else ""
    print(
        f"wrote {report.output}: {report.frames} frames at {report.fps} fps, {report.audio_seconds:.2f} s of audio, "
        f"rendered in {report.wall_seconds:.1f} s ({report.realtime_factor:.2f}x real time, "
        f"{report.render_ms_mean:.1f} ms per frame, {choice.name}{runtime})"
    )
    return 0
