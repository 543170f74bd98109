"""The listening socket: at most ``max_connections`` open at once; more are closed as soon as they are accepted.

A process that runs out of file descriptors cannot accept, open a WebRTC
session's UDP sockets or read a file, and its accept loop fails over and over.
Holding connections below what the descriptor limit allows
(``engine.server.limits.connection_limit``) keeps descriptors for the
sessions already running: a flood of connections is refused quietly (reset at
once, counted as ``connections`` in the refusals) while they carry on.
"""

import asyncio
import ssl
from collections.abc import Callable

from aiohttp import web


class _Refused(asyncio.Protocol):
    """A connection over the limit: reset at once, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.abort()


class LimitedSite(web.BaseSite):
    """A TCP site (like ``web.TCPSite``) that holds at most ``max_connections`` connections."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout_s: float = 10.0,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._max_connections = max_connections
        self._handshake_timeout_s = handshake_timeout_s
        self._on_refused = on_refused

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None

        def protocol() -> asyncio.Protocol:
            if len(server.connections) >= self._max_connections:
                if self._on_refused is not None:
                    self._on_refused()
                return _Refused()
            return server()

        self._server = await asyncio.get_running_loop().create_server(
            protocol,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._handshake_timeout_s if self._ssl_context else None,
            backlog=self._backlog,
        )
