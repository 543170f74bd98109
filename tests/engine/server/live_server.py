"""A real engine server on 127.0.0.1, an OS-chosen port, for tests that talk to it over sockets."""

import asyncio
import base64
import os
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np

from engine.server.app import create_app
from engine.server.config import ServerConfig
from engine.server.context import ENGINE, EngineContext
from engine.server.listener import start_listening
from engine.server.memory import settle_heap


@dataclass(frozen=True)
class LiveServer:
    """A running server: its WebSocket URL and its engine context (to watch slots and the scheduler)."""

    host: str
    port: int
    context: EngineContext

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    async def wait_until_idle(self, timeout_s: float = 5.0) -> None:
        """Wait until every session slot is free again (sessions end asynchronously after a close)."""
        deadline = time.monotonic() + timeout_s
        while self.context.slots.active:
            if time.monotonic() > deadline:
                raise AssertionError(f"sessions still hold slots after {timeout_s} s: {self.context.slots.active}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def live_server(config: ServerConfig) -> AsyncIterator[LiveServer]:
    """``create_app(config)`` served on ``config.host`` at an OS-chosen port until the block ends."""
    app = create_app(config)
    settle_heap()  # as avatar serve does once its networks are loaded
    runner, _ = await start_listening(app, host=config.host, port=0)
    host, port = runner.addresses[0][:2]
    try:
        yield LiveServer(host, port, app[ENGINE])
    finally:
        await runner.cleanup()


class RawWebSocket:
    """A minimal hand-written WebSocket client (RFC 6455) for what real clients will not do.

    It can send a frame of any size, any opcode, and vanish without a close
    handshake (:meth:`abort`), which is how a crashed client or a pulled
    cable looks to the server.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str = "/ws") -> "RawWebSocket":
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        status = await reader.readuntil(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101"), status
        return cls(reader, writer)

    async def send(self, payload: bytes | str) -> None:
        """One masked frame: text for str, binary for bytes."""
        opcode, data = (0x1, payload.encode()) if isinstance(payload, str) else (0x2, payload)
        mask = os.urandom(4)
        length = len(data)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        self.writer.write(header + mask + _mask(data, mask))
        await self.writer.drain()

    def abort(self) -> None:
        """Drop the TCP connection at once: no close frame, no FIN handshake (RST)."""
        self.writer.transport.abort()


def _mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (RFC 6455 5.3)."""
    key = np.frombuffer((mask * ((len(data) + 3) // 4))[: len(data)], np.uint8)
    return (np.frombuffer(data, np.uint8) ^ key).tobytes()
