"""What ``avatar live`` and ``avatar publish`` share: the speech input (microphone, file or stdin PCM), loading
the live parts, feeding one local speaker's session and printing its figures."""

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from engine.audio import AudioFileError
from engine.cli.options import announce_weights, model_sources, runtime_options
from engine.errors import UsageError
from engine.live import LiveSession
from engine.live.build import BuiltParts, PartsSettings, build_parts
from engine.live.sources import (
    AudioChunk,
    AudioChunks,
    check_pcm_format,
    describe_devices,
    file_chunks,
    find_device,
    import_sounddevice,
    microphone_chunks,
    stdin_chunks,
)
from engine.output.forward import Forwarder, ForwardSettings

MICROPHONE = "mic"
STDIN = "-"


def add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speech input")
    group.add_argument(
        "--input",
        default=MICROPHONE,
        metavar="SOURCE",
        help=f"'{MICROPHONE}' (default: a microphone, needs the mic extra), an audio file (wav, mp3, ... played "
        f"at real-time pace), or '{STDIN}' for raw s16le PCM on stdin (see --input-rate, --input-channels)",
    )
    group.add_argument(
        "--input-device",
        metavar="NAME|INDEX",
        help="the microphone: its index or part of its name, as --list-devices shows (default: the system's)",
    )
    group.add_argument(
        "--input-rate", type=int, default=16_000, metavar="HZ", help="sample rate of stdin PCM, Hz (default: 16000)"
    )
    group.add_argument("--input-channels", type=int, default=1, help="channels of stdin PCM, interleaved (default: 1)")
    group.add_argument("--list-devices", action="store_true", help="list the audio input and output devices, then exit")


def add_picture_options(group: argparse._ActionsContainer, picture: str) -> None:
    """--fps, --size and --stats-interval, worded for ``picture`` (what the frames go to: "camera", "video")."""
    group.add_argument("--fps", type=int, default=25, help=f"{picture} frame rate, 1..60 (default: 25)")
    group.add_argument(
        "--size", type=int, default=512, metavar="PX", help=f"the {picture}'s longer side, pixels, even (default: 512)"
    )
    group.add_argument(
        "--stats-interval",
        type=float,
        default=5.0,
        metavar="S",
        help="print frame rate and latency every S seconds, 0 for never (default: 5)",
    )


def check_picture_options(args: argparse.Namespace) -> None:
    """Fail before anything loads on a frame rate, size or stats interval out of range."""
    if not 1 <= args.fps <= 60:
        raise UsageError(f"--fps must be in 1..60, got {args.fps}")
    if args.size < 2 or args.size % 2:
        raise UsageError(f"--size must be an even number of pixels >= 2, got {args.size}")
    if args.stats_interval < 0:
        raise UsageError(f"--stats-interval must be >= 0, got {args.stats_interval}")


def list_devices_requested(args: argparse.Namespace) -> bool:
    """Print the audio devices and return True when ``--list-devices`` was given."""
    if args.list_devices:
        print(describe_devices())
    return bool(args.list_devices)


def check_input(args: argparse.Namespace) -> None:
    """Fail before anything loads: a missing file, bad PCM settings, no such microphone."""
    if args.input == MICROPHONE:
        import_sounddevice()
        find_device(args.input_device, kind="input")
    elif args.input == STDIN:
        check_pcm_format(args.input_rate, args.input_channels)
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("--input - reads raw PCM from stdin, but stdin is a terminal: pipe audio in")
    elif not Path(args.input).is_file():
        raise AudioFileError(f"no such audio file: {args.input}")


def open_input(args: argparse.Namespace) -> AudioChunks:
    """The chunks ``--input`` names (call from the event loop)."""
    if args.input == MICROPHONE:
        return microphone_chunks(args.input_device)
    if args.input == STDIN:
        return stdin_chunks(rate_hz=args.input_rate, channels=args.input_channels)
    return file_chunks(Path(args.input))


def load_parts(args: argparse.Namespace) -> BuiltParts:
    """The live parts for one local speaker, from the avatar and model options (weights and runtime said on
    stderr; the networks load here, seconds)."""
    announce_weights(*model_sources(args))
    backend, options = runtime_options(args, serving=False)
    return build_parts(
        PartsSettings(
            avatar_path=args.avatar,
            face_box=args.face_box,
            backend=backend,
            precision=options.precision,
            threads=options.threads,
            streams=options.streams,
            serving=False,
            generator_path=Path(args.generator) if args.generator else None,
            cause_path=Path(args.cause) if args.cause else None,
        )
    )


async def feed(
    session: LiveSession, chunks: AudioChunks, on_chunk: Callable[[AudioChunk, int], None] | None = None
) -> None:
    """Push every chunk into ``session`` as it comes; ``on_chunk(chunk, start_sample)`` after each (the voice).
    Returns when the input ends (never, for a microphone)."""
    async for chunk in chunks:
        start = await session.push_audio(
            chunk.samples, rate_hz=chunk.rate_hz, channels=chunk.channels, arrival_s=chunk.arrival_s
        )
        if on_chunk is not None:
            on_chunk(chunk, start)


async def print_stats(session: LiveSession, interval_s: float, where: str) -> None:
    """Every ``interval_s``, one line: frames per second and latency from audio arrival to ``where``."""
    while True:
        await asyncio.sleep(interval_s)
        print(stats_line(session.stats_report(), where), file=sys.stderr, flush=True)


def stats_line(report: dict, where: str) -> str:
    """A session stats report (``LiveSession.stats_report``) as one line."""
    latency = report["latency_ms"]
    line = f"{report['fps']:.1f} fps ({report['fresh_fps']:.1f} rendered), {report['frames_skipped']} skipped"
    if latency["p50"] is not None:
        line += f"; audio arrival -> {where}: p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms"
    return line


async def forward_to_apps(session: LiveSession, settings: ForwardSettings, fps: int) -> None:
    """Send every frame of the speaker's session to every avatar app the flags name (``--vmc``, ``--vts``,
    ``--livelink``); nothing when none. OutputUnavailable (one line) when an app cannot be opened."""
    wanted = settings.every_destination()
    if not wanted:
        return
    forwards = Forwarder(settings).session(session.session_id, fps=fps, on_stopped=_report_stopped)
    await forwards.choose(wanted)
    session.add_au_output(forwards)
    print(f"forwarding to avatar apps: {settings.destinations.describe()}", file=sys.stderr, flush=True)


async def _report_stopped(kind: str, destination: str, reason: str) -> None:
    print(f"stopped forwarding to {kind} {destination}: {reason} (the rest goes on)", file=sys.stderr, flush=True)
