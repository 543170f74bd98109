"""Many live sessions in one process, on the server's own parts, fed by paced audio instead of peers.

Each simulated session is an ``engine.live.LiveSession``, the same object a
WebRTC or WebSocket client gets on the server: 20 ms packets of 48 kHz stereo
s16 (what aiortc's Opus decoder yields) arrive at real-time pace, each session
at its own random phase within the 20 ms (seeded), as independent clients'
packets do; the AU thread, the render scheduler (as many batches at once as
the generator runtime allows, ``parallel_runs``), the deadline and newest-wins
rules are the live session's. Its one video output converts each frame to
I420 (``PictureFormatter``, in a thread) and encodes it with the server's
VP8 encoder (aiortc's, with the engine's speed options:
``engine.output.video_encoder.FastVp8Encoder``) in the default executor, as
aiortc's sender does. Only the network is
missing: no Opus decode, no RTP, no pacing track, no client.

A frame is on time when it was rendered by its deadline (``render_deadline_s``)
and reached the encoder; late when it was rendered after its deadline; skipped
when it never reached the encoder (superseded by the session's next frame
before rendering or encoding, expired, or finished after a newer one). The late
rate counts late and skipped frames.
"""

import asyncio
import time
from dataclasses import dataclass

import numpy as np

from bench.speech import WEBRTC_RATE_HZ
from engine.avatar import Avatar
from engine.backends.base import AUStepBackend, GeneratorBackend
from engine.live import AUWorker, LiveParts, LiveSession, render_deadline_s
from engine.output.pictures import PictureFormatter
from engine.output.tracks import VIDEO_CLOCK_RATE_HZ, VIDEO_TIME_BASE
from engine.output.video_encoder import FastVp8Encoder
from engine.pipeline import AUFrame, Renderer, VideoFrame
from engine.scheduler import RenderScheduler

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
    parts = LiveParts(avatar=avatar, au_backend=au_backend, scheduler=scheduler, au_worker=AUWorker())
    await scheduler.start()
    outcome = Outcome()
    start_s = time.perf_counter() + 0.1
    window = (start_s + settings.warmup_s, start_s + settings.warmup_s + settings.seconds)
    phases_s = np.random.default_rng(sessions).uniform(0.0, PACKET_MS / 1000, sessions)
    try:
        feeders = [
            _feed(index, float(phases_s[index]), parts, audio, start_s, window, settings, outcome)
            for index in range(sessions)
        ]
        await asyncio.gather(*feeders)
        stats = scheduler.stats
        outcome.batches, outcome.mean_batch = stats.batches, stats.mean_batch_size
    finally:
        await scheduler.close()
        parts.au_worker.close()
    outcome.skipped = outcome.due - outcome.on_time - outcome.late
    return outcome


async def _feed(
    index: int,
    phase_s: float,
    parts: LiveParts,
    audio: np.ndarray,
    start_s: float,
    window: tuple[float, float],
    settings: SimSettings,
    outcome: Outcome,
) -> None:
    """One session: packets in every 20 ms from ``start_s + phase_s`` until the window ends, then its last frames."""
    session = LiveSession(parts, index, fps=settings.fps)
    height, width = parts.avatar.portrait.shape[:2]
    formatter = PictureFormatter(portrait_height_px=height, portrait_width_px=width, output_size_px=settings.size_px)
    session.add_au_output(_DueCounter(window, outcome))
    session.add_video_output(_EncoderOutput(formatter, settings.fps, window, outcome))
    packet = WEBRTC_RATE_HZ * PACKET_MS // 1000
    offset = (index * 37 * packet) % audio.shape[0]  # each session speaks another part of the audio
    k = 0
    try:
        while True:
            due_s = start_s + phase_s + (k + 1) * PACKET_MS / 1000
            if due_s > window[1]:
                break
            await asyncio.sleep(max(0.0, due_s - time.perf_counter()))
            first = (offset + k * packet) % (audio.shape[0] - packet)
            chunk = audio[first : first + packet]
            await session.push_audio(chunk, rate_hz=WEBRTC_RATE_HZ, channels=2, arrival_s=time.perf_counter())
            k += 1
        await session.finish()
    finally:
        await session.close()


def _in_window(frame: AUFrame | VideoFrame, window: tuple[float, float]) -> bool:
    return window[0] <= frame.trace.audio_arrival_s < window[1]


class _DueCounter:
    """An AU output that counts the frames due in the measured window."""

    name = "sim"

    def __init__(self, window: tuple[float, float], outcome: Outcome) -> None:
        self._window = window
        self._outcome = outcome

    async def send_aus(self, frame: AUFrame) -> None:
        if _in_window(frame, self._window):
            self._outcome.due += 1

    async def close(self) -> None:
        """Nothing to release."""


class _EncoderOutput:
    """A session's way out: I420 conversion and the server's VP8 encoder, as aiortc's sender does it, newest first."""

    name = "sim"

    def __init__(self, formatter: PictureFormatter, fps: int, window: tuple[float, float], outcome: Outcome) -> None:
        self._formatter = formatter
        self._fps = fps
        self._window = window
        self._outcome = outcome
        self._encoder = FastVp8Encoder()

    async def send_video(self, frame: VideoFrame) -> None:
        if _in_window(frame, self._window):
            end_s = frame.trace.render_end_s
            if end_s is not None and end_s <= render_deadline_s(frame.trace, self._fps):
                self._outcome.on_time += 1
            else:
                self._outcome.late += 1
        picture = await asyncio.to_thread(self._formatter, frame)
        picture.pts = frame.index * VIDEO_CLOCK_RATE_HZ // self._fps
        picture.time_base = VIDEO_TIME_BASE
        await asyncio.get_running_loop().run_in_executor(None, self._encoder.encode, picture, False)

    async def close(self) -> None:
        """Nothing to release."""
