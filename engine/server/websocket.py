"""The WebSocket API at ``GET /ws``: PCM in; AU / blendshape records, optionally JPEG pictures, out.

A transport adapter on :class:`engine.live.LiveSession`. Everything about
messages (validation, byte layouts, error codes) lives in
:mod:`engine.server.protocol`, which does no I/O; everything about the session
(AU thread, deadlines, newest-wins, traces) in the live session. This module
only moves messages between the socket and the session. One aiohttp server
serves HTTP, WebRTC signalling and this API on one port.

Per connection: the hello must come first, within :data:`HELLO_TIMEOUT_S`;
then a session slot is taken (none free: error ``server_full``, close 1013),
binary PCM goes into the live session as it arrives, and every AU frame it
completes is sent as a record at once, in order (the session's AU output).
The client's ``{"type": "end"}`` finishes the session: the last frames (up to
the audio's end) are sent, then ``{"type": "end", ...}`` and a normal close.
Bad input ends only its own connection, with an error message and a close
code. The slot is released and the live session closed however the
connection ends, a client vanishing mid-stream included.

Pictures (``"frames"`` in the hello's outputs) are the session's video
output: best effort, newest first (a slow render or a slow client skips
frames, never queues them). AU records are never skipped.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiohttp import WSMsgType, web

from engine.audio import AudioFormatError
from engine.live import LiveSession
from engine.output.jpeg import encode_jpeg
from engine.output.pictures import output_dimensions
from engine.pipeline import AUFrame, VideoFrame
from engine.server.context import ENGINE, EngineContext, SessionLimitError
from engine.server.protocol import (
    AudioChunk,
    EndOfStream,
    Hello,
    ProtocolError,
    ServerConnection,
    elapsed_us,
    internal_error,
    message_too_big,
    server_full,
    timeout_error,
)

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


_AFTER_END_POLL_S = 0.001
"""How long the server looks for a message that followed the client's end (aiohttp reads 0 as "no timeout")."""


class _ClientGone(Exception):
    """The connection closed (or broke) while we were waiting for a message."""


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    """Serve one WebSocket session (mounted at ``GET /ws``); see the module docstring."""
    context = request.app[ENGINE]
    config = context.config
    ws = web.WebSocketResponse(
        compress=False,  # float32 and PCM do not deflate well; compression only costs CPU and latency
        heartbeat=HEARTBEAT_S,
        max_msg_size=config.max_message_bytes * HARD_LIMIT_FACTOR,
    )
    await ws.prepare(request)
    protocol = ServerConnection(
        max_message_bytes=config.max_message_bytes,
        default_fps=config.fps,
        idle_timeout_s=config.session_idle_timeout_s,
    )
    hello_timeout_s = min(HELLO_TIMEOUT_S, config.session_idle_timeout_s)
    try:
        hello = protocol.receive(await _receive(ws, protocol, hello_timeout_s, "no hello"))
        assert isinstance(hello, Hello)
        try:
            session_id = context.slots.acquire(SESSION_KIND)
        except SessionLimitError as exc:
            raise server_full(str(exc)) from None
    except ProtocolError as error:
        await _fail(ws, error)
        return ws
    except _ClientGone:
        return ws
    log.info("websocket session %s started: %s", session_id, hello)
    stream = _Stream(ws, context, protocol, hello, session_id)
    try:
        await stream.run()
    except ProtocolError as error:
        log.info("websocket session %s refused input: %s", session_id, error.message)
        await _fail(ws, error)
    except (_ClientGone, ConnectionError):
        log.info("websocket session %s: client gone", session_id)
    except Exception:
        log.exception("websocket session %s failed", session_id)
        await _fail(ws, internal_error())
    finally:
        await stream.close()
        context.slots.release(session_id)
        log.info("websocket session %s ended", session_id)
    return ws


class _Stream:
    """One accepted session: moves audio into its live session, records and pictures out."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        context: EngineContext,
        protocol: ServerConnection,
        hello: Hello,
        session_id: str,
    ) -> None:
        assert hello.fps is not None
        self._ws = ws
        self._protocol = protocol
        self._hello = hello
        self._session_id = session_id
        self._idle_timeout_s = context.config.session_idle_timeout_s
        self._send_lock = asyncio.Lock()
        self._live = LiveSession(
            context.parts, session_id, fps=hello.fps, liveness=context.config.liveness, on_failure=self._fail_soon
        )
        self._live.add_au_output(_RecordOutput(self))
        self._frame_size: tuple[int, int] | None = None
        if "frames" in hello.outputs:
            portrait = context.avatar.portrait
            self._frame_size = output_dimensions(portrait.shape[0], portrait.shape[1], context.config.output_size_px)
            self._live.add_video_output(_JpegOutput(self, self._frame_size))

    @property
    def protocol(self) -> ServerConnection:
        return self._protocol

    async def run(self) -> None:
        """Ready, then audio until the client's end; flush, end message, normal close."""
        size_px = None if self._frame_size is None else max(self._frame_size)
        lookahead_samples = self._live.lookahead_samples
        await self.send(
            lambda: self._protocol.ready(self._session_id, lookahead_samples=lookahead_samples, frame_size_px=size_px)
        )
        hello = self._hello
        while True:
            data = await _receive(self._ws, self._protocol, self._idle_timeout_s, "no audio")
            arrival_s = time.perf_counter()
            event = self._protocol.receive(data)
            if isinstance(event, AudioChunk):
                try:
                    await self._live.push_audio(
                        event.samples, rate_hz=hello.sample_rate_hz, channels=hello.channels, arrival_s=arrival_s
                    )
                except AudioFormatError as exc:
                    raise ProtocolError("bad_audio", str(exc), 1007) from None
            elif isinstance(event, EndOfStream):
                break
        await self._live.finish()
        await self._refuse_messages_after_end()
        await self.send(lambda: self._protocol.end(self._live.samples_received))
        await self._ws.close(code=1000, message=b"end of stream")

    async def _refuse_messages_after_end(self) -> None:
        """A message that arrived after the client's end (by the time the last records are out) is an error."""
        try:
            message = await self._ws.receive(timeout=_AFTER_END_POLL_S)
        except TimeoutError:
            return
        if message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
            self._protocol.receive(message.data)  # raises unexpected_message
        raise _ClientGone(message.type.name)

    async def send(self, build: Callable[[], bytes | str]) -> None:
        """Build a message and send it, one at a time: records go out in the order they are numbered."""
        async with self._send_lock:
            message = build()
            if isinstance(message, bytes):
                await self._ws.send_bytes(message)
            else:
                await self._ws.send_str(message)

    async def close(self) -> None:
        """End the live session (the connection is over, however it ended)."""
        await self._live.close()

    def _fail_soon(self, reason: str) -> None:
        """The live session cannot go on: end the connection with an internal error (its receive loop then stops)."""
        log.error("websocket session %s: %s", self._session_id, reason)
        asyncio.get_running_loop().create_task(_fail(self._ws, internal_error()))


class _RecordOutput:
    """Every AU frame as a record (AUs and/or blendshapes), in order: the session's AU output."""

    name = SESSION_KIND

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    async def send_aus(self, frame: AUFrame) -> None:
        protocol = self._stream.protocol
        trace = frame.trace
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
        await self._stream.send(
            lambda: protocol.jpeg(
                frame.index, trace.shown_sample, elapsed_us(trace.audio_arrival_s, time.perf_counter()), jpeg
            )
        )
        trace.send_s = time.perf_counter()

    async def close(self) -> None:
        """Nothing to release: the connection belongs to the handler."""


async def _receive(ws: web.WebSocketResponse, protocol: ServerConnection, timeout_s: float, what: str) -> bytes | str:
    """The next data message; ProtocolError on timeout, _ClientGone when the connection ended."""
    try:
        message = await ws.receive(timeout=timeout_s)
    except TimeoutError:
        raise timeout_error(f"{what} for {timeout_s:g} s; closing the session") from None
    if message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
        return message.data
    if message.type is WSMsgType.ERROR and getattr(message.data, "code", None) == 1009:
        # Over the hard limit: aiohttp has already closed with 1009 before reading it.
        log.info("%s", message_too_big(None, protocol.max_message_bytes).message)
    raise _ClientGone(message.type.name)


async def _fail(ws: web.WebSocketResponse, error: ProtocolError) -> None:
    """Send the error message, then close with its code and reason (if the socket is still open)."""
    if ws.closed:
        return
    with contextlib.suppress(ConnectionError):
        await ws.send_str(error.to_json())
    with contextlib.suppress(ConnectionError):
        await ws.close(code=error.close_code, message=error.close_reason.encode("utf-8"))
