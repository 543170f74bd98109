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

from engine.server.context import ENGINE
from engine.server.limits import connection_limit

HANDLER_WAIT_SHARE = 0.2
"""Share of ``drain_timeout_s`` that request handlers still running after the drain get before they are
cancelled (the drain itself takes ``engine.server.app.DRAIN_SHARE``; closing the scheduler the rest)."""


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


async def start_listening(
    app: web.Application, *, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, LimitedSite]:
    """Serve ``app`` (made by ``create_app``) on ``host:port`` with its config's timeouts and connection limit.

    Stop it with ``runner.cleanup()``: the drain, then the cleanup, as on SIGTERM.
    """
    context = app[ENGINE]
    config = context.config
    runner = web.AppRunner(
        app,
        handle_signals=False,
        keepalive_timeout=config.header_timeout_s,  # also the deadline of a new connection's first request
        shutdown_timeout=HANDLER_WAIT_SHARE * config.drain_timeout_s,
    )
    await runner.setup()
    site = LimitedSite(
        runner,
        host,
        port,
        max_connections=connection_limit(config.max_sessions, config.max_connections),
        ssl_context=ssl_context,
        handshake_timeout_s=config.header_timeout_s,
        on_refused=lambda: context.gate.refuse("connections"),
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site
