"""A Pipecat ``FrameProcessor`` that turns the bot's TTS audio into the avatar's video, with the audio re-timed.

Put :class:`AvatarVideoService` after the TTS service and before the output
transport (``pip install 'avatar-engine[pipecat]'``). It keeps one
:class:`~engine.live.LiveSession` on a real-time timeline of its own:

- every ``CHUNK_MS`` (on an absolute schedule, so it never drifts from the
  wall clock) it feeds the session the next 20 ms of buffered TTS audio, or
  silence when there is none: between utterances the session keeps rendering
  from silence, a living idle face (blinks, idle motion: whatever the AU
  post-processing does), at ``fps``;
- each rendered frame goes downstream as an ``OutputImageRawFrame`` (RGB) the
  moment it is ready, and releases the TTS audio it shows: each audio chunk
  goes downstream (as the ``TTSAudioRawFrame`` it was, re-cut to 20 ms) once a
  frame showing its start has gone. The audio is thus delayed by exactly the
  avatar's latency and can never drift from the frames: both are counted on
  the session's audio clock;
- an ``InterruptionFrame`` drops the buffered and the held audio: the face
  returns to idle at once.

TTS audio must be 16-bit PCM at the pipeline's output rate (what Pipecat's TTS
services produce); frames in another format pass through un-animated, with a
warning.
"""

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.au.liveness import LivenessSettings
from engine.live import LiveParts, LiveSession
from engine.live.sources import CHUNK_MS
from engine.pipeline import VideoFrame

try:
    from pipecat.frames.frames import (
        CancelFrame,
        EndFrame,
        Frame,
        InterruptionFrame,
        OutputImageRawFrame,
        StartFrame,
        TTSAudioRawFrame,
    )
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
except ImportError as exc:  # depends on the extra
    raise ImportError(
        f"the Pipecat integration needs the pipecat extra: pip install 'avatar-engine[pipecat]' ({exc})"
    ) from None

logger = logging.getLogger(__name__)

SHOWN_SAMPLE_KEY = "avatar_shown_sample"
"""``metadata`` of each image: the instant it shows, on the avatar's 16 kHz audio clock."""
START_SAMPLE_KEY = "avatar_start_sample"
"""``metadata`` of each re-timed audio frame: where it starts on the same clock."""


@dataclass
class _HeldAudio:
    """TTS audio fed to the session, waiting for the frame that shows its start."""

    start_sample: int
    """Where it starts on the session's 16 kHz audio clock."""
    pcm: bytes
    context_id: str | None


class AvatarVideoService(FrameProcessor):
    """TTS audio in; the avatar's video frames and the same audio, re-timed to them, out (see the module docstring)."""

    def __init__(
        self, parts: LiveParts, *, fps: int = 25, liveness: LivenessSettings | None = None, **kwargs: Any
    ) -> None:
        """``parts``: the avatar and runtimes, built once (``engine.live.build``) and started
        (``running_parts``); ``fps``: video frames per second; ``liveness``: blinks, smoothing, head and
        idle motion (the defaults if None), which keep the face alive between utterances too."""
        super().__init__(**kwargs)
        self.fps = fps
        self._liveness = liveness
        self.first_frame_latency_s: float | None = None
        """Seconds from the first TTS audio frame's arrival to the first video frame showing it (a measure)."""
        self._parts = parts
        self._rate_hz = 24_000
        self._pending = bytearray()
        self._pending_context: str | None = None
        self._held: deque[_HeldAudio] = deque()
        self._session: LiveSession | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._first_audio_s: float | None = None
        self._first_audio_sample: int | None = None
        self._warned = False

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]  # pipecat narrows it
        await super().setup(setup)
        self._rate_hz = setup.audio_out_sample_rate

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._start()
        elif isinstance(frame, TTSAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            if frame.sample_rate != self._rate_hz or frame.num_channels != 1:
                self._warn(f"TTS audio at {frame.sample_rate} Hz x {frame.num_channels} is not the pipeline's "
                           f"{self._rate_hz} Hz mono: passed through without the avatar")  # fmt: skip
                await self.push_frame(frame, direction)
                return
            if self._first_audio_s is None:
                self._first_audio_s = asyncio.get_running_loop().time()
            self._pending += frame.audio
            self._pending_context = frame.context_id
        elif isinstance(frame, InterruptionFrame):
            self._pending.clear()
            self._held.clear()
            await self.push_frame(frame, direction)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._stop()

    # -- the timeline ----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._session is not None:
            return
        self._session = LiveSession(self._parts, f"pipecat-{self.id}", fps=self.fps, liveness=self._liveness)
        self._session.add_video_output(_ImageOutput(self))
        self._ticker = self.create_task(self._tick(), name="avatar-timeline")

    async def _stop(self) -> None:
        if self._ticker is not None:
            await self.cancel_task(self._ticker)
            self._ticker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _tick(self) -> None:
        """Feed the session 20 ms of TTS audio (or silence) per 20 ms of wall time, on an absolute schedule."""
        assert self._session is not None
        loop = asyncio.get_running_loop()
        chunk_bytes = self._rate_hz * CHUNK_MS // 1000 * 2
        started = loop.time()
        ticks = 0
        while True:
            ticks += 1
            await asyncio.sleep(max(0.0, started + ticks * CHUNK_MS / 1000 - loop.time()))
            speech = bytes(self._pending[:chunk_bytes])
            del self._pending[:chunk_bytes]
            pcm = speech + bytes(chunk_bytes - len(speech))
            start = await self._session.push_audio(
                np.frombuffer(pcm, dtype="<i2").astype(np.int16), rate_hz=self._rate_hz, channels=1
            )
            if speech:
                if self._first_audio_sample is None:
                    self._first_audio_sample = start
                self._held.append(_HeldAudio(start, speech, self._pending_context))

    async def _frame_ready(self, frame: VideoFrame) -> None:
        """A rendered frame: downstream now, then the audio up to the instant it shows."""
        height, width = frame.rgb.shape[:2]
        image = OutputImageRawFrame(image=np.ascontiguousarray(frame.rgb).tobytes(), size=(width, height), format="RGB")
        shown = frame.trace.shown_sample
        image.metadata[SHOWN_SAMPLE_KEY] = shown
        await self.push_frame(image)
        if self.first_frame_latency_s is None and self._first_audio_sample is not None:
            if shown >= self._first_audio_sample and self._first_audio_s is not None:
                self.first_frame_latency_s = asyncio.get_running_loop().time() - self._first_audio_s
        while self._held and self._held[0].start_sample <= shown:
            held = self._held.popleft()
            audio = TTSAudioRawFrame(audio=held.pcm, sample_rate=self._rate_hz, num_channels=1)
            audio.context_id = held.context_id
            audio.metadata[START_SAMPLE_KEY] = held.start_sample
            await self.push_frame(audio)

    def _warn(self, message: str) -> None:
        if not self._warned:
            logger.warning("%s", message)
            self._warned = True


class _ImageOutput:
    """The session's video output: hands each frame to the service (which pushes it downstream)."""

    name = "pipecat"

    def __init__(self, service: AvatarVideoService) -> None:
        self._service = service

    async def send_video(self, frame: VideoFrame) -> None:
        await self._service._frame_ready(frame)

    async def close(self) -> None:
        """Nothing to release: the pipeline owns the frames."""
