"""The WebSocket API at ``GET /ws``: PCM in; AU / blendshape records, optionally JPEG pictures, out.

Everything about messages (validation, byte layouts, error codes) lives in
:mod:`engine.server.protocol`, which does no I/O; this module only moves
messages between the socket, the session and the scheduler. One aiohttp
server serves HTTP, WebRTC signalling and this API on one port.

Per connection: the hello must come first, within :data:`HELLO_TIMEOUT_S`;
then a session slot is taken (none free: error ``server_full``, close 1013),
binary PCM is fed to an :class:`engine.pipeline.Session` as it arrives, and
every AU frame it completes is sent as a record at once, in order. The
client's ``{"type": "end"}`` finishes the session: the last frames (up to the
audio's end) are sent, then ``{"type": "end", ...}`` and a normal close. Bad
input ends only its own connection, with an error message and a close code.
The slot is released and the scheduler told to forget the session however
the connection ends, a client vanishing mid-stream included.

Pictures (``"frames"`` in the hello's outputs) are best effort: one render is
in flight per session, and AU frames that complete meanwhile are skipped but
the newest (the scheduler's policy: never let latency grow). AU records are
never skipped.
"""

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Callable

import numpy as np
from aiohttp import WSMsgType, web
from PIL import Image

from engine.audio import AudioFormatError
from engine.pipeline import AUFrame, RenderRequest, Session
from engine.server.au_worker import AU_WORKER, AUWorker
from engine.server.context import ENGINE, EngineContext, SessionLimitError
from engine.server.pictures import output_dimensions
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
JPEG_QUALITY = 85
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
    stream = _Stream(ws, context, request.app[AU_WORKER], protocol, hello, session_id)
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
        context.scheduler.forget(session_id)
        log.info("websocket session %s ended", session_id)
    return ws


class _Stream:
    """One accepted session: feeds audio to the Session and sends what comes out."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        context: EngineContext,
        au_worker: AUWorker,
        protocol: ServerConnection,
        hello: Hello,
        session_id: str,
    ) -> None:
        assert hello.fps is not None
        self._ws = ws
        self._context = context
        self._au_worker = au_worker
        self._protocol = protocol
        self._session_id = session_id
        self._idle_timeout_s = context.config.session_idle_timeout_s
        self._session = Session(
            context.au_backend, fps=hello.fps, input_rate_hz=hello.sample_rate_hz, channels=hello.channels
        )
        self._send_lock = asyncio.Lock()
        self._pictures: _Pictures | None = None
        if "frames" in hello.outputs:
            portrait = context.avatar.portrait
            size = output_dimensions(portrait.shape[0], portrait.shape[1], context.config.output_size_px)
            self._pictures = _Pictures(self, size, budget_s=1.0 / hello.fps)

    async def run(self) -> None:
        """Ready, then audio until the client's end; flush, end message, normal close."""
        lookahead_samples = self._session.due_sample(0) - self._session.shown_sample(0)
        await self.send(
            lambda: self._protocol.ready(
                self._session_id, lookahead_samples=lookahead_samples, frame_size_px=self._frame_size_px()
            )
        )
        while True:
            data = await _receive(self._ws, self._protocol, self._idle_timeout_s, "no audio")
            arrival_s = time.perf_counter()
            event = self._protocol.receive(data)
            if isinstance(event, AudioChunk):
                await self._emit(await self._push(event.samples, arrival_s))
            elif isinstance(event, EndOfStream):
                break
        await self._emit(await self._finish())
        if self._pictures is not None:
            await self._pictures.finish()
        await self._refuse_messages_after_end()
        await self.send(lambda: self._protocol.end(self._session.samples_received))
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
        """Stop rendering (the connection is over, however it ended)."""
        if self._pictures is not None:
            await self._pictures.cancel()

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def context(self) -> EngineContext:
        return self._context

    @property
    def protocol(self) -> ServerConnection:
        return self._protocol

    def _frame_size_px(self) -> int | None:
        return None if self._pictures is None else max(self._pictures.size)

    async def _push(self, samples: np.ndarray, arrival_s: float) -> list[AUFrame]:
        """Resample, log-mel, CAUSE: on the AU thread that every session shares."""
        try:
            return await self._au_worker.run(lambda: self._session.push_audio(samples, arrival_s=arrival_s))
        except AudioFormatError as exc:
            raise ProtocolError("bad_audio", str(exc), 1007) from None

    async def _finish(self) -> list[AUFrame]:
        """``Session.finish()`` on the AU thread too (its last CAUSE steps share the runtime)."""
        return await self._au_worker.run(self._session.finish)

    async def _emit(self, frames: list[AUFrame]) -> None:
        for frame in frames:
            await self.send(lambda frame=frame: self._frame_record(frame))
            if self._pictures is None:
                frame.trace.send_s = time.perf_counter()
                self._context.metrics.frame_sent("ws", frame.trace)
            else:
                self._pictures.offer(frame)

    def _frame_record(self, frame: AUFrame) -> bytes | str:
        latency = elapsed_us(frame.trace.audio_arrival_s, time.perf_counter())
        return self._protocol.frame(frame.index, frame.trace.shown_sample, latency, frame.aus)


class _Pictures:
    """Renders a session's newest AU frame through the scheduler and sends it as a JPEG record.

    One render is in flight at a time; a frame offered meanwhile replaces the
    one waiting, so a slow render skips frames instead of queueing them.
    """

    def __init__(self, stream: _Stream, size: tuple[int, int], *, budget_s: float) -> None:
        self.size = size
        """(width, height) of the JPEG pictures, pixels."""
        self._stream = stream
        self._budget_s = budget_s
        self._waiting: AUFrame | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name=f"pictures-{stream.session_id}")

    def offer(self, frame: AUFrame) -> None:
        """Render ``frame`` next (replacing a frame still waiting); re-raise a failed render."""
        if self._task.done() and not self._task.cancelled() and self._task.exception() is not None:
            raise self._task.exception()  # type: ignore[misc]
        self._waiting = frame
        self._wake.set()

    async def finish(self) -> None:
        """Render the frame still waiting, if any, and stop."""
        self._closing = True
        self._wake.set()
        await self._task

    async def cancel(self) -> None:
        """Stop now, dropping whatever is waiting or rendering."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def _run(self) -> None:
        while True:
            if self._waiting is None:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            frame, self._waiting = self._waiting, None
            await self._render(frame)

    async def _render(self, frame: AUFrame) -> None:
        context = self._stream.context
        video = await context.scheduler.render(
            self._stream.session_id,
            RenderRequest(context.avatar, frame),
            deadline_s=frame.trace.audio_arrival_s + self._budget_s,
        )
        if video is None:  # superseded or too late: the next frame will show
            return
        jpeg = await asyncio.to_thread(encode_jpeg, video.rgb, self.size)
        protocol = self._stream.protocol
        await self._stream.send(
            lambda: protocol.jpeg(
                video.index,
                video.trace.shown_sample,
                elapsed_us(video.trace.audio_arrival_s, time.perf_counter()),
                jpeg,
            )
        )
        video.trace.send_s = time.perf_counter()
        context.metrics.frame_sent("ws", video.trace)


def encode_jpeg(rgb: np.ndarray, size: tuple[int, int], quality: int = JPEG_QUALITY) -> bytes:
    """(H, W, 3) uint8 RGB -> a JPEG file of ``size`` (width, height) pixels (resized if needed)."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


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
