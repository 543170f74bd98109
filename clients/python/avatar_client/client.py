"""A client of the engine's WebSocket API: connect, send PCM, receive records.

The wire format is ``avatar_protocol`` (the same code the server uses;
clients/PROTOCOL.md is its specification); this module only does the I/O,
with python-websockets. Neither needs the engine: the client installs with
numpy and websockets only (clients/python/pyproject.toml).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from avatar_protocol import (
    END_MESSAGE,
    End,
    ErrorMessage,
    ForwardStopped,
    FrameRecord,
    Hello,
    JpegRecord,
    Ready,
    encode_audio,
    parse_server_message,
)

DEFAULT_URL = "ws://127.0.0.1:8080/ws"
DEFAULT_CHUNK_MS = 20
"""Audio per message when streaming: 20 ms, a browser's Opus packet."""
CONNECT_TIMEOUT_S = 10.0
MAX_RECORD_BYTES = 16 * 1024 * 1024
"""The largest message accepted from the server (a JPEG record of a large picture fits)."""

Record = FrameRecord | JpegRecord


class ServerError(RuntimeError):
    """The server refused the session or ended it with an error.

    code: the protocol's error code (``"server_full"``, ``"truncated_audio"``, ...),
        ``"closed"`` when the connection ended without an error message, or
        ``"bad_reply"`` when the server's messages do not follow the protocol.
    message: the server's explanation. close_code: the WebSocket close code, if known.
    """

    def __init__(self, code: str, message: str, close_code: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.close_code = close_code


class AvatarClient:
    """One session with the engine. Use ``async with await AvatarClient.connect(...)`` or call :meth:`close`.

    Send audio with :meth:`send_audio` and :meth:`end`; read records with
    :meth:`receive` or ``async for record in client`` (which stops at the
    server's end message, kept in :attr:`end_message`). Sending and
    receiving may run in separate tasks, and should for long streams: the
    server sends records while audio is still coming.
    """

    def __init__(self, ws: ClientConnection, hello: Hello, ready: Ready):
        self.hello = hello
        self.ready = ready
        """The server's ready message: session id, fps, AU and blendshape names, limits."""
        self.end_message: End | None = None
        self.forwards_stopped: list[ForwardStopped] = []
        """Avatar apps the server stopped forwarding to mid-session (the hello's ``forward``), with why."""
        self._ws = ws

    @classmethod
    async def connect(
        cls, url: str = DEFAULT_URL, hello: Hello | None = None, *, timeout_s: float = CONNECT_TIMEOUT_S
    ) -> "AvatarClient":
        """Open a session: connect, send the hello, wait for ready.

        Raises:
            ServerError: the server refused the hello or the session (full, bad format...).
            OSError, websockets.exceptions.WebSocketException: the server cannot be reached.
        """
        hello = hello or Hello()
        ws = await connect(
            url,
            compression=None,  # PCM and float32 do not deflate well
            open_timeout=timeout_s,
            close_timeout=timeout_s,
            max_size=MAX_RECORD_BYTES,
            proxy=None,
        )
        try:
            await ws.send(hello.to_json())
            message = await _next_message(ws, timeout_s)
            if not isinstance(message, Ready):
                raise ServerError("bad_reply", f"expected the ready message, got {message!r}")
        except BaseException:
            await ws.close()
            raise
        return cls(ws, hello, message)

    async def send_audio(self, audio: np.ndarray | bytes) -> None:
        """Send one audio message: raw PCM bytes in the hello's format, or samples ((n,) or (n, channels))."""
        data = audio if isinstance(audio, bytes) else encode_audio(audio, self.hello.sample_format)
        await self._ws.send(data)

    async def end(self) -> None:
        """No more audio: the server sends the last records, its end message, and closes."""
        await self._ws.send(END_MESSAGE)

    async def receive(self) -> Record | End:
        """The next record, or the server's end message.

        A ``forward_stopped`` message is not returned: it is kept in :attr:`forwards_stopped`.

        Raises:
            ServerError: an error message, a close without the end message, or a record
                whose sections do not match the ready message.
        """
        message = await _next_message(self._ws, None)
        while isinstance(message, ForwardStopped):
            self.forwards_stopped.append(message)
            message = await _next_message(self._ws, None)
        if isinstance(message, Ready):
            raise ServerError("bad_reply", "a second ready message")
        if isinstance(message, End):
            self.end_message = message
        elif isinstance(message, FrameRecord):
            _check_sections(message, self.ready)
        return message

    async def __aiter__(self) -> AsyncIterator[Record]:
        while True:
            message = await self.receive()
            if isinstance(message, End):
                return
            yield message

    async def close(self) -> None:
        """Close the connection (normally, code 1000)."""
        await self._ws.close()

    async def __aenter__(self) -> "AvatarClient":
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()


async def _next_message(ws: ClientConnection, timeout_s: float | None) -> Ready | Record | End | ForwardStopped:
    """The next server message, parsed; ServerError for an error message or an unexpected close."""
    try:
        data = await asyncio.wait_for(ws.recv(), timeout_s)
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else None
        reason = f": {closed.rcvd.reason}" if closed.rcvd is not None and closed.rcvd.reason else ""
        raise ServerError("closed", f"the server closed the connection with code {code}{reason}", code) from None
    parsed = parse_server_message(data)
    if isinstance(parsed, ErrorMessage):
        raise ServerError(parsed.code, parsed.message, await _close_code(ws))
    return parsed


async def _close_code(ws: ClientConnection) -> int | None:
    """After an error message the server closes: wait briefly for its close code."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(ws.wait_closed(), 2.0)
    return ws.close_code


def _check_sections(record: FrameRecord, ready: Ready) -> None:
    """A record's sections must be the ones the ready message named."""
    for name, values, names in (
        ("AU", record.aus, ready.au_names),
        ("blendshape", record.blendshapes, ready.blendshape_names),
    ):
        size = 0 if values is None else values.size
        if size != len(names):
            raise ServerError("bad_reply", f"record {record.index} has {size} {name} values; ready named {len(names)}")


# ---------------------------------------------------------------- streaming a whole signal


@dataclass
class StreamResult:
    """What a streamed session returned: the ready message, every record in order, the end message."""

    ready: Ready
    frames: list[FrameRecord] = field(default_factory=list)
    pictures: list[JpegRecord] = field(default_factory=list)
    end: End | None = None
    forwards_stopped: list[ForwardStopped] = field(default_factory=list)
    """Avatar apps the server stopped forwarding to mid-session, with why."""
    wall_s: float = 0.0
    """Seconds from connecting to the end message."""


def chunks(samples: np.ndarray, sample_rate_hz: int, chunk_ms: int = DEFAULT_CHUNK_MS) -> list[np.ndarray]:
    """Cut (n,) or (n, channels) samples into messages of ``chunk_ms`` (the last may be shorter)."""
    step = max(1, sample_rate_hz * chunk_ms // 1000)
    return [samples[start : start + step] for start in range(0, samples.shape[0], step)]


async def send_paced(
    client: AvatarClient, samples: np.ndarray, *, chunk_ms: int = DEFAULT_CHUNK_MS, realtime: bool = False
) -> None:
    """Send ``samples`` (at the hello's rate) in ``chunk_ms`` messages, then the end message.

    realtime: send chunk ``k`` at ``k * chunk_ms`` after the first, as a
    microphone would; otherwise as fast as the connection takes them.
    """
    rate = client.hello.sample_rate_hz
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k, chunk in enumerate(chunks(samples, rate, chunk_ms)):
        if realtime:
            await asyncio.sleep(max(0.0, start + k * chunk_ms / 1000.0 - loop.time()))
        await client.send_audio(chunk)
    await client.end()


async def stream(
    url: str,
    samples: np.ndarray,
    hello: Hello,
    *,
    chunk_ms: int = DEFAULT_CHUNK_MS,
    realtime: bool = False,
    on_ready: Callable[[Ready], None] | None = None,
    on_record: Callable[[Record], None] | None = None,
) -> StreamResult:
    """Stream a whole signal through one session and collect every record.

    Args:
        samples: (n,) or (n, channels) at ``hello.sample_rate_hz``; int16 for
            s16le (float is scaled), float32 for f32le.
        on_ready: called with the ready message, before any record.
        on_record: called with each record as it arrives (e.g. to print it live).

    Raises:
        ServerError: the server refused the session or ended it with an error.
    """
    started = time.perf_counter()
    async with await AvatarClient.connect(url, hello) as client:
        result = StreamResult(client.ready)
        if on_ready is not None:
            on_ready(client.ready)
        sender = asyncio.create_task(send_paced(client, samples, chunk_ms=chunk_ms, realtime=realtime))
        try:
            async for record in client:
                if isinstance(record, FrameRecord):
                    result.frames.append(record)
                else:
                    result.pictures.append(record)
                if on_record is not None:
                    on_record(record)
        except BaseException:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender
            raise
        await sender
        result.end = client.end_message
        result.forwards_stopped = client.forwards_stopped
    result.wall_s = time.perf_counter() - started
    return result
