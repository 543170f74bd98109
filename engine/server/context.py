"""What every session of a server shares: the live parts (avatar, runtimes, scheduler, AU thread), the limits,
who may come in, metrics.

Built once when the server starts (loading the portrait, detecting the face and
compiling the networks takes seconds) and reached by request handlers as
``request.app[ENGINE]``; the app's cleanup closes the scheduler and the AU thread.
"""

import dataclasses
import itertools
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from engine.avatar import Avatar
from engine.backends import AUStepBackend, GeneratorBackend
from engine.errors import EngineError
from engine.live.au_worker import AUWorker
from engine.live.build import PartsSettings, build_parts
from engine.live.session import LiveParts
from engine.output.forward import Forwarder
from engine.output.whip_sessions import publish_every_session
from engine.pipeline.renderer_choice import RendererChoice
from engine.scheduler import RenderScheduler
from engine.server.auth import Authenticator, auth_required
from engine.server.config import ServerConfig
from engine.server.limits import AddressBuckets, PendingConnections
from engine.server.metrics import ServerMetrics
from engine.server.origins import OriginPolicy


class SessionLimitError(EngineError, RuntimeError):
    """All session slots are taken; the client should retry later (HTTP 503)."""


class HolderLimitError(RuntimeError):
    """The credential used already holds as many sessions as it may (HTTP 429)."""


@dataclass
class SessionSlots:
    """Counts live sessions of every kind against ``ServerConfig.max_sessions``, and per credential holder."""

    limit: int
    active: dict[str, str] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)
    """session id -> the credential holder that opened it (``engine.server.auth.Grant.holder``)."""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def acquire(self, kind: str, *, holder: str = "anonymous", holder_limit: int | None = None) -> str:
        """A new session id; SessionLimitError when the server is full, HolderLimitError when ``holder`` is."""
        if holder_limit is not None and sum(h == holder for h in self.holders.values()) >= holder_limit:
            raise HolderLimitError(f"this token may hold {holder_limit} session(s) at once; end one first")
        if len(self.active) >= self.limit:
            raise SessionLimitError(f"server is full: {self.limit} sessions already running; try again later")
        session_id = f"{kind}-{next(self._ids)}"
        self.active[session_id] = kind
        self.holders[session_id] = holder
        return session_id

    def release(self, session_id: str) -> None:
        """Free a slot (idempotent: ending a session twice frees one slot once)."""
        self.active.pop(session_id, None)
        self.holders.pop(session_id, None)


@dataclass
class Gate:
    """Who may come in and how much each may use: credentials, names and origins, pending connections, rates.

    refusals counts what was refused, by kind (``rate_limited``, ``pending``,
    ``auth``, ``origin``, ``host``, ``slow_reader``, ``connections``...), for
    the metrics and the chaos benchmark. ``draining`` is set on SIGTERM: no new
    session starts from then on.
    """

    auth: Authenticator
    origins: OriginPolicy
    pending: PendingConnections
    address_rates: AddressBuckets
    """Messages per client address (``max_messages_per_s_per_address``)."""
    connect_rates: AddressBuckets
    """New sessions tried per client address (``max_connects_per_s_per_address``)."""
    request_rates: AddressBuckets
    """HTTP requests per client address (``max_requests_per_s_per_address``)."""
    refusals: Counter[str] = field(default_factory=Counter)
    draining: bool = False

    def refuse(self, kind: str) -> None:
        self.refusals[kind] += 1


@dataclass
class EngineContext:
    """The server's shared state; ``parts`` is what each ``LiveSession`` is built from."""

    config: ServerConfig
    parts: LiveParts
    generator: GeneratorBackend
    slots: SessionSlots
    metrics: ServerMetrics
    renderer_choice: RendererChoice
    """Which face renderer draws the avatar and why (``describe()`` is the line to show)."""
    gate: Gate
    forwarder: Forwarder
    """The avatar apps sessions may forward to, and which session holds each (``engine.output.forward``)."""

    @property
    def avatar(self) -> Avatar:
        return self.parts.avatar

    @property
    def au_backend(self) -> AUStepBackend:
        return self.parts.au_backend

    @property
    def scheduler(self) -> RenderScheduler:
        return self.parts.scheduler

    @property
    def au_worker(self) -> AUWorker:
        return self.parts.au_worker


ENGINE = web.AppKey("engine", EngineContext)


def build_context(config: ServerConfig) -> EngineContext:
    """Load the avatar and the networks and start nothing yet (the app's startup starts the scheduler)."""
    gate = build_gate(config)  # a configuration that cannot work fails before seconds of loading
    built = build_parts(
        PartsSettings(
            avatar_path=config.avatar_path,
            face_box=config.face_box,
            backend=config.backend,
            precision=config.precision,
            threads=config.threads,
            streams=config.streams,
            generator_path=config.generator_path,
            cause_path=config.cause_path,
            renderer=config.renderer,
            framing=config.framing,
            max_batch=config.max_batch,
            batch_window_ms=config.batch_window_ms,
        )
    )
    scheduler = built.parts.scheduler
    slots = SessionSlots(limit=config.max_sessions)
    metrics = ServerMetrics(
        scheduler_stats=lambda: scheduler.stats, active_sessions=lambda: slots.active, refusals=lambda: gate.refusals
    )
    built = built.observed_by(metrics)
    if config.publish_whip_url is not None:
        hook = publish_every_session(
            config.publish_whip_url,
            built.parts.avatar.portrait,
            token=config.publish_whip_token,
            size_px=config.output_size_px,
        )
        built = dataclasses.replace(built, parts=dataclasses.replace(built.parts, on_session=hook))
    return EngineContext(
        config=config,
        parts=built.parts,
        generator=built.generator,
        slots=slots,
        metrics=metrics,
        renderer_choice=built.renderer_choice,
        gate=gate,
        forwarder=Forwarder(config.forwarding),
    )


def avatar_name(config: ServerConfig) -> str:
    """The name JWTs use for the avatar this server serves: the portrait file's stem, or "default"."""
    return config.avatar_path.stem if config.avatar_path is not None else "default"


def build_gate(config: ServerConfig) -> Gate:
    """The access checks and limits of ``config``; ValueError when they cannot work (auth on, no credential)."""
    required = auth_required(
        config.auth, config.host, has_credentials=config.access_token is not None or config.jwt_secret is not None
    )
    return Gate(
        auth=Authenticator(
            required=required,
            access_token=config.access_token,
            metrics_token=config.metrics_token,
            jwt_secret=config.jwt_secret,
            avatar_name=avatar_name(config),
        ),
        origins=OriginPolicy(
            bind_host=config.host, server_names=config.server_names, allowed_origins=config.allowed_origins
        ),
        pending=PendingConnections(limit=config.max_pending, per_address_limit=config.max_pending_per_address),
        address_rates=AddressBuckets(config.max_messages_per_s_per_address),
        connect_rates=AddressBuckets(config.max_connects_per_s_per_address),
        request_rates=AddressBuckets(config.max_requests_per_s_per_address),
    )
