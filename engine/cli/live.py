"""``avatar live``: speech from a microphone (or a file, or stdin PCM) in, the talking avatar out as a virtual camera.

Pick the camera in Zoom, Meet, Teams or the browser like any webcam. The
voice can be played, delayed to match the lips, to an output device: a virtual
microphone (PulseAudio null sink, VB-Cable, BlackHole) carries it into the
call in sync with the face. docs/JOIN_A_CALL.md has the recipe for each OS.
"""

import argparse
import asyncio
import contextlib
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
from engine.output.pictures import output_dimensions
from engine.output.preview import PreviewWindow
from engine.output.tracks import DelayedVoiceTrack
from engine.output.virtual_camera import VirtualCameraOutput, open_camera
from engine.output.voice import SpeakerVoice, voice_frame
from engine.pipeline import VideoFrame

SESSION_ID = "live"
EPILOG = """\
examples:
  avatar live                                 default microphone -> first free virtual camera
  avatar live --input-device USB --camera /dev/video10 --voice-device avatar_sink
  avatar live --input talk.wav --preview      a file instead of a microphone, with a preview window
  ffmpeg -re -i talk.mp3 -f s16le -ac 1 -ar 16000 - | avatar live --input -
"""


def add_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="speak into a microphone; the avatar appears as a virtual camera for video calls",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(parser)
    out = parser.add_argument_group("virtual camera and voice")
    out.add_argument(
        "--camera",
        metavar="DEVICE",
        help="the virtual camera: /dev/videoN (v4l2loopback), 'OBS Virtual Camera', 'Unity Video Capture' "
        "(default: the first one free)",
    )
    out.add_argument(
        "--camera-backend",
        metavar="NAME",
        help="pyvirtualcam backend: v4l2loopback, obs, unitycapture (default: each in turn)",
    )
    add_picture_options(out, "camera")
    out.add_argument(
        "--voice-device",
        metavar="NAME|INDEX",
        help="also play the voice, delayed to match the lips, on this output device (a virtual microphone's "
        "input, e.g. a PulseAudio null sink); needs the mic extra",
    )
    out.add_argument("--preview", action="store_true", help="show the camera's picture in a window (needs a display)")
    add_avatar_options(parser)
    add_liveness_options(parser)
    add_model_options(parser)
    add_forward_options(parser, per_session=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if list_devices_requested(args):
        return 0
    check_picture_options(args)
    check_input(args)
    forwarding = forward_settings(args)  # a bad destination is refused before anything loads
    asyncio.run(live(args, forwarding))
    return 0


async def live(args: argparse.Namespace, forwarding: ForwardSettings) -> None:
    """Load, open the camera (and voice, preview), feed the input until it ends or Ctrl-C, close everything."""
    print("loading the avatar and the networks ...", file=sys.stderr, flush=True)
    built = await asyncio.to_thread(load_parts, args)
    portrait = built.parts.avatar.portrait
    width_px, height_px = output_dimensions(portrait.shape[0], portrait.shape[1], args.size)
    camera = open_camera(
        width_px=width_px, height_px=height_px, fps=args.fps, device=args.camera, backend=args.camera_backend
    )
    print(f"virtual camera: {camera.device} ({camera.backend}, {width_px}x{height_px}, {camera.fmt.name})")
    async with running_parts(built.parts) as parts:
        session = LiveSession(parts, SESSION_ID, fps=args.fps, liveness=liveness_settings(args))
        voice = DelayedVoiceTrack() if args.voice_device is not None else None

        def sent(frame: VideoFrame) -> None:
            session.record_sent(VirtualCameraOutput.name, frame)
            if voice is not None:
                voice.release_through(frame.trace.shown_sample)

        output = VirtualCameraOutput(
            camera,
            portrait,
            fps=args.fps,
            on_sent=sent,
            on_repeat=lambda: session.record_repeat(VirtualCameraOutput.name),
            on_dropped=lambda: session.record_unsent(VirtualCameraOutput.name),
        )
        session.add_video_output(output, reports_sends=True)
        speaker = SpeakerVoice(voice, args.voice_device) if voice is not None else None
        if args.preview:
            session.add_video_output(PreviewWindow(title="avatar live"))
        output.start()
        if speaker is not None:
            speaker.start()

        def with_voice(chunk: AudioChunk, start_sample: int) -> None:
            frame = voice_frame(chunk)
            if voice is not None and frame is not None:
                voice.push(frame, start_sample)

        stats = None
        if args.stats_interval:
            stats = asyncio.create_task(print_stats(session, args.stats_interval, "camera"))
        print("speak now (Ctrl-C to stop)" if args.input == "mic" else f"playing {args.input} ...", flush=True)
        try:
            await forward_to_apps(session, forwarding, args.fps)
            await feed(session, open_input(args), with_voice if voice is not None else None)
            await session.finish()
            print(stats_line(session.stats_report(), "camera"), file=sys.stderr)
        finally:
            if stats is not None:
                stats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stats
            await session.close()
            if speaker is not None:
                await speaker.close()
