"""One WebSocket connection with its limits applied: a rate on what it sends, a deadline on what it must take.

The session logic is elsewhere (``engine.server.websocket``); the policy is in
``engine.server.limits``. Here only the socket is watched:

- every message the client sends spends a token of the connection's bucket
  and of its address's. Pings and pongs (their own bucket), and anything
  before the session has started, end the connection with ``rate_limited``
  (1008) when the bucket is empty: a flood of them is cut off. Audio after
  the hello is slowed instead: the server stops reading until a token is
  back, so TCP pushes back on the sender, and a client streaming a recording
  as fast as it can is paced, not thrown out. Pings are answered here, not
  inside aiohttp, so that they are counted;
- every message the server sends must be taken by the client within
  ``write_timeout_s``: a client that stops reading while the server writes
  (its buffers full) is evicted, its connection dropped, so it cannot hold a
  slot or a task.
"""

import asyncio
import collections
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from engine.server.context import Gate
from engine.server.limits import TokenBucket
from engine.server.protocol import ProtocolError, message_too_big, timeout_error

log = logging.getLogger(__name__)

CLOSE_RATE_LIMITED = 1008
CONTROL_RATE_PER_S = 5.0
CONTROL_BURST = 10.0
"""Pings and pongs a connection may send: a client's heartbeat needs one every few seconds."""
PRE_SESSION_RATE_PER_S = 2.0
PRE_SESSION_BURST = 8.0
"""Before its hello is answered a connection may send only a few messages (the hello, a ping or two): a flood
there is cut after 8 messages instead of a second's worth."""
PONG_BACKLOG_BYTES = 64 * 1024
"""A ping is not answered while this much is still waiting to go to the client (it is not reading anyway)."""
HASTY_CLOSE_S = 0.1
"""How long a connection closed for flooding gets to take its close frame before it is closed, seconds."""


class ClientGone(Exception):
    """The connection closed, broke, or was dropped for not reading."""


def rate_limited(message: str) -> ProtocolError:
    """Too many messages: the connection (or its address) sent faster than the limit."""
    return ProtocolError("rate_limited", message, CLOSE_RATE_LIMITED)


class LimitedWebSocket:
    """Receive and send on ``ws`` under the gate's limits (see the module docstring)."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        gate: Gate,
        address: str,
        *,
        max_messages_per_s: float,
        write_timeout_s: float,
        close_timeout_s: float,
        max_message_bytes: int,
    ) -> None:
        self.ws = ws
        self.address = address
        self._transport = transport
        self._gate = gate
        self._control = TokenBucket(CONTROL_RATE_PER_S, burst=CONTROL_BURST)
        self._data = TokenBucket(PRE_SESSION_RATE_PER_S, burst=PRE_SESSION_BURST)
        self._started = False
        self._max_messages_per_s = max_messages_per_s
        self._write_timeout_s = write_timeout_s
        self._close_timeout_s = close_timeout_s
        self._max_message_bytes = max_message_bytes
        self._send_lock = asyncio.Lock()

    async def receive(self, timeout_s: float, what: str) -> bytes | str:
        """The next data message; ProtocolError on timeout or over the rate, ClientGone when the connection ended."""
        while True:
            if timeout_s <= 0:
                raise timeout_error(f"{what}; closing the session")
            try:
                message = await self.ws.receive(timeout=timeout_s)
            except TimeoutError:
                raise timeout_error(f"{what}; closing the session") from None
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                if message.type is WSMsgType.ERROR and getattr(message.data, "code", None) == 1009:
                    # Over the hard limit: aiohttp has already closed with 1009 before reading it.
                    log.info("%s", message_too_big(None, self._max_message_bytes).message)
                raise ClientGone(message.type.name)
            if message.type in (WSMsgType.PING, WSMsgType.PONG):
                self._spend(self._control, "pings and pongs")
                if message.type is WSMsgType.PING:
                    await self._pong(message.data)
                continue
            if self._started:
                await self._throttle()
            else:
                self._spend(self._data, "messages before the session starts")
            return message.data

    def check_open(self) -> None:
        """ClientGone if the connection has closed (a long task on the session stops early)."""
        if self.ws.closed or self._transport is None or self._transport.is_closing():
            raise ClientGone("the connection closed")

    def session_started(self) -> None:
        """The hello was answered: the connection may now send at the full rate."""
        self._data = TokenBucket(self._max_messages_per_s)
        self._started = True

    async def send(self, message: bytes | str) -> None:
        """Send one message; ClientGone if the client does not take it within the write timeout."""
        await self.send_built(lambda: message)

    async def send_built(self, build: Callable[[], bytes | str]) -> None:
        """Build a message and send it, one at a time (messages go out in the order they were built)."""
        async with self._send_lock:
            message = build()
            await self._within_write_timeout(
                self.ws.send_bytes(message) if isinstance(message, bytes) else self.ws.send_str(message)
            )

    async def _pong(self, payload: bytes) -> None:
        if self._transport is not None and self._transport.get_write_buffer_size() > PONG_BACKLOG_BYTES:
            return
        async with self._send_lock:
            await self._within_write_timeout(self.ws.pong(payload))

    async def _within_write_timeout(self, sending: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self._write_timeout_s):
                await sending
        except TimeoutError:
            self._gate.refuse("slow_reader")
            self.drop()
            raise ClientGone(f"the client took nothing for {self._write_timeout_s:g} s (not reading)") from None

    def drop(self) -> None:
        """Cut the connection now, unsent data and all (no close handshake: the client is not reading)."""
        if self._transport is not None:
            self._transport.abort()

    async def fail(self, error: ProtocolError) -> None:
        """Send the error message, then close with its code and reason (if the socket is still open).

        A connection over its rate is read no further (a flood stops costing
        parsing at once) and not waited for: its close frame would come behind
        the flood.
        """
        if self.ws.closed:
            return
        if error.code == "rate_limited" and self._transport is not None:
            self._transport.pause_reading()
            _drop_queued_messages(self.ws)
            with contextlib.suppress(ConnectionError, ClientGone, TimeoutError):
                async with asyncio.timeout(HASTY_CLOSE_S):
                    await self.send(error.to_json())
                    await self.ws.send_frame(
                        struct.pack("!H", error.close_code) + error.close_reason.encode("utf-8"), WSMsgType.CLOSE
                    )
            self._transport.close()
            return
        with contextlib.suppress(ConnectionError, ClientGone):
            await self.send(error.to_json())
        # aiohttp waits close_timeout_s for the client's close frame, then closes the transport itself;
        # the outer deadline covers a close frame the client does not take either.
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(self._write_timeout_s + self._close_timeout_s):
                await self.ws.close(code=error.close_code, message=error.close_reason.encode("utf-8"))
        if not self.ws.closed:
            self.drop()

    def _spend(self, bucket: TokenBucket, what: str) -> None:
        """A token of ``bucket`` and of the address's, or the connection ends with ``rate_limited``."""
        if not bucket.take():
            self._gate.refuse("rate_limited")
            raise rate_limited(
                f"more {what} than this connection may send ({bucket.burst:g} at once, {bucket.rate_per_s:g} a second)"
            )
        if not self._gate.address_rates.take(self.address):
            self._gate.refuse("rate_limited")
            raise rate_limited(f"too many messages per second from {self.address} over all its connections")

    async def _throttle(self) -> None:
        """Wait (not reading: TCP pushes back) until the connection and its address may send another message."""
        while (wait_s := max(self._data.delay_s(), self._gate.address_rates.delay_s(self.address))) > 0:
            self._gate.refuse("throttled")
            await asyncio.sleep(wait_s)
        self._data.take()
        self._gate.address_rates.take(self.address)


def _drop_queued_messages(ws: web.WebSocketResponse) -> None:
    """Forget the messages aiohttp has parsed but nobody will read (a flooding connection's).

    aiohttp parses every frame a read brings into its queue at once; empty
    pings weigh 0 bytes there, so a 30 KB burst is 5,000 queued messages. The
    queue sits in a reference cycle with the connection, so without this they
    are freed only by a full garbage collection, a long stop of the event loop
    under a ping flood (``bench chaos``; figures in bench/README.md). Cleared
    here, they go at once. This reaches
    into aiohttp's private ``WebSocketResponse._reader._buffer``; if that
    changes, nothing breaks (the messages wait for the collector again).
    """
    buffer = getattr(getattr(ws, "_reader", None), "_buffer", None)
    if isinstance(buffer, collections.deque):
        buffer.clear()
