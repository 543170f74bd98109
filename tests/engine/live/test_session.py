"""LiveSession: the one session core every transport uses, on small real networks (torch, random weights)."""

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from engine.audio import AudioFormatError
from engine.avatar import Avatar, load_default_avatar
from engine.backends.base import GeneratorBackend
from engine.backends.torch_backend import TorchGenerator
from engine.live import AUWorker, LiveParts, LiveSession, render_deadline_s
from engine.live.session import MAX_CONSECUTIVE_RENDER_FAILURES
from engine.pipeline import SAMPLE_RATE_HZ, AUFrame, FrameTrace, Renderer, VideoFrame
from engine.scheduler import RenderScheduler
from tests.engine.nets import au_step_backends, small_cause, small_generator

FPS = 25
CHUNK = 320  # 20 ms at 16 kHz


class FailingGenerator(GeneratorBackend):
    name = "failing"

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError("the runtime broke")


class AURecorder:
    name = "recorder"

    def __init__(self) -> None:
        self.frames: list[AUFrame] = []
        self.closed = False

    async def send_aus(self, frame: AUFrame) -> None:
        self.frames.append(frame)

    async def close(self) -> None:
        self.closed = True


class SlowVideo:
    """Takes ``cost_s`` per frame, like an encoder or a client that cannot keep up."""

    name = "slow"

    def __init__(self, cost_s: float = 0.0, *, fail: bool = False) -> None:
        self.cost_s = cost_s
        self.fail = fail
        self.indices: list[int] = []
        self.closed = False

    async def send_video(self, frame: VideoFrame) -> None:
        if self.fail:
            raise ConnectionError("the peer went away")
        await asyncio.sleep(self.cost_s)
        self.indices.append(frame.index)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return load_default_avatar()


@pytest.fixture(scope="module")
def au_backend(tmp_path_factory: pytest.TempPathFactory):
    return au_step_backends(small_cause(2), Path(tmp_path_factory.mktemp("cause")))["torch"]


async def _parts(avatar: Avatar, au_backend, generator: GeneratorBackend) -> AsyncIterator[LiveParts]:
    scheduler = RenderScheduler(Renderer(generator), max_batch=1)
    await scheduler.start()
    parts = LiveParts(avatar=avatar, au_backend=au_backend, scheduler=scheduler, au_worker=AUWorker())
    try:
        yield parts
    finally:
        await scheduler.close()
        parts.au_worker.close()


@pytest_asyncio.fixture
async def parts(avatar: Avatar, au_backend) -> AsyncIterator[LiveParts]:
    async for value in _parts(avatar, au_backend, TorchGenerator(small_generator(), threads=1)):
        yield value


def speech(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)


async def feed(session: LiveSession, audio: np.ndarray, *, pace_s: float = 0.0) -> None:
    for start in range(0, audio.shape[0], CHUNK):
        await session.push_audio(audio[start : start + CHUNK], rate_hz=SAMPLE_RATE_HZ, channels=1)
        if pace_s:
            await asyncio.sleep(pace_s)


def test_the_deadline_is_one_frame_after_the_audio_arrived() -> None:
    trace = FrameTrace(shown_sample=0, due_sample=720, audio_arrival_s=10.0)
    assert render_deadline_s(trace, 25) == pytest.approx(10.04)


async def test_every_au_frame_reaches_the_au_outputs_in_order(parts: LiveParts) -> None:
    session = LiveSession(parts, "s1", fps=FPS)
    records = AURecorder()
    session.add_au_output(records)
    audio = np.concatenate([np.zeros(SAMPLE_RATE_HZ // 2, np.float32), speech(0.8)])
    await feed(session, audio)
    await session.finish()
    assert [f.index for f in records.frames] == list(range(math.ceil(audio.size * FPS / SAMPLE_RATE_HZ)))
    report = session.stats_report()
    assert report["fresh_fps"] > 0 and len(report["frames"]) == len(records.frames)  # AU-only: records are the frames
    assert report["audio_s"] == pytest.approx(1.3, abs=0.01)
    (onset,) = report["speech_onsets"]  # where the speech starts after the half second of silence
    assert SAMPLE_RATE_HZ // 2 <= onset < SAMPLE_RATE_HZ // 2 + 1600
    assert session.stats_report()["speech_onsets"] == []
    await session.close()
    assert records.closed


async def test_a_slow_video_output_gets_fewer_frames_never_older_ones(parts: LiveParts) -> None:
    session = LiveSession(parts, "s2", fps=FPS)
    fast, slow = SlowVideo(), SlowVideo(cost_s=0.15)
    session.add_video_output(fast)
    session.add_video_output(slow)
    started_s = time.perf_counter()
    await feed(session, speech(2.0), pace_s=CHUNK / SAMPLE_RATE_HZ)
    await session.finish()
    elapsed_s = time.perf_counter() - started_s
    report = session.stats_report()
    await session.close()
    for output in (fast, slow):
        assert output.indices == sorted(set(output.indices)), "frames went backwards or repeated"
    # The slow output took what it could in the time (however loaded the machine), and skipped the rest.
    assert len(slow.indices) <= elapsed_s / slow.cost_s + 1 and len(slow.indices) < len(fast.indices)
    # The slow output still ends on the newest frame: latency did not grow, frames were skipped instead.
    assert slow.indices[-1] == fast.indices[-1]
    assert report["frames_skipped"] > 0
    assert fast.closed and slow.closed


async def test_renders_that_keep_failing_report_the_session_once(avatar: Avatar, au_backend) -> None:
    async for parts in _parts(avatar, au_backend, FailingGenerator()):
        failures: list[str] = []
        session = LiveSession(parts, "s3", fps=FPS, on_failure=failures.append)
        session.add_video_output(SlowVideo())
        frames_needed = MAX_CONSECUTIVE_RENDER_FAILURES + 10
        await feed(session, speech(frames_needed / FPS + 0.2), pace_s=0.01)
        await session.finish()
        await session.close()
        assert len(failures) == 1 and "failed to render" in failures[0]


async def test_an_output_that_raises_reports_the_session(parts: LiveParts) -> None:
    failures: list[str] = []
    session = LiveSession(parts, "s4", fps=FPS, on_failure=failures.append)
    session.add_video_output(SlowVideo(fail=True))
    await feed(session, speech(0.5))
    await session.finish()
    await session.close()
    assert failures and "video output slow failed" in failures[0]


async def test_a_format_change_mid_stream_is_refused_and_the_session_goes_on(parts: LiveParts) -> None:
    session = LiveSession(parts, "s5", fps=FPS)
    records = AURecorder()
    session.add_au_output(records)
    audio = speech(0.6)
    assert await session.push_audio(audio[:CHUNK], rate_hz=SAMPLE_RATE_HZ, channels=1) == 0
    with pytest.raises(AudioFormatError, match="changed mid-stream"):
        await session.push_audio(np.zeros((960, 2), np.int16), rate_hz=48_000, channels=2)
    assert await session.push_audio(audio[CHUNK:], rate_hz=SAMPLE_RATE_HZ, channels=1) == CHUNK
    await session.finish()
    await session.close()
    assert len(records.frames) == math.ceil(audio.size * FPS / SAMPLE_RATE_HZ)


async def test_close_forgets_the_pending_render_and_is_idempotent(parts: LiveParts) -> None:
    session = LiveSession(parts, "s6", fps=FPS)
    video = SlowVideo(cost_s=0.5)
    session.add_video_output(video)
    await feed(session, speech(0.5))
    await session.close()
    await session.close()
    assert video.closed
    await asyncio.sleep(0.3)  # a batch already rendering when the session closed completes; nothing else starts
    rendered = parts.scheduler.stats.frames_rendered
    await asyncio.sleep(0.3)
    assert parts.scheduler.stats.frames_rendered == rendered
    assert video.indices == []  # the frame being sent when the session closed never finished
