"""``python -m avatar_client``: stream a WAV file or the microphone, print or save the AU stream as CSV.

    python -m avatar_client stream speech.wav --url ws://127.0.0.1:8080/ws --csv aus.csv
    python -m avatar_client stream speech.wav --blendshapes --realtime > aus.csv
    python -m avatar_client mic --seconds 10 --csv aus.csv
    python -m avatar_client stream speech.wav --realtime --forward vmc > /dev/null   # the server drives VSeeFace

CSV columns: ``frame, time_s`` (the instant the frame shows, seconds of
audio), the 17 AUs (``AU01`` ... ``AU45``, 0..5), with ``--blendshapes`` the
52 ARKit blendshapes (0..1). Rows go to stdout unless ``--csv`` is given; a
summary goes to stderr. Exit status: 0 done, 1 the server refused or failed,
2 bad arguments or input (unreadable WAV, no microphone support).
"""

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from websockets.exceptions import ConnectionClosed, WebSocketException

from avatar_client.client import DEFAULT_CHUNK_MS, DEFAULT_URL, AvatarClient, Record, ServerError, StreamResult, stream
from avatar_client.csv_writer import RecordCsv
from avatar_client.microphone import MicrophoneUnavailable, microphone_chunks
from avatar_client.wav import WavError, read_wav
from avatar_protocol import (
    BLENDSHAPE_ORDERS,
    CLOCK_RATE_HZ,
    FORWARD_KINDS,
    ForwardRequest,
    FrameRecord,
    Hello,
    JpegRecord,
    Ready,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m avatar_client", description="Stream speech to the avatar engine and get its AU stream back."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    file_cmd = commands.add_parser("stream", help="stream a PCM WAV file (8-48 kHz, any channels)")
    file_cmd.add_argument("wav", type=Path, help="the speech to send")
    file_cmd.add_argument(
        "--realtime", action="store_true", help="pace the audio in real time (default: as fast as possible)"
    )
    mic_cmd = commands.add_parser("mic", help="stream the default microphone (needs: pip install sounddevice)")
    mic_cmd.add_argument("--seconds", type=float, default=None, help="stop after this long (default: Ctrl-C)")
    mic_cmd.add_argument("--sample-rate", type=int, default=16000, help="capture rate, Hz (default: 16000)")
    for command in (file_cmd, mic_cmd):
        command.add_argument("--url", default=DEFAULT_URL, help=f"the engine's WebSocket URL (default: {DEFAULT_URL})")
        command.add_argument("--blendshapes", action="store_true", help="add the 52 ARKit blendshapes to each row")
        command.add_argument(
            "--blendshape-order",
            choices=BLENDSHAPE_ORDERS,
            default="unreal",
            help="column order of the blendshapes: Unreal's EARFaceBlendShape, or the Live Link Face app's CSV "
            "(default: unreal)",
        )
        command.add_argument("--csv", type=Path, default=None, help="write the rows to this file (default: stdout)")
        command.add_argument("--fps", type=int, default=None, help="frames per second (default: the server's)")
        command.add_argument(
            "--chunk-ms", type=int, default=DEFAULT_CHUNK_MS, help="audio per message, ms (default: 20)"
        )
        command.add_argument("--json", action="store_true", help="ask for JSON records instead of binary ones")
        command.add_argument("--jpeg-dir", type=Path, default=None, help="also ask for pictures and save them here")
        command.add_argument(
            "--forward",
            action="append",
            default=[],
            type=_forward_entry,
            metavar="KIND[=NAME]",
            help=f"ask the server to also send every frame to an avatar app it allows: {', '.join(FORWARD_KINDS)}, "
            "optionally the destination's name on the server (default: its first); repeatable",
        )
    return parser


def _forward_entry(text: str) -> tuple[str, str | None]:
    kind, _, name = text.partition("=")
    if kind not in FORWARD_KINDS:
        raise argparse.ArgumentTypeError(f"unknown kind {kind!r}; kinds: {', '.join(FORWARD_KINDS)}")
    return kind, name or None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _output(args.csv) as out:
            if args.command == "stream":
                result = asyncio.run(_stream_file(args, out))
            else:
                result = asyncio.run(_stream_microphone(args, out))
    except (WavError, MicrophoneUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ServerError as exc:
        print(f"error from the server: {exc}", file=sys.stderr)
        return 1
    except (OSError, WebSocketException) as exc:
        print(f"error: cannot talk to {args.url}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(_summary(result, args.csv), file=sys.stderr)
    return 0


def _hello_fields(args: argparse.Namespace) -> dict[str, Any]:
    outputs = ["aus"] + (["blendshapes"] if args.blendshapes else []) + (["frames"] if args.jpeg_dir else [])
    forward: ForwardRequest = dict(args.forward)
    return {
        "fps": args.fps,
        "outputs": tuple(outputs),
        "encoding": "json" if args.json else "binary",
        "blendshape_order": args.blendshape_order,
        "forward": forward,
    }


async def _stream_file(args: argparse.Namespace, out: TextIO) -> StreamResult:
    audio = read_wav(args.wav)
    hello = audio.hello(**_hello_fields(args))
    sink = _Sink(out, args.jpeg_dir)
    return await stream(
        args.url,
        audio.samples,
        hello,
        chunk_ms=args.chunk_ms,
        realtime=args.realtime,
        on_ready=sink.start,
        on_record=sink.write,
    )


async def _stream_microphone(args: argparse.Namespace, out: TextIO) -> StreamResult:
    hello = Hello(sample_rate_hz=args.sample_rate, **_hello_fields(args))
    chunks = microphone_chunks(args.sample_rate, chunk_ms=args.chunk_ms, seconds=args.seconds)
    first = await anext(chunks)  # fails helpfully before connecting when there is no microphone support
    started = time.perf_counter()
    async with await AvatarClient.connect(args.url, hello) as client:
        result = StreamResult(client.ready)
        sink = _Sink(out, args.jpeg_dir)
        sink.start(client.ready)

        async def send() -> None:
            await client.send_audio(first)
            try:
                async for chunk in chunks:
                    await client.send_audio(chunk)
            finally:
                await client.end()

        sender = asyncio.create_task(send())
        try:
            async for record in client:
                (result.frames if isinstance(record, FrameRecord) else result.pictures).append(record)  # type: ignore[arg-type]
                sink.write(record)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender
        result.end = client.end_message
        result.forwards_stopped = client.forwards_stopped
    result.wall_s = time.perf_counter() - started
    return result


class _Sink:
    """Writes frame records as CSV rows (after a header from the ready message) and pictures as files."""

    def __init__(self, out: TextIO, jpeg_dir: Path | None) -> None:
        self._out = out
        self._csv: RecordCsv | None = None
        self._jpeg_dir = jpeg_dir
        if jpeg_dir is not None:
            jpeg_dir.mkdir(parents=True, exist_ok=True)

    def start(self, ready: Ready) -> None:
        self._csv = RecordCsv(self._out, ready)

    def write(self, record: Record) -> None:
        if isinstance(record, JpegRecord):
            if self._jpeg_dir is not None:
                (self._jpeg_dir / f"frame_{record.index:06d}.jpg").write_bytes(record.jpeg)
            return
        if self._csv is None:
            raise RuntimeError("the CSV header needs the ready message: call start() first")
        self._csv.write(record)


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        yield out


def _summary(result: StreamResult, csv_path: Path | None) -> str:
    frames = len(result.frames)
    audio_s = result.end.audio_samples / CLOCK_RATE_HZ if result.end else 0.0
    latencies = np.array([f.server_latency_us for f in result.frames], np.float64) / 1000.0
    text = (
        f"session {result.ready.session_id}: {frames} frames for {audio_s:.2f} s of audio at {result.ready.fps} fps "
        f"in {result.wall_s:.2f} s"
    )
    if frames:
        p50, p95 = np.percentile(latencies, [50, 95])
        text += f"; time in the server p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    if result.pictures:
        text += f"; {len(result.pictures)} pictures"
    if result.ready.forward:
        text += "; forwarded to " + ", ".join(f"{kind} {name}" for kind, name in result.ready.forward.items())
    for stopped in result.forwards_stopped:
        text += f"; {stopped.kind} {stopped.destination} stopped: {stopped.message}"
    if csv_path is not None:
        text += f"; wrote {csv_path}"
    return text
