"""Renders the due frames of all sessions together: one generator call per batch, earliest deadline first.

The asyncio side of :mod:`engine.scheduler.planner`: it feeds the planner,
sleeps until the planned start, and runs ``Renderer.render`` on worker
threads, so the event loop never waits on the generator. At most ``workers``
batches are in flight, each on its own thread: one by default (most runtimes
are not re-entrant, and a GPU context stays current on the one thread that uses
it); more where the backend runs several inference requests in parallel, as
OpenVINO's CPU streams do: on a 2-core CPU, two single-threaded runs at once
left fewer frames late than one two-threaded run at a time.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from engine.pipeline import Renderer, RenderRequest, VideoFrame
from engine.scheduler.planner import Batch, BatchPlanner
from engine.scheduler.render_time import RenderTimeEstimator

LATE_DROP_MS = 90.0
"""Default for ``late_drop_ms``: ITU-R BT.1359 puts the acceptability threshold
for sound ahead of picture at about 90 ms. The voice track is delayed by the
pipeline's measured latency, so a frame finished this long after its deadline
shows lips out of sync beyond that threshold."""


@dataclass
class SchedulerStats:
    """Counters since the scheduler was built, for metrics and tests.

    frames_rendered: requests rendered and returned to their callers.
    frames_dropped: requests superseded by a newer request of the same session.
    frames_expired: requests not rendered because their deadline had passed by
        more than ``late_drop_ms`` when their batch was planned.
    frames_late: rendered requests whose batch ended after their deadline.
    batches: generator calls that succeeded; batches_failed: those that raised.
    """

    frames_rendered: int = 0
    frames_dropped: int = 0
    frames_expired: int = 0
    frames_late: int = 0
    batches: int = 0
    batches_failed: int = 0

    @property
    def mean_batch_size(self) -> float:
        """Frames per successful generator call (0.0 before the first)."""
        return self.frames_rendered / self.batches if self.batches else 0.0


@dataclass(frozen=True)
class _Ticket:
    """A request and the future its caller awaits."""

    request: RenderRequest
    future: asyncio.Future[VideoFrame | None]


class RenderScheduler:
    """Gathers the render requests of many sessions into deadline-ordered batches.

    Times are seconds on ``clock``: ``time.perf_counter`` by default, the clock
    of ``FrameTrace``, so a deadline can be written as
    ``frame.trace.audio_arrival_s + budget_s``. A replacement clock must tick
    in real seconds (the scheduler sleeps on the event loop's timer).
    """

    def __init__(
        self,
        renderer: Renderer,
        *,
        max_batch: int = 8,
        batch_window_ms: float = 3.0,
        late_drop_ms: float = LATE_DROP_MS,
        clock: Callable[[], float] = time.perf_counter,
        workers: int = 1,
    ) -> None:
        """
        Args:
            renderer: runs the generator; called from up to ``workers``
                threads at once, so it must be thread-safe when ``workers`` > 1.
            max_batch: most requests per generator call.
            batch_window_ms: how long the first pending request waits for
                others to join its batch, at most; less when a deadline is near.
            late_drop_ms: a request whose deadline passed more than this long
                ago when its batch is planned is not rendered (resolves to None);
                ``math.inf`` renders everything.
            clock: seconds, for deadlines and render-time measurements.
            workers: most batches rendered at once, each on its own thread (the
                number of generator runs the backend allows in flight). 1 renders
                one batch at a time on one dedicated thread.
        """
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._renderer = renderer
        self._workers = workers
        self._clock = clock
        self.render_time = RenderTimeEstimator()
        """Measured batch render times per batch size; the planner reads it for the window."""
        self._planner: BatchPlanner[_Ticket] = BatchPlanner(
            self.render_time,
            max_batch=max_batch,
            batch_window_s=batch_window_ms / 1000.0,
            late_drop_s=late_drop_ms / 1000.0,
        )
        self._stats = SchedulerStats()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def stats(self) -> SchedulerStats:
        """A snapshot of the counters."""
        return replace(self._stats)

    async def start(self) -> None:
        """Start the background task and the render threads (again: no effect)."""
        if self._closed:
            raise RuntimeError("the scheduler is closed; build a new one")
        if self._task is None:
            self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="render")
            self._task = asyncio.create_task(self._serve(), name="render-scheduler")

    async def render(self, session_id: Hashable, request: RenderRequest, *, deadline_s: float) -> VideoFrame | None:
        """Render ``request`` in the next suitable batch and return the frame.

        Returns None, without rendering, when a newer request of the same
        session arrives first (the session skips to its newest frame), when
        the deadline has passed by more than ``late_drop_ms`` before a batch
        could take it, when ``forget(session_id)`` is called, and once the
        scheduler is closed. An exception raised by the renderer is raised here
        for every request of the failed batch.

        Args:
            session_id: any hashable naming the session; one pending request each.
            deadline_s: when the frame should be finished, on the scheduler's clock.
        """
        if self._closed:
            return None
        if self._task is None:
            raise RuntimeError("call `await scheduler.start()` before render()")
        ticket = _Ticket(request, asyncio.get_running_loop().create_future())
        replaced = self._planner.submit(session_id, ticket, deadline_s=deadline_s, now_s=self._clock())
        if replaced is not None:
            self._stats.frames_dropped += 1
            _resolve(replaced.future, None)
        self._wakeup.set()
        return await ticket.future

    def forget(self, session_id: Hashable) -> None:
        """A session ended: its pending request, if any, resolves to None (one being rendered completes)."""
        ticket = self._planner.forget(session_id)
        if ticket is not None:
            _resolve(ticket.future, None)
            self._wakeup.set()

    async def close(self) -> None:
        """Stop: pending requests resolve to None; the batches being rendered, if any, complete first."""
        if self._closed:
            return
        self._closed = True
        for ticket in self._planner.drain():
            _resolve(ticket.future, None)
        if self._task is not None and self._executor is not None:
            self._wakeup.set()
            await self._task
            self._executor.shutdown()

    async def _serve(self) -> None:
        rendering: set[asyncio.Task[None]] = set()
        try:
            while not self._closed:
                self._wakeup.clear()
                for task in [task for task in rendering if task.done()]:
                    rendering.remove(task)
                    task.result()  # a bug in _render_batch ends serving here, not lost
                if len(rendering) >= self._workers:
                    await self._wakeup.wait()  # a finishing batch sets it
                    continue
                due_s = self._planner.due_s()
                if due_s is None:
                    await self._wakeup.wait()
                    continue
                delay_s = due_s - self._clock()
                if delay_s > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay_s):
                            await self._wakeup.wait()
                    continue
                task = asyncio.create_task(
                    self._render_batch(self._planner.take_batch(self._clock())), name="render-batch"
                )
                task.add_done_callback(lambda _: self._wakeup.set())
                rendering.add(task)
        finally:
            # close() promises that the batches being rendered complete; gather
            # also retrieves their exceptions, so none goes unreported
            await asyncio.gather(*rendering)

    async def _render_batch(self, batch: Batch[_Ticket]) -> None:
        for slot in batch.expired:
            self._stats.frames_expired += 1
            _resolve(slot.item.future, None)
        # a caller that was cancelled while waiting needs no frame
        slots = [slot for slot in batch.slots if not slot.item.future.done()]
        if not slots:
            return
        requests = [slot.item.request for slot in slots]
        start_s = self._clock()
        try:
            loop = asyncio.get_running_loop()
            frames = await loop.run_in_executor(self._executor, self._renderer.render, requests)
        except Exception as error:
            self._stats.batches_failed += 1
            for slot in slots:
                if not slot.item.future.done():
                    slot.item.future.set_exception(error)
            return
        end_s = self._clock()
        self.render_time.observe(len(slots), end_s - start_s)
        self._stats.batches += 1
        self._stats.frames_rendered += len(slots)
        self._stats.frames_late += sum(end_s > slot.deadline_s for slot in slots)
        for slot, frame in zip(slots, frames):
            _resolve(slot.item.future, frame)


def _resolve(future: asyncio.Future[VideoFrame | None], frame: VideoFrame | None) -> None:
    if not future.done():
        future.set_result(frame)
