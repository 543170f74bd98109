"""What every session of a server shares: the live parts (avatar, runtimes, scheduler, AU thread), the limit, metrics.

Built once when the server starts (loading the portrait, detecting the face and
compiling the networks takes seconds) and reached by request handlers as
``request.app[ENGINE]``; the app's cleanup closes the scheduler and the AU thread.
"""

import dataclasses
import itertools
from dataclasses import dataclass, field

from aiohttp import web

from engine.avatar import Avatar
from engine.backends import AUStepBackend, GeneratorBackend
from engine.errors import EngineError
from engine.live.au_worker import AUWorker
from engine.live.build import PartsSettings, build_parts
from engine.live.session import LiveParts
from engine.output.whip_sessions import publish_every_session
from engine.pipeline.renderer_choice import RendererChoice
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
    renderer_choice: RendererChoice
    """Which face renderer draws the avatar and why (``describe()`` is the line to show)."""

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
    metrics = ServerMetrics(scheduler_stats=lambda: scheduler.stats, active_sessions=lambda: slots.active)
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
    )
