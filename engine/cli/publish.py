"""``avatar publish``: the talking avatar published into a WebRTC room (an SFU) over WHIP (RFC 9725).

Speech from a microphone, a file or stdin PCM drives the avatar; its video
(VP8 or H.264) and the voice, delayed to match the lips (Opus), are offered to
the WHIP endpoint, the way OBS publishes: Janus (simple-whip-server), LiveKit
ingress, Cloudflare Stream, MediaMTX... Everyone in the room sees the avatar.
The publisher reconnects with back-off when the endpoint goes away, and ends
the session (HTTP DELETE) when the input ends or on Ctrl-C.
"""

import argparse
import asyncio
import os
import sys

from engine.cli.local_speaker import (
    add_input_options,
    add_picture_options,
    check_input,
    check_picture_options,
    feed,
    forward_to_apps,
    list_devices_requested,
    load_parts,
    open_input,
    print_stats,
    stats_line,
)
from engine.cli.options import (
    add_avatar_options,
    add_forward_options,
    add_liveness_options,
    add_model_options,
    forward_settings,
    liveness_settings,
)
from engine.live import LiveSession
from engine.live.build import running_parts
from engine.live.sources import AudioChunk
from engine.output.forward import ForwardSettings
from engine.output.voice import voice_frame
from engine.output.whip import WhipClient, WhipError, check_whip_url
from engine.output.whip_publisher import VIDEO_CODECS, WhipPublisher

SESSION_ID = "publish"
TOKEN_ENV = "AVATAR_WHIP_TOKEN"
EPILOG = f"""\
examples:
  avatar publish --whip https://sfu.example.com/whip/endpoint/room1 --token SECRET
  avatar publish --whip http://localhost:7080/whip/endpoint/abc --input talk.wav --video-codec h264

The token may also come from ${TOKEN_ENV} (kept out of the process list).
"""


def add_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="publish the talking avatar into a WebRTC room over WHIP (Janus, LiveKit, Cloudflare, MediaMTX...)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--whip", required=True, metavar="URL", help="the WHIP endpoint URL (http:// or https://)")
    parser.add_argument(
        "--token", metavar="T", help=f"bearer token for the endpoint (default: ${TOKEN_ENV}, if set; else none)"
    )
    parser.add_argument(
        "--video-codec", choices=sorted(VIDEO_CODECS), default="vp8", help="video codec offered (default: vp8)"
    )
    parser.add_argument("--no-voice", action="store_true", help="publish the video only (no Opus voice track)")
    add_picture_options(parser, "video")
    add_input_options(parser)
    add_avatar_options(parser)
    add_liveness_options(parser)
    add_model_options(parser)
    add_forward_options(parser, per_session=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if list_devices_requested(args):
        return 0
    check_whip_url(args.whip)
    check_picture_options(args)
    check_input(args)
    forwarding = forward_settings(args)  # a bad destination is refused before anything loads
    asyncio.run(publish(args, forwarding))
    return 0


async def publish(args: argparse.Namespace, forwarding: ForwardSettings) -> None:
    """Load, connect (refusals end here), publish the input until it ends or Ctrl-C, DELETE."""
    print("loading the avatar and the networks ...", file=sys.stderr, flush=True)
    built = await asyncio.to_thread(load_parts, args)
    client = WhipClient(args.whip, token=args.token or os.environ.get(TOKEN_ENV) or None)
    async with running_parts(built.parts) as parts:
        session = LiveSession(parts, SESSION_ID, fps=args.fps, liveness=liveness_settings(args))
        stopped = asyncio.Event()
        publisher = WhipPublisher(
            client,
            parts.avatar.portrait,
            fps=args.fps,
            size_px=args.size,
            video_codec=args.video_codec,
            voice=not args.no_voice,
            on_sent=lambda frame: session.record_sent(WhipPublisher.name, frame),
            on_repeat=lambda: session.record_repeat(WhipPublisher.name),
            on_dropped=lambda: session.record_unsent(WhipPublisher.name),
            on_error=lambda exc: stopped.set(),
        )
        session.add_video_output(publisher, reports_sends=True)
        await forward_to_apps(session, forwarding, args.fps)
        try:
            await publisher.connect()
        except WhipError as exc:
            if not exc.retry:
                raise
            print(f"{exc} (in the background)", file=sys.stderr)
        publisher.start()
        print(f"publishing to {args.whip} ({args.video_codec}{'' if args.no_voice else ' + opus'})", flush=True)

        def with_voice(chunk: AudioChunk, start_sample: int) -> None:
            frame = voice_frame(chunk)
            if frame is not None:
                publisher.push_voice(frame, start_sample)

        stats = None
        if args.stats_interval:
            stats = asyncio.create_task(print_stats(session, args.stats_interval, "WHIP sender"))
        feeding = asyncio.create_task(feed(session, open_input(args), None if args.no_voice else with_voice))
        refused = asyncio.create_task(stopped.wait())
        try:
            await asyncio.wait({feeding, refused}, return_when=asyncio.FIRST_COMPLETED)
            if publisher.error is not None:
                raise publisher.error
            await feeding
            await session.finish()
            print(stats_line(session.stats_report(), "WHIP sender"), file=sys.stderr)
        finally:
            tasks = [task for task in (feeding, refused, stats) if task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await session.close()
