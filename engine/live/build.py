"""Building the parts live sessions share (avatar, runtimes, scheduler, AU thread), with or without a server.

``avatar serve`` (``engine.server.context``), ``avatar live`` and ``avatar
publish`` all need the same parts: the portrait prepared once, the generator
and CAUSE runtimes, one render scheduler and one AU thread. Loading them takes
seconds; this module does it in one place, and :func:`running_parts` starts
and stops what runs (the scheduler's tasks, the AU thread) around a program
that has no aiohttp app to do it.
"""

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from engine.avatar import Framing, load_avatar, parse_face_box
from engine.backends import GeneratorBackend, create_backends
from engine.backends.model_files import resolve_source
from engine.backends.selection import default_max_batch, default_options
from engine.live.au_worker import AUWorker
from engine.live.session import FrameObserver, LiveParts
from engine.pipeline import Renderer
from engine.pipeline.renderer_choice import RendererChoice, build_face_renderer
from engine.scheduler import RenderScheduler


@dataclass(frozen=True, kw_only=True)
class PartsSettings:
    """What to load, with the defaults of ``avatar serve`` (``engine.server.config.ServerConfig``).

    avatar_path: the portrait (None: the default astronaut); face_box: ``"x,y,w,h"``
        when detection fails. backend: runtime name (already resolved, not
        ``auto``); precision, threads, streams: its options (None: the backend's
        default, ``engine.backends.selection.default_options``); serving: those
        defaults for many sessions at once (True) or for one stream of frames.
    generator_path, cause_path: weights (None: models/weights/).
    renderer: ``auto``, ``ganimation`` or ``warp`` (``engine.pipeline.renderer_choice``);
    framing: ``portrait``, ``head`` or ``head-wide`` (``engine.avatar.framing``).
    max_batch: most frames per generator call (None: the backend's default);
    batch_window_ms: how long the scheduler waits for a batch to fill, ms.
    """

    avatar_path: Path | None = None
    face_box: str | None = None
    backend: str = "openvino"
    precision: str | None = None
    threads: int | None = None
    streams: int | None = None
    serving: bool = True
    generator_path: Path | None = None
    cause_path: Path | None = None
    renderer: str = "auto"
    framing: str = "portrait"
    max_batch: int | None = None
    batch_window_ms: float = 3.0


@dataclass(frozen=True)
class BuiltParts:
    """The shared live parts and the generator runtime behind their scheduler (for info and metrics)."""

    parts: LiveParts
    generator: GeneratorBackend
    renderer_choice: RendererChoice
    """Which face renderer draws the avatar and why (``describe()`` is the line to show)."""

    def observed_by(self, observer: FrameObserver) -> "BuiltParts":
        """The same parts, with frames counted by ``observer`` (built after the scheduler, whose stats it reads)."""
        return dataclasses.replace(self, parts=dataclasses.replace(self.parts, observer=observer))


def build_parts(settings: PartsSettings) -> BuiltParts:
    """Load the avatar and the networks; nothing runs yet (see :func:`running_parts`)."""
    face_box = parse_face_box(settings.face_box) if settings.face_box else None
    avatar = load_avatar(settings.avatar_path, face_box, cast(Framing, settings.framing))
    generator_source = resolve_source("generator", settings.generator_path)
    options = default_options(
        settings.backend,
        threads=settings.threads,
        streams=settings.streams,
        precision=settings.precision,
        serving=settings.serving,
        generator=generator_source,
    )
    generator, au_backend = create_backends(
        settings.backend, generator_source, resolve_source("cause", settings.cause_path), options
    )
    faces, choice = build_face_renderer(settings.renderer, generator_source, avatar, lambda: generator)
    renderer = Renderer(faces)
    scheduler = RenderScheduler(
        renderer,
        max_batch=settings.max_batch or default_max_batch(settings.backend),
        batch_window_ms=settings.batch_window_ms,
        workers=renderer.parallel_runs,
    )
    parts = LiveParts(avatar=avatar, au_backend=au_backend, scheduler=scheduler, au_worker=AUWorker())
    return BuiltParts(parts=parts, generator=generator, renderer_choice=choice)


@contextlib.asynccontextmanager
async def running_parts(parts: LiveParts) -> AsyncIterator[LiveParts]:
    """Start the scheduler; on exit close it and the AU thread (for programs without the server's app)."""
    await parts.scheduler.start()
    try:
        yield parts
    finally:
        await parts.scheduler.close()
        parts.au_worker.close()
