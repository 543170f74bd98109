"""``avatar serve``: the live server (browser client, WebRTC, WHIP, WebSocket) on one port."""

import argparse
import asyncio
import contextlib
import errno
import importlib.util
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.cli.options import (
    add_avatar_options,
    add_liveness_options,
    add_model_options,
    announce_weights,
    liveness_settings,
    model_sources,
    runtime_options,
)
from engine.errors import UsageError
from engine.output.whip import check_whip_url
from engine.server.config import ServerConfig

DEFAULTS = ServerConfig()


def add_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="serve the live avatar to browsers (WebRTC), WHIP clients and WebSocket clients",
        description="Start the real-time server: open the printed URL in a browser, allow the microphone, "
        "and the portrait speaks with your voice. WebRTC offers at POST /offer (JSON) and POST /whip (WHIP), "
        "the WebSocket API at /ws.",
    )
    parser.add_argument(
        "--host",
        default=DEFAULTS.host,
        help=f"address to listen on (default: {DEFAULTS.host}, this machine only; 0.0.0.0 for every interface. "
        "Browsers allow the microphone only on https:// or http://localhost)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULTS.port, help=f"TCP port, 0 for any free one (default: {DEFAULTS.port})"
    )
    parser.add_argument(
        "--fps", type=int, default=DEFAULTS.fps, help=f"video frame rate, 1..100 (default: {DEFAULTS.fps})"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=DEFAULTS.output_size_px,
        metavar="PX",
        help=f"video size: the portrait's longer side in pixels, even (default: {DEFAULTS.output_size_px})",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULTS.max_sessions,
        help="concurrent sessions, WebRTC and WebSocket together; one more gets HTTP 503 "
        f"(default: {DEFAULTS.max_sessions})",
    )
    parser.add_argument(
        "--publish-whip",
        metavar="URL",
        help="also publish every session's avatar (video) to this WHIP endpoint; {session} in the URL becomes "
        "the session's id (see avatar publish --help)",
    )
    parser.add_argument(
        "--publish-whip-token", metavar="T", help="bearer token for --publish-whip (default: $AVATAR_WHIP_TOKEN)"
    )
    add_avatar_options(parser)
    add_liveness_options(parser)
    add_model_options(parser)
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the flags describe (``--backend auto`` resolved); ValueError for values out of range."""
    if not 1 <= args.fps <= 100:
        raise UsageError(f"--fps must be in 1..100, got {args.fps}")
    if args.size < 2 or args.size % 2:
        raise UsageError(f"--size must be an even number of pixels >= 2, got {args.size}")
    if args.max_sessions < 1:
        raise UsageError(f"--max-sessions must be at least 1, got {args.max_sessions}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    liveness = liveness_settings(args)
    if args.publish_whip is not None:
        check_whip_url(args.publish_whip)
    backend, options = runtime_options(args)
    return ServerConfig(
        host=args.host,
        port=args.port,
        fps=args.fps,
        output_size_px=args.size,
        max_sessions=args.max_sessions,
        avatar_path=args.avatar,
        face_box=args.face_box,
        backend=backend,
        precision=options.precision,
        threads=options.threads,
        streams=options.streams,
        generator_path=Path(args.generator) if args.generator else None,
        cause_path=Path(args.cause) if args.cause else None,
        liveness=liveness,
        publish_whip_url=args.publish_whip,
        publish_whip_token=args.publish_whip_token or os.environ.get("AVATAR_WHIP_TOKEN"),
        renderer=args.renderer,
        framing=args.framing,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    announce_weights(*model_sources(args))
    print(config.liveness.describe(), file=sys.stderr)
    _event_loop_runner()(_serve(config))
    return 0


def browser_url(host: str, port: int) -> str:
    """The URL to open: loopback for a wildcard address (the page needs a secure context for the microphone)."""
    shown = "localhost" if host in ("0.0.0.0", "::", "", "127.0.0.1", "::1") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


async def _serve(config: ServerConfig) -> None:
    from engine.server.app import create_app  # the networks load here, after the argument checks
    from engine.server.context import ENGINE

    print("loading the avatar and the networks ...", flush=True)
    app = create_app(config)
    print(app[ENGINE].renderer_choice.describe(), flush=True)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}; {_bind_advice(exc)}") from exc
    port = runner.addresses[0][1] if runner.addresses else config.port
    print(f"avatar server listening on {config.host}:{port}; open {browser_url(config.host, port)} (Ctrl-C to stop)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("stopping: ending sessions ...", flush=True)
        await runner.cleanup()


def _bind_advice(error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return "another program uses that port: stop it, or choose another with --port"
    if error.errno == errno.EACCES:
        return "ports below 1024 need privileges: choose --port 1024 or above"
    if error.errno == errno.EADDRNOTAVAIL:
        return "this machine has no such address: use --host 127.0.0.1, or 0.0.0.0 for every interface"
    return "check --host and --port"


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """``uvloop.run`` when uvloop is installed (a faster event loop), else ``asyncio.run``."""
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.run
    return asyncio.run
