"""Offline rendering: an audio file in, an mp4 of the avatar speaking it out.

It drives the same streaming chain as a live session (converter, streaming
log-mel, CAUSE with state, renderer), pushing the file in 20 ms chunks as a
browser would send them, so what a file renders is what a call shows.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.au.liveness import LivenessSettings
from engine.audio import SAMPLE_RATE_HZ, load_audio_file
from engine.avatar import Avatar
from engine.backends.base import AUStepBackend, GeneratorBackend
from engine.errors import EngineError
from engine.output.mp4 import Mp4Writer
from engine.pipeline.renderer import FaceRenderer, Renderer, RenderRequest
from engine.pipeline.session import Session

CHUNK_SAMPLES = SAMPLE_RATE_HZ * 20 // 1000
"""20 ms at 16 kHz: the packet size of a browser's Opus stream."""


class EmptyAudioError(EngineError, ValueError):
    """The audio file decodes to no samples: there is nothing to animate."""


@dataclass(frozen=True)
class RenderReport:
    """What a render produced and how long it took (wall clock, this machine)."""

    output: Path
    frames: int
    fps: int
    audio_seconds: float
    wall_seconds: float
    render_ms_mean: float

    @property
    def realtime_factor(self) -> float:
        """Audio seconds rendered per wall second (above 1 is faster than real time)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def render_file(
    audio_path: str | Path,
    output_path: str | Path,
    *,
    avatar: Avatar,
    faces: FaceRenderer | GeneratorBackend,
    au_backend: AUStepBackend,
    fps: int = 25,
    progress: bool = True,
    liveness: LivenessSettings | None = None,
) -> RenderReport:
    """Render ``audio_path`` spoken by ``avatar`` to an H.264/AAC mp4 at ``fps``.

    ``liveness``: blinks, smoothing, head and idle motion (None: the defaults).
    faces: the face renderer (``engine.pipeline.renderer_choice``); a bare
    generator runtime means GANimation with absolute AUs.

    The file appears at ``output_path`` only when complete; a failure midway
    removes the partial file instead of leaving a truncated video behind.
    """
    started = time.perf_counter()
    audio = load_audio_file(audio_path)
    if audio.size == 0:
        raise EmptyAudioError(f"{audio_path}: the audio has no samples, so there is nothing to render")
    session = Session(au_backend, fps=fps, liveness=liveness)
    renderer = Renderer(faces)
    height, width = avatar.portrait.shape[:2]
    render_ms: list[float] = []

    def emit(frames: list, writer: Mp4Writer) -> None:
        for video_frame in renderer.render([RenderRequest(avatar, f) for f in frames]):
            writer.write_frame(video_frame.rgb)
            start_s, end_s = video_frame.trace.render_start_s, video_frame.trace.render_end_s
            assert start_s is not None and end_s is not None  # the renderer stamps both
            render_ms.append((end_s - start_s) * 1e3)

    output = Path(output_path)
    partial = output.with_name(f".{output.name}.partial.mp4")
    try:
        with Mp4Writer(partial, width=width, height=height, fps=fps) as writer:
            chunks = range(0, audio.size, CHUNK_SAMPLES)
            for start in tqdm(chunks, desc="rendering", unit="chunk", disable=not progress, leave=False):
                chunk = audio[start : start + CHUNK_SAMPLES]
                writer.write_audio(chunk)
                emit(session.push_audio(chunk), writer)
            emit(session.finish(), writer)
            frames = writer.frames_written
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, output)
    return RenderReport(
        output=output,
        frames=frames,
        fps=fps,
        audio_seconds=audio.size / SAMPLE_RATE_HZ,
        wall_seconds=time.perf_counter() - started,
        render_ms_mean=float(np.mean(render_ms)) if render_ms else 0.0,
    )
