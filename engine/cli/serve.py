"""``avatar serve``: the live server (browser client, WebRTC, WHIP, WebSocket) on one port.

Safe by default off loopback: listening on another address requires a token
(one is made and printed when none is given), refuses foreign Host names and
Origins, and every client's use is bounded (``engine.server.limits``).
SIGTERM or SIGINT drains: no new connection, every session closed (WebSocket
1001, WebRTC peers hung up) within ``--drain-timeout``, exit 0.
"""

import argparse
import asyncio
import contextlib
import errno
import importlib.util
import os
import secrets
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from engine.backends.selection import (
    CORES_PER_CPU_SESSION,
    GPU_MAX_SESSIONS,
    OPENVINO,
    TENSORRT,
    default_max_sessions,
    usable_cores,
)
from engine.cli.options import (
    add_avatar_options,
    add_forward_options,
    add_liveness_options,
    add_model_options,
    announce_weights,
    forward_settings,
    liveness_settings,
    model_sources,
    runtime_options,
)
from engine.errors import UsageError
from engine.output.whip import check_whip_url
from engine.server.auth import auth_required, is_loopback
from engine.server.config import AUTH_MODES, PLAYOUT_DELAYS, IceServer, ServerConfig

DEFAULTS = ServerConfig()
TOKEN_ENV = "AVATAR_TOKEN"
JWT_SECRET_ENV = "AVATAR_JWT_SECRET"
METRICS_TOKEN_ENV = "AVATAR_METRICS_TOKEN"
TURN_CREDENTIAL_ENV = "AVATAR_TURN_CREDENTIAL"
NO_AUTH_BANNER = """\
************************************************************************
*  WARNING: AUTHENTICATION IS OFF on {host:<40} *
*  Anyone who can reach this address can open sessions, use the CPU   *
*  and read /metrics. Use tokens (--token-file, or the token printed   *
*  without --auth off) unless this network is yours alone.             *
************************************************************************"""


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
        default=None,
        help="concurrent sessions, WebRTC and WebSocket together; one more gets HTTP 503 "
        f"(default: what the CPU holds on time, one per {CORES_PER_CPU_SESSION} cores, at least one, here "
        f"{default_max_sessions(OPENVINO)}; {GPU_MAX_SESSIONS} with --backend tensorrt)",
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
    parser.add_argument(
        "--playout-delay",
        choices=PLAYOUT_DELAYS,
        default=DEFAULTS.playout_delay,
        help="zero: ask the browser to show each video frame as soon as it is decoded (RTP playout-delay 0, "
        "the lowest latency; network jitter shows as uneven motion); browser: leave the delay to the browser's "
        "jitter buffer (smoother on a jittery network, ~20 ms later on a good one) "
        f"(default: {DEFAULTS.playout_delay})",
    )
    add_avatar_options(parser)
    add_liveness_options(parser)
    add_model_options(parser)
    add_forward_options(parser, per_session=True)
    _add_access_options(parser.add_argument_group("access (tokens, origins, names)"))
    _add_tls_options(parser.add_argument_group("TLS and ICE"))
    _add_limit_options(parser.add_argument_group("limits per client and timeouts"))
    parser.set_defaults(run=run)


def _add_access_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default=DEFAULTS.auth,
        help="require a bearer token to open sessions: auto = whenever --host is not loopback (or a token is "
        "given); off prints a warning on a non-loopback address (default: %(default)s)",
    )
    group.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the access token that opens sessions (or ${TOKEN_ENV}); when tokens are required "
        "and none is given, one is made and printed",
    )
    group.add_argument(
        "--jwt-secret-file",
        type=Path,
        help=f"file holding the HS256 secret of JSON Web Tokens that open sessions (or ${JWT_SECRET_ENV}); "
        "tokens need exp, may carry scope, avatar, max_sessions",
    )
    group.add_argument(
        "--metrics-token-file",
        type=Path,
        help=f"file holding the token of GET /metrics when tokens are required (or ${METRICS_TOKEN_ENV})",
    )
    group.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a web page origin (https://app.example) allowed to use /ws and /offer besides the server's own; "
        "repeatable; * allows any",
    )
    group.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name this server is reached by (Host header check against DNS rebinding; IP addresses and "
        "localhost are always accepted); repeatable; * accepts any",
    )


def _add_tls_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve https and wss")
    group.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    group.add_argument(
        "--self-signed",
        action="store_true",
        help="serve https with a certificate made for this machine's names and addresses and kept in the cache "
        "folder (for a LAN: browsers give the microphone only to https pages); visitors accept it once",
    )
    group.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN or TURN server for WebRTC (stun:host:3478, turn:host:3478?transport=udp), handed to the page "
        "and used by the server; repeatable (default: none, host candidates only)",
    )
    group.add_argument("--turn-username", help="username for the turn: / turns: servers")
    group.add_argument(
        "--turn-credential-file", type=Path, help=f"file holding the TURN password (or ${TURN_CREDENTIAL_ENV})"
    )


def _add_limit_options(group: argparse._ArgumentGroup) -> None:
    def number(flag: str, field: str, unit: str, what: str, kind: type = float) -> None:
        default = getattr(DEFAULTS, field)
        group.add_argument(flag, type=kind, default=default, metavar=unit, help=f"{what} (default: {default})")

    number(
        "--idle-timeout",
        "session_idle_timeout_s",
        "S",
        "close a session after this many seconds with less than half real time of audio",
    )
    number(
        "--ice-timeout",
        "ice_timeout_s",
        "S",
        "free a WebRTC session's slot if ICE and DTLS have not connected within this many seconds",
    )
    number(
        "--write-timeout",
        "write_timeout_s",
        "S",
        "evict a WebSocket client that takes nothing for this many seconds while the server writes",
    )
    number(
        "--header-timeout",
        "header_timeout_s",
        "S",
        "close a connection whose request headers take longer (also an idle kept-alive connection)",
    )
    number("--body-timeout", "body_timeout_s", "S", "answer 408 to a request body that takes longer")
    number(
        "--max-messages-per-s",
        "max_messages_per_s",
        "N",
        "WebSocket messages per second per connection once its session started; faster senders are slowed",
    )
    number(
        "--max-messages-per-s-per-address",
        "max_messages_per_s_per_address",
        "N",
        "the same, over all connections of one client address",
    )
    number(
        "--max-connects-per-s-per-address",
        "max_connects_per_s_per_address",
        "N",
        "new WebSocket connections and offers per second from one client address",
    )
    number(
        "--max-requests-per-s-per-address",
        "max_requests_per_s_per_address",
        "N",
        "HTTP requests of any kind per second from one client address",
    )
    number(
        "--max-pending",
        "max_pending",
        "N",
        "connections not yet in a session (before the hello, before ICE connects), in all",
        int,
    )
    number("--max-pending-per-address", "max_pending_per_address", "N", "the same, per client address", int)
    number(
        "--max-audio-speed",
        "max_audio_speed",
        "X",
        "take a WebSocket session's audio at most this many times faster than real time",
    )
    group.add_argument(
        "--max-connections",
        type=int,
        default=None,
        metavar="N",
        help="open TCP connections at once; more are reset at once (default: what the descriptor limit leaves "
        "after the sessions' needs)",
    )
    number(
        "--drain-timeout",
        "drain_timeout_s",
        "S",
        "on SIGTERM/SIGINT, close every session within this many seconds, then exit",
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the flags describe (``--backend auto`` resolved); UsageError for values that cannot work."""
    if not 1 <= args.fps <= 100:
        raise UsageError(f"--fps must be in 1..100, got {args.fps}")
    if args.size < 2 or args.size % 2:
        raise UsageError(f"--size must be an even number of pixels >= 2, got {args.size}")
    if args.max_sessions is not None and args.max_sessions < 1:
        raise UsageError(f"--max-sessions must be at least 1, got {args.max_sessions}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    liveness = liveness_settings(args)
    forwarding = forward_settings(args)
    if args.publish_whip is not None:
        check_whip_url(args.publish_whip)
    for flag, value in (
        ("--idle-timeout", args.idle_timeout),
        ("--ice-timeout", args.ice_timeout),
        ("--write-timeout", args.write_timeout),
        ("--header-timeout", args.header_timeout),
        ("--body-timeout", args.body_timeout),
        ("--max-messages-per-s", args.max_messages_per_s),
        ("--max-messages-per-s-per-address", args.max_messages_per_s_per_address),
        ("--max-connects-per-s-per-address", args.max_connects_per_s_per_address),
        ("--max-requests-per-s-per-address", args.max_requests_per_s_per_address),
        ("--max-pending", args.max_pending),
        ("--max-pending-per-address", args.max_pending_per_address),
        ("--max-audio-speed", args.max_audio_speed),
        ("--drain-timeout", args.drain_timeout),
    ):
        if not value > 0:
            raise UsageError(f"{flag} must be positive, got {value}")
    if args.max_connections is not None and args.max_connections < 1:
        raise UsageError(f"--max-connections must be at least 1, got {args.max_connections}")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.self_signed and args.tls_cert is not None:
        raise UsageError("--self-signed and --tls-cert exclude each other")
    access_token = _secret(args.token_file, TOKEN_ENV, "--token-file")
    jwt_secret = _secret(args.jwt_secret_file, JWT_SECRET_ENV, "--jwt-secret-file")
    required = auth_required(args.auth, args.host, has_credentials=access_token is not None or jwt_secret is not None)
    if required and access_token is None and jwt_secret is None:
        access_token = secrets.token_urlsafe(24)  # printed with the URL at start
    backend, options = runtime_options(args)
    return ServerConfig(
        host=args.host,
        port=args.port,
        fps=args.fps,
        output_size_px=args.size,
        max_sessions=args.max_sessions or default_max_sessions(backend),
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
        playout_delay=args.playout_delay,
        forwarding=forwarding,
        auth=args.auth,
        access_token=access_token,
        jwt_secret=jwt_secret,
        metrics_token=_secret(args.metrics_token_file, METRICS_TOKEN_ENV, "--metrics-token-file"),
        allowed_origins=tuple(args.allow_origin),
        server_names=tuple(args.server_name),
        tls_cert_path=args.tls_cert,
        tls_key_path=args.tls_key,
        self_signed=args.self_signed,
        ice_servers=_ice_servers(args),
        session_idle_timeout_s=args.idle_timeout,
        ice_timeout_s=args.ice_timeout,
        write_timeout_s=args.write_timeout,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        max_messages_per_s=args.max_messages_per_s,
        max_messages_per_s_per_address=args.max_messages_per_s_per_address,
        max_connects_per_s_per_address=args.max_connects_per_s_per_address,
        max_requests_per_s_per_address=args.max_requests_per_s_per_address,
        max_pending=args.max_pending,
        max_pending_per_address=args.max_pending_per_address,
        max_audio_speed=args.max_audio_speed,
        max_connections=args.max_connections,
        drain_timeout_s=args.drain_timeout,
    )


def _secret(path: Path | None, env: str, flag: str) -> str | None:
    """A token or secret from its file (first line, stripped), else from ``$env``; None if neither."""
    if path is not None:
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise UsageError(f"{flag}: cannot read {path}: {exc.strerror}") from None
        if not text:
            raise UsageError(f"{flag}: {path} is empty")
        return text
    return os.environ.get(env) or None


def _ice_servers(args: argparse.Namespace) -> tuple[IceServer, ...]:
    credential = _secret(args.turn_credential_file, TURN_CREDENTIAL_ENV, "--turn-credential-file")
    servers = []
    for url in args.ice_server:
        scheme = url.split(":", 1)[0]
        if scheme not in ("stun", "stuns", "turn", "turns"):
            raise UsageError(f"--ice-server {url}: the URL must start with stun:, stuns:, turn: or turns:")
        if scheme.startswith("turn"):
            if args.turn_username is None or credential is None:
                raise UsageError(f"--ice-server {url}: a TURN server needs --turn-username and a credential")
            servers.append(IceServer(urls=(url,), username=args.turn_username, credential=credential))
        else:
            servers.append(IceServer(urls=(url,)))
    return tuple(servers)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    announce_weights(*model_sources(args))
    print(config.liveness.describe(), file=sys.stderr)
    if args.max_sessions:
        chosen = "--max-sessions"
    elif config.backend == TENSORRT:
        chosen = "the default on a GPU, not measured there yet"
    else:
        chosen = f"the default for {usable_cores()} CPU cores"
    print(f"sessions: at most {config.max_sessions} at once ({chosen})", file=sys.stderr)
    if config.forwarding.destinations.allowed:
        print(f"avatar apps sessions may forward to: {config.forwarding.destinations.describe()}", file=sys.stderr)
    _event_loop_runner()(_serve(config))
    return 0


def browser_url(host: str, port: int, *, tls: bool = False, token: str | None = None) -> str:
    """The URL to open: loopback for a wildcard address without TLS (the page needs a secure context for the
    microphone); the token, if any, in the fragment (read by the page, never sent to the server or logged)."""
    wildcard = host in ("0.0.0.0", "::", "")
    shown = "localhost" if (wildcard and not tls) or host in ("127.0.0.1", "::1") else host
    if wildcard and tls:
        shown = _lan_address()
    if ":" in shown:
        shown = f"[{shown}]"
    fragment = f"#token={token}" if token else ""
    return f"{'https' if tls else 'http'}://{shown}:{port}/{fragment}"


def _lan_address() -> str:
    """This machine's first non-loopback IPv4 address, or localhost."""
    from engine.server.tls import local_addresses

    return next((a for a in local_addresses() if not a.startswith("127.") and ":" not in a), "localhost")


async def _serve(config: ServerConfig) -> None:
    from engine.server.app import create_app  # the networks load here, after the argument checks
    from engine.server.context import ENGINE
    from engine.server.listener import start_listening
    from engine.server.memory import settle_heap

    ssl_context = _tls_context(config)
    warning = auth_warning(config)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    print("loading the avatar and the networks ...", flush=True)
    app = create_app(config)
    print(app[ENGINE].renderer_choice.describe(), flush=True)
    settle_heap()  # what was loaded lives as long as the process: out of the collector's sight
    try:
        runner, _ = await start_listening(app, host=config.host, port=config.port, ssl_context=ssl_context)
    except OSError as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}; {_bind_advice(exc)}") from exc
    gate = app[ENGINE].gate
    port = runner.addresses[0][1] if runner.addresses else config.port
    token = config.access_token if gate.auth.required else None
    url = browser_url(config.host, port, tls=ssl_context is not None, token=token)
    print(f"avatar server listening on {config.host}:{port}; open {url} (Ctrl-C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("stopping: closing every session ...", flush=True)
        try:
            async with asyncio.timeout(config.drain_timeout_s):
                await runner.cleanup()
        except TimeoutError:
            print(f"stopping: not everything closed within {config.drain_timeout_s:g} s; exiting", flush=True)
        print("stopped", flush=True)


def auth_warning(config: ServerConfig) -> str | None:
    """The loud warning for ``--auth off`` on an address other machines can reach, or None."""
    if config.auth == "off" and not is_loopback(config.host):
        return NO_AUTH_BANNER.format(host=f"{config.host}:{config.port}")
    return None


def _tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The TLS context the config asks for (making the self-signed certificate if needed), or None."""
    from engine.server import tls

    if config.self_signed:
        dns_names, addresses = tls.certificate_names(config.host, config.server_names)
        files = tls.self_signed_certificate(dns_names, addresses)
        print(f"TLS: self-signed certificate {files.cert_path}", flush=True)
        print(f"     covers {', '.join(dns_names + addresses)}", flush=True)
        print(f"     SHA-256 fingerprint {tls.fingerprint_sha256(files.cert_path)}", flush=True)
        return tls.server_ssl_context(files)
    if config.tls_cert_path is not None and config.tls_key_path is not None:
        return tls.server_ssl_context(tls.CertificateFiles(config.tls_cert_path, config.tls_key_path))
    return None


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
