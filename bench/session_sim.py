"""Many live sessions in one process, on the server's own parts, fed by paced audio instead of peers.

Each simulated session does what ``engine/server/webrtc.py`` does for a peer,
with the same objects: 20 ms packets of 48 kHz stereo s16 (what aiortc's Opus
decoder yields) arrive at real-time pace, each session at its own random
phase within the 20 ms (seeded), as independent clients' packets do;
``Session.push_audio`` runs on the shared ``AUWorker`` thread; every AU frame
goes to the shared ``RenderScheduler`` with the server's deadline (audio
arrival + one frame interval); a rendered frame is converted to I420
(``PictureFormatter``, in a thread) and encoded by aiortc's VP8 encoder in the
default executor, as aiortc's sender does, one frame at a time per session.
The scheduler renders as many batches at once as the generator runtime allows
(``parallel_runs``), as the server's does. Only the network is missing: no
Opus decode, no RTP, no client.

A frame is on time when its batch ended by its deadline; late when it ended
after; skipped when it was never rendered (superseded by the session's next
frame, or expired) or finished after its successor (renders in parallel can
end out of order; the server's track drops such a frame too). The late rate
counts late and skipped frames.
"""

import asyncio
import functools
import time
from dataclasses import dataclass

import numpy as np
from aiortc import RTCRtpCodecParameters
from aiortc.codecs import get_encoder

from bench.speech import WEBRTC_RATE_HZ
from engine.avatar import Avatar
from engine.backends.base import AUStepBackend, GeneratorBackend
from engine.pipeline import AUFrame, Renderer, RenderRequest, Session
from engine.scheduler import RenderScheduler
from engine.server.au_worker import AUWorker
from engine.server.pictures import PictureFormatter
from engine.server.tracks import VIDEO_CLOCK_RATE_HZ, VIDEO_TIME_BASE

PACKET_MS = 20


@dataclass
class Outcome:
    """Frames due in the measured span of a run, by what became of them, and the batches that served them."""

    due: int = 0
    on_time: int = 0
    late: int = 0
    skipped: int = 0
    batches: int = 0
    mean_batch: float = 0.0

    @property
    def late_rate(self) -> float:
        """Late and skipped frames over frames due (0..1); 1.0 when nothing was due."""
        return (self.late + self.skipped) / self.due if self.due else 1.0


@dataclass(frozen=True)
class SimSettings:
    """fps: frame rate; size_px: output video size; seconds: measured span; warmup_s: not measured first."""

    fps: int
    size_px: int
    seconds: float
    warmup_s: float


async def run_sessions(
    sessions: int,
    *,
    generator: GeneratorBackend,
    au_backend: AUStepBackend,
    avatar: Avatar,
    audio: np.ndarray,
    max_batch: int,
    batch_window_ms: float,
    settings: SimSettings,
) -> Outcome:
    """Run ``sessions`` concurrent sessions of ``audio`` ((n, 2) int16 at 48 kHz, looped) and count frames."""
    scheduler = RenderScheduler(
        Renderer(generator), max_batch=max_batch, batch_window_ms=batch_window_ms, workers=generator.parallel_runs
    )
    worker = AUWorker()
    await scheduler.start()
    outcome = Outcome()
    start_s = time.perf_counter() + 0.1
    window = (start_s + settings.warmup_s, start_s + settings.warmup_s + settings.seconds)
    phases_s = np.random.default_rng(sessions).uniform(0.0, PACKET_MS / 1000, sessions)
    try:
        feeders = [
            _feed(
                index,
                float(phases_s[index]),
                scheduler,
                worker,
                au_backend,
                avatar,
                audio,
                start_s,
                window,
                settings,
                outcome,
            )
            for index in range(sessions)
        ]
        await asyncio.gather(*feeders)
        stats = scheduler.stats
        outcome.batches, outcome.mean_batch = stats.batches, stats.mean_batch_size
    finally:
        await scheduler.close()
        worker.close()
    return outcome


async def _feed(
    index: int,
    phase_s: float,
    scheduler: RenderScheduler,
    worker: AUWorker,
    au_backend: AUStepBackend,
    avatar: Avatar,
    audio: np.ndarray,
    start_s: float,
    window: tuple[float, float],
    settings: SimSettings,
    outcome: Outcome,
) -> None:
    """One session: packets in every 20 ms from ``start_s + phase_s``; frames rendered, converted and
    encoded; until the window ends."""
    session = Session(au_backend, fps=settings.fps, input_rate_hz=WEBRTC_RATE_HZ, channels=2)
    height, width = avatar.portrait.shape[:2]
    formatter = PictureFormatter(portrait_height_px=height, portrait_width_px=width, output_size_px=settings.size_px)
    output = _Output(formatter, get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=VIDEO_CLOCK_RATE_HZ)))
    packet = WEBRTC_RATE_HZ * PACKET_MS // 1000
    offset = (index * 37 * packet) % audio.shape[0]  # each session speaks another part of the audio
    renders: set[asyncio.Task[None]] = set()
    k = 0
    while True:
        due_s = start_s + phase_s + (k + 1) * PACKET_MS / 1000
        if due_s > window[1]:
            break
        await asyncio.sleep(max(0.0, due_s - time.perf_counter()))
        first = (offset + k * packet) % (audio.shape[0] - packet)
        arrival_s = time.perf_counter()
        push = functools.partial(session.push_audio, audio[first : first + packet], arrival_s=arrival_s)
        for frame in await worker.run(push):
            counted = window[0] <= arrival_s < window[1]
            task = asyncio.create_task(
                _render(index, frame, scheduler, avatar, output, settings, outcome if counted else None)
            )
            renders.add(task)
            task.add_done_callback(renders.discard)
        k += 1
    await asyncio.gather(*renders)


class _Output:
    """A session's way out: I420 conversion and its VP8 encoder, fed in frame order, one frame at a time."""

    def __init__(self, formatter: PictureFormatter, encoder: object) -> None:
        self.formatter = formatter
        self.encoder = encoder
        self.newest_index = -1
        """The newest frame index taken for encoding; an older frame finishing later is not shown."""
        self.lock = asyncio.Lock()


async def _render(
    index: int,
    frame: AUFrame,
    scheduler: RenderScheduler,
    avatar: Avatar,
    output: _Output,
    settings: SimSettings,
    outcome: Outcome | None,
) -> None:
    deadline_s = frame.trace.audio_arrival_s + 1.0 / settings.fps
    video = await scheduler.render(index, RenderRequest(avatar, frame), deadline_s=deadline_s)
    shown = video is not None and video.index > output.newest_index
    if outcome is not None:
        outcome.due += 1
        if video is None or not shown:
            outcome.skipped += 1
        elif video.trace.render_end_s is not None and video.trace.render_end_s <= deadline_s:
            outcome.on_time += 1
        else:
            outcome.late += 1
    if video is None or not shown:
        return
    output.newest_index = video.index
    async with output.lock:
        picture = await asyncio.to_thread(output.formatter, video.rgb)
        picture.pts = video.index * VIDEO_CLOCK_RATE_HZ // settings.fps
        picture.time_base = VIDEO_TIME_BASE
        encode = output.encoder.encode  # type: ignore[attr-defined]
        await asyncio.get_running_loop().run_in_executor(None, encode, picture, False)
