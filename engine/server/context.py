"""What every live session shares: the avatar, the runtimes, the scheduler and the session limit.

Built once when the server starts (loading the portrait, detecting the face and
compiling the networks takes seconds) and reached by request handlers as
``request.app[ENGINE]``.
"""

import itertools
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web

from engine.avatar import Avatar, Framing, load_avatar, parse_face_box
from engine.backends import AUStepBackend, GeneratorBackend, create_backends
from engine.backends.model_files import resolve_source
from engine.backends.selection import default_max_batch, default_options
from engine.pipeline import Renderer
from engine.pipeline.renderer_choice import RendererChoice, build_face_renderer
from engine.scheduler import RenderScheduler
from engine.server.config import ServerConfig
from engine.server.metrics import ServerMetrics


class SessionLimitError(RuntimeError):
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
    config: ServerConfig
    avatar: Avatar
    generator: GeneratorBackend
    au_backend: AUStepBackend
    scheduler: RenderScheduler
    slots: SessionSlots
    metrics: ServerMetrics
    renderer_choice: RendererChoice
    """Which face renderer draws the avatar and why (``describe()`` is the line to show)."""


ENGINE = web.AppKey("engine", EngineContext)


def build_context(config: ServerConfig) -> EngineContext:
    """Load the avatar and the networks and start nothing yet (the app's startup starts the scheduler)."""
    face_box = parse_face_box(config.face_box) if config.face_box else None
    avatar = load_avatar(config.avatar_path, face_box, cast(Framing, config.framing))
    generator_source = resolve_source("generator", config.generator_path)
    generator, au_backend = create_backends(
        config.backend,
        generator_source,
        resolve_source("cause", config.cause_path),
        default_options(config.backend, threads=config.threads, streams=config.streams, precision=config.precision),
    )
    faces, choice = build_face_renderer(config.renderer, generator_source, avatar, lambda: generator)
    renderer = Renderer(faces)
    scheduler = RenderScheduler(
        renderer,
        max_batch=config.max_batch or default_max_batch(config.backend),
        batch_window_ms=config.batch_window_ms,
        workers=renderer.parallel_runs,
    )
    slots = SessionSlots(limit=config.max_sessions)
    return EngineContext(
        config=config,
        avatar=avatar,
        generator=generator,
        au_backend=au_backend,
        scheduler=scheduler,
        slots=slots,
        metrics=ServerMetrics(scheduler_stats=lambda: scheduler.stats, active_sessions=lambda: slots.active),
        renderer_choice=choice,
    )
