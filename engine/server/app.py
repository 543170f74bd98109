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
- ``GET /metrics``: Prometheus metrics (``engine.server.metrics``).

Every error is JSON ``{"error": "..."}``: 400 malformed JSON or SDP, 404, 405,
415 wrong content type, 503 server full (with ``Retry-After``), 500 for a bug,
which is logged and stays within its request.
"""

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from engine.audio import SAMPLE_SPEECH
from engine.server.config import ServerConfig
from engine.server.context import ENGINE, EngineContext, SessionLimitError, build_context
from engine.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from engine.server.offer import OfferError
from engine.server.webrtc import WebRTCSession
from engine.server.webrtc_sessions import SessionRegistry, open_session
from engine.server.websocket import websocket_handler

logger = logging.getLogger(__name__)

WEB_CLIENT_DIR = Path(str(resources.files("avatar_web")))
"""The browser client's files (``clients/web/avatar_web``, package data), served at ``/``."""

WEBRTC_SESSIONS = web.AppKey("webrtc_sessions", SessionRegistry)
"""The live WebRTC sessions, by WHIP resource id."""

RETRY_AFTER_S = 5
"""What a 503 (server full) tells the client to wait before retrying, seconds."""

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
    app = web.Application(middlewares=[_json_errors])
    app[ENGINE] = context
    app[WEBRTC_SESSIONS] = SessionRegistry()
    app.cleanup_ctx.append(_engine_lifetime)
    app.router.add_post("/offer", _offer)
    app.router.add_post("/whip", _whip_create)
    app.router.add_delete("/whip/{resource_id}", _whip_delete)
    app.router.add_get("/ws", websocket_handler)
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


async def _metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of this server's metrics."""
    body = request.app[ENGINE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _sample_speech(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(SAMPLE_SPEECH, headers={"Content-Type": "audio/wav"})


async def _index(request: web.Request) -> web.StreamResponse:
    index = WEB_CLIENT_DIR / "index.html"
    if not index.is_file():
        raise _error(web.HTTPNotFound, f"the web client is not installed here ({index} is missing)")
    return web.FileResponse(index)


async def _web_file(request: web.Request) -> web.StreamResponse:
    """A file of the web client, by name (one path segment: nothing outside its folder is reachable)."""
    name = request.match_info["name"]  # percent-decoded: "..%2F" arrives as "../"
    path = (WEB_CLIENT_DIR / name).resolve()
    if name.startswith(".") or path.parent != WEB_CLIENT_DIR or not path.is_file():
        raise _error(web.HTTPNotFound, f"no such page: /{name}")
    return web.FileResponse(path)


async def _offer(request: web.Request) -> web.Response:
    """JSON offer in, JSON answer out (the browser client's signalling)."""
    _require_content_type(request, "application/json")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _error(web.HTTPBadRequest, f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
        raise _error(web.HTTPBadRequest, 'expected a JSON object {"sdp": "<SDP offer>", "type": "offer"}')
    voice = body.get("voice", False)
    if not isinstance(voice, bool):
        raise _error(web.HTTPBadRequest, "voice must be true or false")
    session, answer = await _open(request, body["sdp"], voice=voice)
    return web.json_response({"sdp": answer, "type": "answer", "location": f"/whip/{session.resource_id}"})


async def _whip_create(request: web.Request) -> web.Response:
    """WHIP: an SDP offer in, 201 with the SDP answer and the session's URL out."""
    _require_content_type(request, "application/sdp")
    try:
        offer = await request.text()
    except UnicodeDecodeError as exc:
        raise _error(web.HTTPBadRequest, f"the SDP offer is not valid text: {exc}") from exc
    voice = request.query.get("voice", "0").lower() in ("1", "true", "yes")
    session, answer = await _open(request, offer, voice=voice)
    location = f"/whip/{session.resource_id}"
    return web.Response(status=201, text=answer, content_type="application/sdp", headers={"Location": location})


async def _whip_delete(request: web.Request) -> web.Response:
    """WHIP: end the session at this URL."""
    session = request.app[WEBRTC_SESSIONS].get(request.match_info["resource_id"])
    if session is None:
        raise _error(web.HTTPNotFound, "no such session (it has ended, or never existed)")
    await session.close("the client ended the session (WHIP DELETE)")
    return web.Response(status=204)


async def _open(request: web.Request, offer: str, *, voice: bool) -> tuple[WebRTCSession, str]:
    app = request.app
    try:
        return await open_session(app[ENGINE], app[WEBRTC_SESSIONS], offer, voice=voice)
    except SessionLimitError as exc:
        raise _error(web.HTTPServiceUnavailable, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}) from exc
    except OfferError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from exc


def _require_content_type(request: web.Request, expected: str) -> None:
    if request.content_type != expected:
        got = request.content_type or "none"
        raise _error(web.HTTPUnsupportedMediaType, f"Content-Type must be {expected}, got {got}")


def _error(kind: type[web.HTTPException], message: str, *, headers: dict[str, str] | None = None) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}``."""
    return kind(text=json.dumps({"error": message}), content_type="application/json", headers=headers)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every error a JSON body; a bug is logged and answered 500 without touching other requests."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {name: value for name, value in exc.headers.items() if name in ("Allow", "Retry-After")}
        return web.json_response({"error": exc.reason}, status=exc.status, headers=headers)
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal server error (logged on the server)"}, status=500)
