"""The asyncio scheduler around a real Renderer: batching, superseding, forget/close, errors, parallel batches."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest

from engine.avatar import Avatar, load_default_avatar
from engine.backends.base import GeneratorBackend
from engine.pipeline import AUFrame, FrameTrace, Renderer, RenderRequest, VideoFrame
from engine.scheduler import RenderScheduler


class FakeGenerator(GeneratorBackend):
    """Zero colour and an all-ones mask (the face comes out unchanged), after ``cost_s`` of pretend work.

    Records each batch's size, the threads it ran on and how many runs overlapped.
    With a ``gate``, each run waits for it to open, so a test can hold batches in
    flight; a batch holding a frame whose AUs all equal ``fail_on_au`` raises.
    """

    name = "fake"

    def __init__(self, cost_s: float = 0.0, *, gate: threading.Event | None = None) -> None:
        self.cost_s = cost_s
        self.gate = gate
        self.fail_next: Exception | None = None
        self.fail_on_au: float | None = None
        self.batch_sizes: list[int] = []
        self.thread_names: set[str] = set()
        self.most_concurrent = 0
        self._running = 0
        self._lock = threading.Lock()

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            self._running += 1
            self.most_concurrent = max(self.most_concurrent, self._running)
        try:
            self.thread_names.add(threading.current_thread().name)
            time.sleep(self.cost_s)
            if self.gate is not None and not self.gate.wait(timeout=5.0):
                raise TimeoutError("the test never opened the gate")
            self.batch_sizes.append(images.shape[0])
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            if self.fail_on_au is not None and (aus == self.fail_on_au).all(axis=1).any():
                raise RuntimeError(f"generator exploded on AU {self.fail_on_au}")
            return np.zeros_like(images), np.ones((images.shape[0], 1, *images.shape[2:]), np.float32)
        finally:
            with self._lock:
                self._running -= 1

    @property
    def running(self) -> int:
        """Runs in progress now."""
        with self._lock:
            return self._running


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return load_default_avatar()


def request(avatar: Avatar, index: int) -> RenderRequest:
    trace = FrameTrace(index * 640, due_sample=index * 640 + 720, audio_arrival_s=time.perf_counter())
    return RenderRequest(avatar, AUFrame(index, np.full(17, index % 5, np.float32), trace))


def soon(seconds: float = 1.0) -> float:
    return time.perf_counter() + seconds


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Let the loop (and the render threads) run until ``condition()`` holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


MakeScheduler = Callable[..., Awaitable[RenderScheduler]]


@pytest.fixture
async def make_scheduler() -> AsyncIterator[MakeScheduler]:
    started: list[RenderScheduler] = []

    async def make(generator: FakeGenerator, **options: float) -> RenderScheduler:
        scheduler = RenderScheduler(Renderer(generator), **options)
        await scheduler.start()
        await scheduler.start()  # idempotent
        started.append(scheduler)
        return scheduler

    yield make
    for scheduler in started:
        await scheduler.close()


async def test_concurrent_sessions_share_one_generator_call(make_scheduler: MakeScheduler, avatar: Avatar) -> None:
    generator = FakeGenerator(cost_s=0.02)
    scheduler = await make_scheduler(generator, batch_window_ms=20.0)
    calls = (scheduler.render(session, request(avatar, session), deadline_s=soon()) for session in range(4))
    frames = await asyncio.gather(*calls)
    assert generator.batch_sizes == [4]
    assert [frame.index for frame in frames] == [0, 1, 2, 3]
    for frame in frames:
        assert isinstance(frame, VideoFrame) and frame.rgb.shape == avatar.portrait.shape
        assert frame.trace.render_start_s < frame.trace.render_end_s
    stats = scheduler.stats
    assert (stats.batches, stats.frames_rendered, stats.mean_batch_size) == (1, 4, 4.0)
    assert scheduler.render_time.estimate_s(4) >= 0.02


async def test_a_newer_request_supersedes_the_pending_one(make_scheduler: MakeScheduler, avatar: Avatar) -> None:
    generator = FakeGenerator()
    scheduler = await make_scheduler(generator, batch_window_ms=50.0)
    older = asyncio.create_task(scheduler.render("a", request(avatar, 1), deadline_s=soon()))
    await asyncio.sleep(0)
    newer = await scheduler.render("a", request(avatar, 2), deadline_s=soon())
    assert await older is None
    assert newer is not None and newer.index == 2
    assert generator.batch_sizes == [1]
    assert (scheduler.stats.frames_dropped, scheduler.stats.frames_rendered) == (1, 1)


async def test_forget_and_close_resolve_pending_requests_to_none(make_scheduler: MakeScheduler, avatar: Avatar) -> None:
    generator = FakeGenerator()
    scheduler = await make_scheduler(generator, batch_window_ms=10_000.0)
    a = asyncio.create_task(scheduler.render("a", request(avatar, 0), deadline_s=soon(100.0)))
    b = asyncio.create_task(scheduler.render("b", request(avatar, 0), deadline_s=soon(100.0)))
    await asyncio.sleep(0)
    scheduler.forget("a")
    assert await a is None
    await scheduler.close()
    assert await b is None
    assert await scheduler.render("c", request(avatar, 0), deadline_s=soon()) is None
    assert generator.batch_sizes == []


async def test_a_renderer_error_reaches_its_callers_and_serving_goes_on(
    make_scheduler: MakeScheduler, avatar: Avatar
) -> None:
    generator = FakeGenerator()
    generator.fail_next = RuntimeError("generator exploded")
    scheduler = await make_scheduler(generator, batch_window_ms=20.0)
    calls = (scheduler.render(session, request(avatar, 0), deadline_s=soon()) for session in ("a", "b"))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [str(result) for result in results] == ["generator exploded"] * 2
    assert all(isinstance(result, RuntimeError) for result in results)
    frame = await scheduler.render("a", request(avatar, 7), deadline_s=soon())
    assert frame is not None and frame.index == 7
    assert (scheduler.stats.batches_failed, scheduler.stats.batches) == (1, 1)


async def test_hopeless_requests_are_not_rendered_and_late_ones_are_counted(
    make_scheduler: MakeScheduler, avatar: Avatar
) -> None:
    generator = FakeGenerator()
    scheduler = await make_scheduler(generator, late_drop_ms=500.0)
    assert await scheduler.render("a", request(avatar, 0), deadline_s=soon(-5.0)) is None
    assert generator.batch_sizes == []
    assert await scheduler.render("a", request(avatar, 1), deadline_s=soon(-0.01)) is not None
    stats = scheduler.stats
    assert (stats.frames_expired, stats.frames_late, stats.frames_rendered) == (1, 1, 1)


async def test_the_event_loop_runs_while_a_batch_renders(make_scheduler: MakeScheduler, avatar: Avatar) -> None:
    scheduler = await make_scheduler(FakeGenerator(cost_s=0.3))
    rendering = asyncio.create_task(scheduler.render("a", request(avatar, 0), deadline_s=soon()))
    ticks = 0
    while not rendering.done():
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks >= 10  # ~30 if the loop never waited on the generator
    assert await rendering is not None


async def test_one_batch_at_a_time_on_one_thread(make_scheduler: MakeScheduler, avatar: Avatar) -> None:
    generator = FakeGenerator(cost_s=0.005)
    scheduler = await make_scheduler(generator, max_batch=4)

    async def speak(session: int) -> list[VideoFrame | None]:
        return [await scheduler.render(session, request(avatar, i), deadline_s=soon()) for i in range(5)]

    results = await asyncio.gather(*(speak(session) for session in range(6)))
    assert all(frame is not None for frames in results for frame in frames)
    assert max(generator.batch_sizes) <= 4 and sum(generator.batch_sizes) == 30
    assert generator.most_concurrent == 1
    assert len(generator.thread_names) == 1 and generator.thread_names.pop().startswith("render")


async def test_render_before_start_is_an_error(avatar: Avatar) -> None:
    scheduler = RenderScheduler(Renderer(FakeGenerator()))
    with pytest.raises(RuntimeError, match="start"):
        await scheduler.render("a", request(avatar, 0), deadline_s=soon())


@pytest.mark.parametrize("workers", [1, 2])
async def test_at_most_workers_batches_render_at_once(
    make_scheduler: MakeScheduler, avatar: Avatar, workers: int
) -> None:
    generator = FakeGenerator(gate=threading.Event())
    scheduler = await make_scheduler(generator, max_batch=1, workers=workers)
    calls = [
        asyncio.create_task(scheduler.render(session, request(avatar, session), deadline_s=soon()))
        for session in range(3)
    ]
    await until(lambda: generator.running == workers)
    # the third session's request is still pending, not queued behind the busy workers
    scheduler.forget(2)
    generator.gate.set()
    frames = await asyncio.gather(*calls)
    assert [None if frame is None else frame.index for frame in frames] == [0, 1, None]
    assert generator.batch_sizes == [1, 1]
    assert generator.most_concurrent == workers
    assert all(name.startswith("render") for name in generator.thread_names)


async def test_close_waits_for_every_batch_being_rendered(make_scheduler: MakeScheduler, avatar: Avatar) -> None:
    generator = FakeGenerator(gate=threading.Event())
    scheduler = await make_scheduler(generator, max_batch=1, workers=2)
    calls = [
        asyncio.create_task(scheduler.render(session, request(avatar, session), deadline_s=soon()))
        for session in range(2)
    ]
    await until(lambda: generator.running == 2)
    closing = asyncio.create_task(scheduler.close())
    await asyncio.wait([closing], timeout=0.02)
    assert not closing.done()
    generator.gate.set()
    await closing
    assert (scheduler.stats.batches, scheduler.stats.frames_rendered) == (2, 2)
    frames = await asyncio.gather(*calls)
    assert [None if frame is None else frame.index for frame in frames] == [0, 1]


async def test_an_error_in_one_parallel_batch_spares_the_other(make_scheduler: MakeScheduler, avatar: Avatar) -> None:
    generator = FakeGenerator(gate=threading.Event())
    generator.fail_on_au = 1.0
    scheduler = await make_scheduler(generator, max_batch=1, workers=2)
    calls = [
        asyncio.create_task(scheduler.render(session, request(avatar, index), deadline_s=soon()))
        for session, index in (("a", 1), ("b", 2))
    ]
    await until(lambda: generator.running == 2)
    generator.gate.set()
    failed, rendered = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(failed, RuntimeError) and str(failed) == "generator exploded on AU 1.0"
    assert isinstance(rendered, VideoFrame) and rendered.index == 2
    frame = await scheduler.render("a", request(avatar, 3), deadline_s=soon())
    assert frame is not None and frame.index == 3
    assert (scheduler.stats.batches_failed, scheduler.stats.batches) == (1, 2)


def test_workers_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        RenderScheduler(Renderer(FakeGenerator()), workers=0)
