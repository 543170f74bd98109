"""The server's HTTP face: the web client, WebRTC offers (JSON and WHIP) and the WebSocket API.

Routes:

- ``GET /`` and ``GET /<file>``: the browser client (``clients/web/avatar_web/``, package data).
- ``GET /sample-speech.wav``: the built-in speech sample, which the page can
  send instead of a microphone.
- ``POST /offer``: JSON ``{"sdp": "...", "type": "offer"}`` (optional
  ``"voice": true`` to get the voice back, delayed to match the video) ->
  ``{"sdp": "...", "type": "answer", "location": "/whip/<id>"}``.
- ``POST /whip`` (``Content-Type: application/sdp``; ``?voice=1`` optional) ->
  201 Created, body the answer SDP, ``Location: /whip/<id>``
  (WHIP, draft-ietf-wish-whip / RFC 9725, without trickle ICE: the answer
  carries all candidates).
- ``DELETE /whip/<id>``: end that session: 204, or 404 for an unknown id.
- ``GET /ws``: the WebSocket API (``engine.server.websocket``).
- ``GET /config``: what the page needs to connect: ``{"ice_servers": [...], "forward": {...}}``
  (``forward``: kind -> the names of the avatar-app destinations a session may pick).
- ``GET /metrics``: Prometheus metrics (``engine.server.metrics``).

Access (``engine.server.access``): every request's Host must be a name the
server serves (403 otherwise: DNS rebinding); /offer, /whip, DELETE and /ws
must come from no browser or from an allowed Origin (403) and, when
authentication is on, carry a session token, /config too, and /metrics its
own token (401 without, 403 with the wrong one).

Every error is JSON ``{"error": "..."}``: 400 malformed JSON or SDP, 401, 403,
404, 405 (with ``Allow``), 408 a body too slow to arrive, 413 too large, 415
wrong content type, 429 too many connections waiting to start a session or
too many sessions for one token, 503 server full or shutting down (with
``Retry-After``), 500 for a bug, which is logged and stays within its request.
A client that leaves mid-request is only logged.
"""

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from engine.audio import SAMPLE_SPEECH
from engine.server.access import authorize, check_connect_rate, check_host, check_request_rate, client_address
from engine.server.auth import METRICS_SCOPE, SESSION_SCOPE, Grant
from engine.server.config import ServerConfig
from engine.server.context import ENGINE, EngineContext, HolderLimitError, SessionLimitError, build_context
from engine.server.http_errors import KEPT_HEADERS, json_error
from engine.server.limits import TooManyPending
from engine.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from engine.server.offer import OfferError, parse_json_offer
from engine.server.webrtc import WebRTCSession
from engine.server.webrtc_sessions import SessionRegistry, open_session
from engine.server.websocket import WEBSOCKETS, close_all_websockets, websocket_handler

logger = logging.getLogger(__name__)

WEB_CLIENT_DIR = Path(str(resources.files("avatar_web")))
"""The browser client's files (``clients/web/avatar_web``, package data), served at ``/``."""

WEBRTC_SESSIONS = web.AppKey("webrtc_sessions", SessionRegistry)
"""The live WebRTC sessions, by WHIP resource id."""

RETRY_AFTER_S = 5
"""What a 503 (server full) tells the client to wait before retrying, seconds."""
DRAIN_SHARE = 0.6
"""Share of ``drain_timeout_s`` the drain spends closing sessions (the rest: handlers ending, the cleanup)."""
WEB_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""Names of the web client's files: one short path segment of plain characters (anything else is 404)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(config: ServerConfig, *, context: EngineContext | None = None) -> web.Application:
    """The aiohttp application for ``config``; builds the engine context (seconds) unless given one.

    Startup starts the render scheduler; cleanup ends every session, then
    closes the scheduler and the AU thread.
    """
    if context is None:
        context = build_context(config)
    elif context.config != config:
        raise ValueError("create_app(): context.config differs from config; pass the config the context was built from")
    app = web.Application(middlewares=[_json_errors, _host_check], client_max_size=config.max_body_bytes)
    app[ENGINE] = context
    app[WEBRTC_SESSIONS] = SessionRegistry()
    app[WEBSOCKETS] = set()
    app.cleanup_ctx.append(_engine_lifetime)
    app.on_shutdown.append(drain)
    app.router.add_post("/offer", _offer)
    app.router.add_post("/whip", _whip_create)
    app.router.add_delete("/whip/{resource_id}", _whip_delete)
    for path in ("/offer", "/whip"):
        app.router.add_get(path, _post_only)
    app.router.add_get("/ws", websocket_handler)
    app.router.add_get("/config", _client_config)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/sample-speech.wav", _sample_speech)
    app.router.add_get("/", _index)
    app.router.add_get("/{name}", _web_file)
    return app


async def _engine_lifetime(app: web.Application) -> AsyncIterator[None]:
    context = app[ENGINE]
    await context.scheduler.start()
    try:
        yield
    finally:
        await app[WEBRTC_SESSIONS].close_all("the server is shutting down")
        await context.scheduler.close()
        context.au_worker.close()


async def drain(app: web.Application) -> None:
    """Shutdown's first step (SIGTERM/SIGINT): refuse new sessions, close every one within its share of
    ``drain_timeout_s``.

    WebSocket clients get ``shutting_down`` and close 1001; WebRTC peers are
    closed. What has not finished by the deadline is left to the cleanup.
    """
    context = app[ENGINE]
    context.gate.draining = True
    closing = asyncio.gather(close_all_websockets(app), app[WEBRTC_SESSIONS].close_all("the server is shutting down"))
    timeout_s = DRAIN_SHARE * context.config.drain_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            await closing
    except TimeoutError:
        logger.warning("drain: sessions still closing after %.1f s", timeout_s)


async def _metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of this server's metrics (its own token when authentication is on)."""
    authorize(request, METRICS_SCOPE, check_origin=False)
    body = request.app[ENGINE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _client_config(request: web.Request) -> web.Response:
    """What the page needs before it connects: the ICE servers (TURN credentials included, so behind the token)
    and the names of the avatar-app destinations it may forward to (names only, never addresses)."""
    authorize(request, SESSION_SCOPE)
    config = request.app[ENGINE].config
    return web.json_response(
        {
            "ice_servers": [server.to_json() for server in config.ice_servers],
            "forward": config.forwarding.destinations.names(),
        }
    )


async def _post_only(request: web.Request) -> web.Response:
    body = json.dumps({"error": f"{request.path} takes POST"})
    raise web.HTTPMethodNotAllowed(request.method, ["POST"], text=body, content_type="application/json")


async def _sample_speech(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(SAMPLE_SPEECH, headers={"Content-Type": "audio/wav"})


async def _index(request: web.Request) -> web.StreamResponse:
    index = WEB_CLIENT_DIR / "index.html"
    if not index.is_file():
        raise json_error(web.HTTPNotFound, f"the web client is not installed here ({index} is missing)")
    return web.FileResponse(index)


async def _web_file(request: web.Request) -> web.StreamResponse:
    """A file of the web client, by name (one path segment: nothing outside its folder is reachable)."""
    name = request.match_info["name"]  # percent-decoded: "..%2F" arrives as "../", "%00" as a NUL
    if not WEB_FILE_NAME.fullmatch(name):
        raise json_error(web.HTTPNotFound, "no such page")
    path = (WEB_CLIENT_DIR / name).resolve()
    if path.parent != WEB_CLIENT_DIR or not path.is_file():
        raise json_error(web.HTTPNotFound, f"no such page: /{name}")
    return web.FileResponse(path)


async def _offer(request: web.Request) -> web.Response:
    """JSON offer in, JSON answer out (the browser client's signalling)."""
    grant = authorize(request, SESSION_SCOPE)
    _require_content_type(request, "application/json")
    try:
        offer = parse_json_offer(await _read_body(request))
    except OfferError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None
    session, answer = await _open(request, grant, offer.sdp, voice=offer.voice)
    return web.json_response({"sdp": answer, "type": "answer", "location": f"/whip/{session.resource_id}"})


async def _whip_create(request: web.Request) -> web.Response:
    """WHIP: an SDP offer in, 201 with the SDP answer and the session's URL out."""
    grant = authorize(request, SESSION_SCOPE)
    _require_content_type(request, "application/sdp")
    offer = await _read_body(request)
    voice = request.query.get("voice", "0").lower() in ("1", "true", "yes")
    session, answer = await _open(request, grant, offer, voice=voice)
    location = f"/whip/{session.resource_id}"
    return web.Response(status=201, text=answer, content_type="application/sdp", headers={"Location": location})


async def _whip_delete(request: web.Request) -> web.Response:
    """WHIP: end the session at this URL."""
    authorize(request, SESSION_SCOPE)
    session = request.app[WEBRTC_SESSIONS].get(request.match_info["resource_id"])
    if session is None:
        raise json_error(web.HTTPNotFound, "no such session (it has ended, or never existed)")
    await session.close("the client ended the session (WHIP DELETE)")
    return web.Response(status=204)


async def _read_body(request: web.Request) -> str:
    """The body as text, within ``body_timeout_s`` (408 after it: a client trickling bytes holds nothing longer)."""
    context = request.app[ENGINE]
    limit = context.config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        body = json.dumps({"error": f"the body is larger than {limit} bytes"})
        raise web.HTTPRequestEntityTooLarge(limit, request.content_length, text=body, content_type="application/json")
    timeout_s = context.config.body_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            return await request.text()
    except TimeoutError:
        context.gate.refuse("slow_body")
        raise json_error(web.HTTPRequestTimeout, f"the request body did not arrive within {timeout_s:g} s") from None
    except UnicodeDecodeError as exc:
        raise json_error(web.HTTPBadRequest, f"the body is not valid UTF-8 text: {exc}") from None


async def _open(request: web.Request, grant: Grant, offer: str, *, voice: bool) -> tuple[WebRTCSession, str]:
    app = request.app
    context = app[ENGINE]
    if context.gate.draining:
        raise json_error(web.HTTPServiceUnavailable, "the server is shutting down")
    check_connect_rate(request)
    try:
        return await open_session(
            context, app[WEBRTC_SESSIONS], offer, voice=voice, grant=grant, address=client_address(request)
        )
    except SessionLimitError as exc:
        raise json_error(web.HTTPServiceUnavailable, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    except (TooManyPending, HolderLimitError) as exc:
        context.gate.refuse("pending" if isinstance(exc, TooManyPending) else "holder_limit")
        raise json_error(web.HTTPTooManyRequests, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    except OfferError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None


def _require_content_type(request: web.Request, expected: str) -> None:
    if request.content_type != expected:
        got = request.content_type or "none"
        raise json_error(web.HTTPUnsupportedMediaType, f"Content-Type must be {expected}, got {got}")


@web.middleware
async def _host_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before anything else: no more requests per address than its rate, no name the server does not serve
    (DNS rebinding)."""
    check_request_rate(request)
    check_host(request)
    return await handler(request)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every error a JSON body; a bug is logged and answered 500 without touching other requests.

    A client that leaves mid-request (its connection reset while its body was
    read) is logged, not answered: there is nobody to answer.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {name: value for name, value in exc.headers.items() if name in KEPT_HEADERS}
        return web.json_response({"error": exc.reason}, status=exc.status, headers=headers)
    except ConnectionError as exc:  # the answer goes nowhere (aiohttp drops it quietly)
        logger.info("%s %s: the client left mid-request (%s)", request.method, request.path, exc)
        return web.json_response({"error": "the connection was lost"}, status=400)
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal server error (logged on the server)"}, status=500)
