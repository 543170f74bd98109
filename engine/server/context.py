"""What every session of a server shares: the live parts (avatar, runtimes, scheduler, AU thread), the limit, metrics.

Built once when the server starts (loading the portrait, detecting the face and
compiling the networks takes seconds) and reached by request handlers as
``request.app[ENGINE]``; the app's cleanup closes the scheduler and the AU thread.
"""

import itertools
from dataclasses import dataclass, field

from aiohttp import web

from engine.avatar import Avatar, load_avatar, parse_face_box
from engine.backends import AUStepBackend, GeneratorBackend, create_backends
from engine.backends.model_files import resolve_source
from engine.backends.selection import default_max_batch, default_options
from engine.errors import EngineError
from engine.live.au_worker import AUWorker
from engine.live.session import LiveParts
from engine.pipeline import Renderer
from engine.scheduler import RenderScheduler
from engine.server.config import ServerConfig
from engine.server.metrics import ServerMetrics


class SessionLimitError(EngineError, RuntimeError):
    """All session slots are taken; the client should retry later (HTTP 503)."""


@dataclass
class SessionSlots:
    """Counts live sessions of every kind against ``ServerConfig.max_sessions``."""

    limit: int
    active: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def acquire(self, kind: str) -> str:
        """A new session id, or SessionLimitError when the server is full."""
        if len(self.active) >= self.limit:
            raise SessionLimitError(f"server is full: {self.limit} sessions already running; try again later")
        session_id = f"{kind}-{next(self._ids)}"
        self.active[session_id] = kind
        return session_id

    def release(self, session_id: str) -> None:
        """Free a slot (idempotent: ending a session twice frees one slot once)."""
        self.active.pop(session_id, None)


@dataclass
class EngineContext:
    """The server's shared state; ``parts`` is what each ``LiveSession`` is built from."""

    config: ServerConfig
    parts: LiveParts
    generator: GeneratorBackend
    slots: SessionSlots
    metrics: ServerMetrics

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
    avatar = load_avatar(config.avatar_path, parse_face_box(config.face_box) if config.face_box else None)
    generator, au_backend = create_backends(
        config.backend,
        resolve_source("generator", config.generator_path),
        resolve_source("cause", config.cause_path),
        default_options(config.backend, threads=config.threads, streams=config.streams, precision=config.precision),
    )
    scheduler = RenderScheduler(
        Renderer(generator),
        max_batch=config.max_batch or default_max_batch(config.backend),
        batch_window_ms=config.batch_window_ms,
        workers=generator.parallel_runs,
    )
    slots = SessionSlots(limit=config.max_sessions)
    metrics = ServerMetrics(scheduler_stats=lambda: scheduler.stats, active_sessions=lambda: slots.active)
    parts = LiveParts(avatar=avatar, au_backend=au_backend, scheduler=scheduler, au_worker=AUWorker(), observer=metrics)
    return EngineContext(config=config, parts=parts, generator=generator, slots=slots, metrics=metrics)
