"""The WebSocket API at ``GET /ws``: PCM in; AU / blendshape records, optionally JPEG pictures, out.

A transport adapter on :class:`engine.live.LiveSession`. Everything about
messages (validation, byte layouts, error codes) lives in
:mod:`engine.server.protocol`, which does no I/O; everything about the session
(AU thread, deadlines, newest-wins, traces) in the live session; the limits
on the connection in :mod:`engine.server.ws_connection` and
:mod:`engine.server.limits`. This module only moves messages between the
socket and the session. One aiohttp server serves HTTP, WebRTC signalling and
this API on one port.

Before the upgrade: the Origin and the token are checked (401/403), and the
client's address may have only a few connections waiting for their hello
(429). Per connection: the hello must come first, within
:data:`HELLO_TIMEOUT_S`; then a session slot is taken (none free: error
``server_full``, close 1013), binary PCM goes into the live session as it
arrives (at most ``max_audio_speed`` times faster than real time, fed to the
shared AU thread in short pieces so that sessions take turns), and every AU
frame it completes is sent as a record at once, in order (the session's AU
output). The client's ``{"type": "end"}`` finishes the session: the last
frames (up to the audio's end) are sent, then ``{"type": "end", ...}`` and a
normal close; anything the client sends after its end is refused
(``unexpected_message``). A session whose audio stops (less than half real
time for ``session_idle_timeout_s``) is closed with ``timeout``. Bad input
ends only its own connection, with an error message and a close code. The
slot is released and the live session closed however the connection ends, a
client vanishing mid-stream or being evicted for not reading included. On
shutdown every connection gets ``shutting_down`` and close 1001.

Pictures (``"frames"`` in the hello's outputs) are the session's video
output: best effort, newest first (a slow render or a slow client skips
frames, never queues them). AU records are never skipped.

Avatar apps (the hello's ``"forward"``: VMC, VTube Studio, Live Link) are
one more AU output (``engine.output.forward``), opened before the ready: a
kind or name the operator did not allow is ``forward_refused``, one that
cannot start (held by another session, the app unreachable or refusing) is
``forward_unavailable``. An app that fails mid-session is dropped and the
client told (``forward_stopped``); the records go on.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import numpy as np
from aiohttp import web

from engine.audio import AudioFormatError
from engine.live import LiveSession
from engine.output.errors import ForwardRefused, OutputUnavailable
from engine.output.jpeg import encode_jpeg
from engine.output.pictures import output_dimensions
from engine.pipeline import AUFrame, VideoFrame
from engine.server.access import authorize, check_connect_rate, client_address
from engine.server.auth import SESSION_SCOPE, WS_SUBPROTOCOL
from engine.server.context import ENGINE, EngineContext, HolderLimitError, SessionLimitError
from engine.server.http_errors import json_error
from engine.server.limits import AudioActivity, AudioPacer, TooManyPending, audio_pieces
from engine.server.protocol import (
    AudioChunk,
    EndOfStream,
    Hello,
    ProtocolError,
    ServerConnection,
    elapsed_us,
    forward_refused,
    forward_unavailable,
    internal_error,
    server_full,
)
from engine.server.ws_connection import ClientGone, LimitedWebSocket

log = logging.getLogger(__name__)

HEARTBEAT_S = 60.0
"""After this long without a message from the client the server pings it; a client that does not answer
within half of it (30 s) is disconnected (aiohttp's heartbeat). Long, so that a game that blocks its main
loop for a while keeps its session; PROTOCOL.md states the rule."""
HELLO_TIMEOUT_S = 10.0
"""The hello must arrive this soon after the upgrade (or within the idle timeout, if shorter)."""
HARD_LIMIT_FACTOR = 4
"""aiohttp itself cuts messages over this many times ``max_message_bytes`` before buffering them,
with a bare close 1009; between the limit and that, the protocol refuses them with a reason."""
SESSION_KIND = "ws"
"""Prefix of WebSocket session ids in ``SessionSlots``."""
RETRY_AFTER_S = 5
"""What a 429 (too many connections waiting) tells the client to wait, seconds."""

WEBSOCKETS = web.AppKey("websockets", set[LimitedWebSocket])
"""The open WebSocket connections, for the drain on shutdown."""


def shutting_down() -> ProtocolError:
    """The server is stopping: close 1001 (going away); the client may reconnect to another one later."""
    return ProtocolError("shutting_down", "the server is shutting down; reconnect later", 1001)


async def close_all_websockets(app: web.Application) -> None:
    """Send every open connection ``shutting_down`` and close it with 1001 (the drain on SIGTERM)."""
    connections = list(app.get(WEBSOCKETS, ()))
    await asyncio.gather(*(connection.fail(shutting_down()) for connection in connections), return_exceptions=True)


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    """Serve one WebSocket session (mounted at ``GET /ws``); see the module docstring."""
    context = request.app[ENGINE]
    gate = context.gate
    config = context.config
    grant = authorize(request, SESSION_SCOPE)
    if gate.draining:
        raise json_error(web.HTTPServiceUnavailable, "the server is shutting down")
    check_connect_rate(request)
    address = client_address(request)
    try:
        gate.pending.acquire(address)
    except TooManyPending as exc:
        gate.refuse("pending")
        raise json_error(web.HTTPTooManyRequests, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    ws = web.WebSocketResponse(
        compress=False,  # float32 and PCM do not deflate well; compression only costs CPU and latency
        heartbeat=HEARTBEAT_S,
        autoping=False,  # pings are counted and answered by LimitedWebSocket
        max_msg_size=config.max_message_bytes * HARD_LIMIT_FACTOR,
        protocols=(WS_SUBPROTOCOL,),
        timeout=_close_timeout_s(config.drain_timeout_s),  # the close handshake's wait
    )
    try:
        await ws.prepare(request)
    except BaseException:
        gate.pending.release(address)
        raise
    connection = LimitedWebSocket(
        ws,
        request.transport,
        gate,
        address,
        max_messages_per_s=config.max_messages_per_s,
        write_timeout_s=config.write_timeout_s,
        close_timeout_s=_close_timeout_s(config.drain_timeout_s),
        max_message_bytes=config.max_message_bytes,
    )
    connections = request.app[WEBSOCKETS]
    connections.add(connection)
    try:
        await _serve(connection, context, grant.holder, grant.max_sessions)
    except Exception:  # a bug: end this connection cleanly, never answer 500 inside a WebSocket
        log.exception("websocket connection from %s failed", address)
        await connection.fail(internal_error())
    finally:
        connections.discard(connection)
    return ws


def _close_timeout_s(drain_timeout_s: float) -> float:
    """How long a close waits for the client's close frame: short enough for the drain on shutdown."""
    return drain_timeout_s / 4


async def _serve(connection: LimitedWebSocket, context: EngineContext, holder: str, holder_limit: int | None) -> None:
    """Hello, then the session until it ends; the pending count is released once the hello is answered."""
    config = context.config
    protocol = ServerConnection(
        max_message_bytes=config.max_message_bytes,
        default_fps=config.fps,
        idle_timeout_s=config.session_idle_timeout_s,
    )
    hello_timeout_s = min(HELLO_TIMEOUT_S, config.session_idle_timeout_s)
    try:
        hello = protocol.receive(await connection.receive(hello_timeout_s, f"no hello for {hello_timeout_s:g} s"))
        assert isinstance(hello, Hello)
        try:
            session_id = context.slots.acquire(SESSION_KIND, holder=holder, holder_limit=holder_limit)
        except SessionLimitError as exc:
            raise server_full(str(exc)) from None
        except HolderLimitError as exc:
            raise ProtocolError("too_many_sessions", str(exc), 1008) from None
    except ProtocolError as error:
        await connection.fail(error)
        return
    except ClientGone:
        return
    finally:
        context.gate.pending.release(connection.address)
    connection.session_started()
    log.info("websocket session %s started: %s", session_id, hello)
    stream = _Stream(connection, context, protocol, hello, session_id)
    try:
        await stream.run()
    except ProtocolError as error:
        log.info("websocket session %s refused input: %s", session_id, error.message)
        await connection.fail(error)
    except (ClientGone, ConnectionError) as exc:
        log.info("websocket session %s: client gone (%s)", session_id, exc)
    finally:
        await stream.close()
        context.slots.release(session_id)
        log.info("websocket session %s ended", session_id)


class _Stream:
    """One accepted session: moves audio into its live session, records and pictures out."""

    def __init__(
        self,
        connection: LimitedWebSocket,
        context: EngineContext,
        protocol: ServerConnection,
        hello: Hello,
        session_id: str,
    ) -> None:
        assert hello.fps is not None
        config = context.config
        self._connection = connection
        self._protocol = protocol
        self._hello = hello
        self._session_id = session_id
        self._forwarder = context.forwarder
        self._activity = AudioActivity(config.session_idle_timeout_s)
        self._pacer = AudioPacer(config.max_audio_speed)
        self._live = LiveSession(
            context.parts, session_id, fps=hello.fps, liveness=config.liveness, on_failure=self._fail_soon
        )
        self._live.add_au_output(_RecordOutput(self))
        self._frame_size: tuple[int, int] | None = None
        if "frames" in hello.outputs:
            portrait = context.avatar.portrait
            self._frame_size = output_dimensions(portrait.shape[0], portrait.shape[1], config.output_size_px)
            self._live.add_video_output(_JpegOutput(self, self._frame_size))

    @property
    def protocol(self) -> ServerConnection:
        return self._protocol

    async def run(self) -> None:
        """Forwarding, ready, then audio until the client's end; flush, end message, normal close."""
        forward = await self._start_forwarding()
        size_px = None if self._frame_size is None else max(self._frame_size)
        lookahead_samples = self._live.lookahead_samples
        await self.send(
            lambda: self._protocol.ready(
                self._session_id, lookahead_samples=lookahead_samples, frame_size_px=size_px, forward=forward
            )
        )
        while True:
            data = await self._receive()
            arrival_s = time.perf_counter()
            event = self._protocol.receive(data)
            if isinstance(event, AudioChunk):
                await self._push(event.samples, arrival_s)
            elif isinstance(event, EndOfStream):
                break
        await self._finish()

    async def _start_forwarding(self) -> list[tuple[str, str]]:
        """Open the avatar apps the hello asked for (all or none); (kind, destination name) of each."""
        if not self._hello.forward:
            return []
        assert self._hello.fps is not None
        forwards = self._forwarder.session(self._session_id, fps=self._hello.fps, on_stopped=self._forward_stopped)
        try:
            active = await forwards.choose(list(self._hello.forward.items()))
        except ForwardRefused as exc:
            raise forward_refused(str(exc)) from None
        except OutputUnavailable as exc:
            raise forward_unavailable(str(exc)) from None
        self._live.add_au_output(forwards)
        self._activity = AudioActivity(self._activity.idle_timeout_s)  # VTube Studio may have taken seconds
        return active

    async def _forward_stopped(self, kind: str, destination: str, message: str) -> None:
        with contextlib.suppress(ClientGone, ConnectionError):  # gone or evicted: the handler's next receive sees it
            await self.send(lambda: self._protocol.forward_stopped(kind, destination, message))

    async def _receive(self) -> bytes | str:
        idle_s = self._activity.idle_timeout_s
        return await self._connection.receive(
            self._activity.remaining_s(), f"no audio for {idle_s:g} s (less than half real time)"
        )

    async def _push(self, samples: np.ndarray, arrival_s: float) -> None:
        """Audio into the live session, paced and in pieces (the shared AU thread serves sessions in turn)."""
        if samples.shape[0] == 0:
            return  # an empty message: nothing to hear, and no sign of life either (AudioActivity)
        rate_hz = self._hello.sample_rate_hz
        for piece in audio_pieces(samples, rate_hz):
            await self._pacer.admit(piece.shape[0] / rate_hz)
            self._connection.check_open()  # a paced message can take seconds: stop once the client has left
            try:
                await self._live.push_audio(piece, rate_hz=rate_hz, channels=self._hello.channels, arrival_s=arrival_s)
            except AudioFormatError as exc:
                raise ProtocolError("bad_audio", str(exc), 1007) from None
        self._activity.add(samples.shape[0] / rate_hz)

    async def _finish(self) -> None:
        """The last frames and the end message, while watching for anything the client sends after its end."""
        watcher = asyncio.ensure_future(self._receive())
        finishing = asyncio.ensure_future(self._flush())
        try:
            await asyncio.wait({watcher, finishing}, return_when=asyncio.FIRST_COMPLETED)
            if watcher.done():  # the client sent something after its end, or left, or broke a limit
                self._protocol.receive(watcher.result())  # raises: unexpected_message, or the watcher's error
            await finishing
        finally:
            for task in (watcher, finishing):
                task.cancel()
            await asyncio.gather(watcher, finishing, return_exceptions=True)
        await self._connection.ws.close(code=1000, message=b"end of stream")

    async def _flush(self) -> None:
        await self._live.finish()
        await self.send(lambda: self._protocol.end(self._live.samples_received))

    async def send(self, build: Callable[[], bytes | str]) -> None:
        """Build a message and send it; the connection sends one at a time, so records go out in numbered order."""
        await self._connection.send_built(build)

    async def close(self) -> None:
        """End the live session (the connection is over, however it ended)."""
        await self._live.close()

    def _fail_soon(self, reason: str) -> None:
        """The live session cannot go on: end the connection with an internal error (its receive loop then stops)."""
        log.error("websocket session %s: %s", self._session_id, reason)
        asyncio.get_running_loop().create_task(self._connection.fail(internal_error()))


class _RecordOutput:
    """Every AU frame as a record (AUs and/or blendshapes), in order: the session's AU output."""

    name = SESSION_KIND

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    async def send_aus(self, frame: AUFrame) -> None:
        protocol = self._stream.protocol
        trace = frame.trace
        with contextlib.suppress(ClientGone, ConnectionError):  # gone or evicted: the handler's next receive sees it
            await self._stream.send(
                lambda: protocol.frame(
                    frame.index, trace.shown_sample, elapsed_us(trace.audio_arrival_s, time.perf_counter()), frame.aus
                )
            )

    async def close(self) -> None:
        """Nothing to release: the connection belongs to the handler."""


class _JpegOutput:
    """Rendered frames as JPEG records, newest first (the session's video output)."""

    name = SESSION_KIND

    def __init__(self, stream: _Stream, size: tuple[int, int]) -> None:
        self._stream = stream
        self._size = size

    async def send_video(self, frame: VideoFrame) -> None:
        jpeg = await asyncio.to_thread(encode_jpeg, frame.rgb, self._size)
        protocol = self._stream.protocol
        trace = frame.trace
        with contextlib.suppress(ClientGone, ConnectionError):  # gone or evicted: the handler's next receive sees it
            await self._stream.send(
                lambda: protocol.jpeg(
                    frame.index, trace.shown_sample, elapsed_us(trace.audio_arrival_s, time.perf_counter()), jpeg
                )
            )
        trace.send_s = time.perf_counter()

    async def close(self) -> None:
        """Nothing to release: the connection belongs to the handler."""
