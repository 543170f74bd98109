"""One speaker's live path, the same for every transport: audio in, AU frames and rendered frames out.

A transport (WebRTC, the WebSocket API, a microphone, a file, an agent
framework's TTS stream) only moves bytes: it hands decoded audio to
:meth:`LiveSession.push_audio` and attaches outputs
(``engine.live.outputs``). Everything between lives here, once:

- **audio in**, in the format of the first chunk (rate and channels; a later
  change is an ``AudioFormatError``), through ``engine.pipeline.Session``
  (16 kHz audio clock, log-mel, CAUSE, expression) on the shared
  :class:`~engine.live.au_worker.AUWorker` thread;
- **AU frames** to every AU output, in order, the moment they exist;
- **the render deadline**: a frame should be rendered one frame interval after
  the audio it needs has arrived (:func:`render_deadline_s`); it goes to the
  shared render scheduler at once, which keeps one pending request per session
  (a session behind skips to its newest frame);
- **newest wins** on the way out: each video output takes frames through its
  own :class:`~engine.live.newest.NewestWins`, so a slow output shows fewer
  frames, never older ones;
- **failures**: a session whose frames fail to render
  ``MAX_CONSECUTIVE_RENDER_FAILURES`` times in a row, or whose output raises,
  is reported to its transport (``on_failure``) to be ended; nothing one
  session does raises into another;
- **traces and stats**: every frame that leaves is recorded in the session's
  ~1 s :class:`~engine.live.stats.FrameStats` and, through a
  :class:`FrameObserver`, in the process's metrics; the stats also name the
  speech onsets heard (``engine.live.onsets``), so that a client can pair its
  own clock with the session's audio clock.
"""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.au import ExpressionControl
from engine.au.liveness import LivenessSettings
from engine.audio import AudioFormatError
from engine.avatar import Avatar
from engine.backends.base import AUStepBackend
from engine.live.au_worker import AUWorker
from engine.live.newest import NewestWins
from engine.live.onsets import OnsetDetector
from engine.live.outputs import AUOutput, VideoOutput
from engine.live.stats import FrameStats
from engine.pipeline import SAMPLE_RATE_HZ, AUFrame, FrameTrace, RenderRequest, Session, VideoFrame
from engine.pipeline.session import lookahead_samples
from engine.scheduler import RenderScheduler

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_RENDER_FAILURES = 25
"""A session whose frames fail to render this many times in a row is reported as failed (1 s at 25 fps)."""


def render_deadline_s(trace: FrameTrace, fps: int) -> float:
    """When a frame should be rendered, on the trace's clock: one frame interval after its audio arrived.

    The frame clock follows the audio clock: a frame is due as soon as the
    audio it shows has arrived, and a frame interval is what a renderer may
    take before the next one is due.
    """
    return trace.audio_arrival_s + 1.0 / fps


class FrameObserver(Protocol):
    """Counts frames across sessions (the server's Prometheus metrics implement it)."""

    def frame_sent(self, transport: str, trace: FrameTrace | None) -> None:
        """A frame left on ``transport``: its trace, or None for a repeated picture."""
        ...

    def frame_unsent(self, transport: str) -> None:
        """A rendered frame was replaced by a newer one before ``transport`` could take it."""
        ...


@dataclass(frozen=True)
class LiveParts:
    """What the live sessions of one process share (built once: loading the networks takes seconds)."""

    avatar: Avatar
    au_backend: AUStepBackend
    scheduler: RenderScheduler
    au_worker: AUWorker
    observer: FrameObserver | None = None
    on_session: "Callable[[LiveSession], None] | None" = None
    """Called with every new session, at the end of its construction (to attach outputs every session gets,
    such as ``avatar serve --publish-whip``)."""


class LiveSession:
    """One speaker's live path (see the module docstring). Use from the event loop."""

    def __init__(
        self,
        parts: LiveParts,
        session_id: Hashable,
        *,
        fps: int,
        expression: ExpressionControl | None = None,
        liveness: LivenessSettings | None = None,
        on_failure: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """
        Args:
            parts: the shared avatar, runtimes, scheduler and AU thread.
            session_id: the session's name in the scheduler, logs and stats.
            fps: video (and AU) frames per second.
            expression: the initial expression sliders (neutral if None).
            liveness: blinks, smoothing, head and idle motion (``LivenessSettings()`` if None).
            on_failure: called once, with a reason, when the session cannot go
                on (renders keep failing, an output raised); the transport
                should then end it with :meth:`close`.
            clock: seconds, the clock of ``FrameTrace`` (``time.perf_counter``).
        """
        self.session_id = session_id
        self.fps = fps
        self._parts = parts
        self._expression = expression or ExpressionControl()
        self._liveness = liveness or LivenessSettings()
        self._on_failure = on_failure
        self._clock = clock
        self._pipeline: Session | None = None
        self._onset_detector: OnsetDetector | None = None
        self._onsets: list[int] = []
        self._input_format: tuple[int, int] | None = None
        self._input_samples = 0
        self._au_outputs: list[AUOutput] = []
        self._pumps: list[_VideoPump] = []
        self._renders: set[asyncio.Task[None]] = set()
        self._render_failures = 0
        self._failed = False
        self._closed = False
        self._stats = FrameStats(started_s=clock())
        self.last_audio_s: float | None = None
        """Wall time the last audio chunk arrived (None before the first)."""
        if parts.on_session is not None:
            parts.on_session(self)

    # -- configuration ---------------------------------------------------------------------------

    @property
    def expression(self) -> ExpressionControl:
        """The expression sliders applied to this session's AUs (replaced, never mutated, on change)."""
        return self._expression

    @expression.setter
    def expression(self, value: ExpressionControl) -> None:
        self._expression = value
        if self._pipeline is not None:
            self._pipeline.expression = value  # one reference swap: the AU thread sees old or new

    @property
    def liveness(self) -> LivenessSettings:
        """Blinks, smoothing, head and idle motion now applied to this session's frames."""
        return self._liveness

    @liveness.setter
    def liveness(self, value: LivenessSettings) -> None:
        self._liveness = value
        if self._pipeline is not None:
            self._pipeline.liveness = value  # one reference swap: the AU thread sees old or new

    def add_au_output(self, output: AUOutput) -> None:
        """Send every AU frame to ``output`` from now on, in order."""
        self._au_outputs.append(output)

    def add_video_output(self, output: VideoOutput, *, reports_sends: bool = False) -> None:
        """Render frames and send them to ``output`` from now on, newest first.

        Each frame counts as sent when ``send_video`` returns, unless
        ``reports_sends``: then the output sends later than it returns (a
        paced track) and reports itself, through :meth:`record_sent`,
        :meth:`record_repeat` and :meth:`record_unsent`.
        """
        self._pumps.append(_VideoPump(output, self, reports_sends=reports_sends))

    @property
    def renders_video(self) -> bool:
        """Whether any video output is attached (frames are rendered only then)."""
        return bool(self._pumps)

    # -- audio in --------------------------------------------------------------------------------

    @property
    def lookahead_samples(self) -> int:
        """How far past the instant a frame shows its audio reaches, 16 kHz samples (mel window and lookahead)."""
        return lookahead_samples(self._parts.au_backend.lookahead_hops)

    @property
    def samples_received(self) -> int:
        """The audio clock: 16 kHz samples received since the session started."""
        return 0 if self._pipeline is None else self._pipeline.samples_received

    @property
    def input_rate_hz(self) -> int | None:
        """The sample rate of the audio the transport delivers (None before the first chunk)."""
        return None if self._input_format is None else self._input_format[0]

    async def push_audio(
        self, samples: np.ndarray, *, rate_hz: int, channels: int, arrival_s: float | None = None
    ) -> int:
        """Feed one chunk of audio as it arrived; returns where it starts on the 16 kHz audio clock.

        Args:
            samples: (n, channels) int16 or float32 (full scale 1.0), or (n,) mono.
            rate_hz, channels: the chunk's format; every chunk of a session must share it.
            arrival_s: wall time the chunk arrived (``clock()``), now if None.

        Raises:
            AudioFormatError: the format changed mid-stream, or is not supported;
                nothing of the chunk was used.
        """
        arrival = self._clock() if arrival_s is None else arrival_s
        pipeline = self._pipeline_for(rate_hz, channels)
        assert self._onset_detector is not None
        self._onsets += self._onset_detector.push(samples)
        start_sample = self._input_samples * SAMPLE_RATE_HZ // rate_hz
        push = functools.partial(pipeline.push_audio, samples, arrival_s=arrival)
        frames = await self._parts.au_worker.run(push)
        self._input_samples += samples.shape[0]
        self.last_audio_s = arrival
        await self._deliver(frames)
        return start_sample

    async def finish(self) -> None:
        """The audio has ended: emit the last frames (up to the audio's end), and wait until every output has them."""
        if self._pipeline is not None:
            await self._deliver(await self._parts.au_worker.run(self._pipeline.finish))
        while self._renders:
            await asyncio.gather(*self._renders, return_exceptions=True)
        for pump in self._pumps:
            await pump.drained()

    async def close(self) -> None:
        """End the session: cancel its renders, forget it in the scheduler, close its outputs (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._parts.scheduler.forget(self.session_id)
        renders = list(self._renders)
        for task in renders:
            task.cancel()
        await asyncio.gather(*renders, return_exceptions=True)
        for pump in self._pumps:
            await pump.stop()
        outputs: list[AUOutput | VideoOutput] = [*self._au_outputs, *(pump.output for pump in self._pumps)]
        for output in outputs:
            try:
                await output.close()
            except Exception:
                logger.exception("session %s: closing output %s failed", self.session_id, output.name)

    # -- stats -----------------------------------------------------------------------------------

    def record_sent(self, transport: str, frame: AUFrame | VideoFrame) -> None:
        """``frame`` left through ``transport`` (``trace.send_s`` set): for outputs attached with ``reports_sends``."""
        self._record_sent(transport, frame.trace)

    def record_unsent(self, transport: str) -> None:
        """A rendered frame was dropped by ``transport`` for a newer one: an output attached with ``reports_sends``."""
        self._record_unsent(transport)

    def record_repeat(self, transport: str) -> None:
        """An output re-sent its last picture (a paced video track with nothing new): counts toward fps."""
        self._stats.frame_sent(None)
        if self._parts.observer is not None:
            self._parts.observer.frame_sent(transport, None)

    def stats_report(self, **extra: Any) -> dict[str, Any]:
        """The figures since the last report (``FrameStats.report``) plus ``extra``; starts the next interval.

        Besides FrameStats' keys: session; audio_s, seconds of audio received;
        scheduler_mean_batch; speech_onsets, the onsets heard since the last
        report, as 16 kHz sample indices of the audio clock.
        """
        now = self._clock()
        rate = self.input_rate_hz
        report = self._stats.report(
            now,
            session=str(self.session_id),
            audio_s=round(self._input_samples / rate, 3) if rate else 0.0,
            scheduler_mean_batch=round(self._parts.scheduler.stats.mean_batch_size, 2),
            speech_onsets=self._onsets,
            **extra,
        )
        self._stats = FrameStats(started_s=now)
        self._onsets = []
        return report

    # -- internals -------------------------------------------------------------------------------

    def _pipeline_for(self, rate_hz: int, channels: int) -> Session:
        if self._pipeline is None:
            self._pipeline = Session(
                self._parts.au_backend,
                fps=self.fps,
                input_rate_hz=rate_hz,
                channels=channels,
                expression=self._expression,
                liveness=self._liveness,
            )
            self._input_format = (rate_hz, channels)
            self._onset_detector = OnsetDetector(rate_hz)
        elif self._input_format != (rate_hz, channels):
            assert self._input_format is not None
            raise AudioFormatError(
                f"audio format changed mid-stream from {self._input_format[0]} Hz x {self._input_format[1]} "
                f"to {rate_hz} Hz x {channels}"
            )
        return self._pipeline

    async def _deliver(self, frames: list[AUFrame]) -> None:
        for frame in frames:
            for output in self._au_outputs:
                await output.send_aus(frame)
            if self._pumps:
                self._render_soon(frame)
            elif self._au_outputs:
                frame.trace.send_s = self._clock()
                self._record_sent(self._au_outputs[0].name, frame.trace)

    def _render_soon(self, frame: AUFrame) -> None:
        task = asyncio.get_running_loop().create_task(self._render(frame), name=f"render-{self.session_id}")
        self._renders.add(task)
        task.add_done_callback(self._renders.discard)

    async def _render(self, frame: AUFrame) -> None:
        request = RenderRequest(self._parts.avatar, frame)
        deadline_s = render_deadline_s(frame.trace, self.fps)
        try:
            video = await self._parts.scheduler.render(self.session_id, request, deadline_s=deadline_s)
        except Exception as exc:
            self._render_failures += 1
            logger.warning("session %s: frame %d failed to render: %s", self.session_id, frame.index, exc)
            if self._render_failures >= MAX_CONSECUTIVE_RENDER_FAILURES:
                self._fail(f"{self._render_failures} frames in a row failed to render: {exc}")
            return
        self._render_failures = 0
        if video is None:  # superseded by this session's newer frame, or too late to show
            self._stats.frame_skipped()
            return
        for pump in self._pumps:
            pump.offer(video)

    def _record_sent(self, transport: str, trace: FrameTrace) -> None:
        self._stats.frame_sent(trace)
        if self._parts.observer is not None:
            self._parts.observer.frame_sent(transport, trace)

    def _record_unsent(self, transport: str) -> None:
        self._stats.frame_skipped()
        if self._parts.observer is not None:
            self._parts.observer.frame_unsent(transport)

    def _fail(self, reason: str) -> None:
        if self._failed or self._closed:
            return
        self._failed = True
        logger.error("session %s failed: %s", self.session_id, reason)
        if self._on_failure is not None:
            self._on_failure(reason)


class _VideoPump:
    """Hands one video output its frames, newest first, one at a time, and records each that leaves."""

    def __init__(self, output: VideoOutput, session: LiveSession, *, reports_sends: bool) -> None:
        self.output = output
        self._session = session
        self._reports_sends = reports_sends
        self._slot: NewestWins[VideoFrame] = NewestWins(on_drop=lambda: session._record_unsent(output.name))
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def offer(self, frame: VideoFrame) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"output-{self.output.name}")
        if self._slot.offer(frame.index, frame):
            self._idle.clear()

    async def drained(self) -> None:
        """Wait until the output has taken and sent every frame offered (or the pump stopped)."""
        if self._task is None:
            return
        idle = asyncio.ensure_future(self._idle.wait())
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({idle, self._task}, return_when=asyncio.FIRST_COMPLETED)
        idle.cancel()

    async def stop(self) -> None:
        self._slot.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        name = self.output.name
        while True:
            if not self._slot.waiting:
                self._idle.set()
            frame = await self._slot.get()
            try:
                await self.output.send_video(frame)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.exception("session %s: output %s failed", self._session.session_id, name)
                self._session._fail(f"video output {name} failed: {exc}")
                self._idle.set()
                return
            if not self._reports_sends:
                if frame.trace.send_s is None:
                    frame.trace.send_s = self._session._clock()
                self._session._record_sent(name, frame.trace)
