"""The outgoing tracks' timing and stamping, driven by a hand-moved clock (no network, no sleeping).

Each ``recv()`` here is called when the clock says a frame is due, so it
returns at once; when it would have to wait, :func:`next_send_s` says until when.
Newest-wins between renders and the track is the live session's (tests/engine/live).
"""

import asyncio
from fractions import Fraction

import av
import numpy as np
import pytest

from engine.output.tracks import AvatarVideoTrack, DelayedVoiceTrack, next_send_s
from engine.pipeline import FrameTrace, VideoFrame

FPS = 25
INTERVAL_S = 1 / FPS
TICK = 90_000 // FPS


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, frames: float) -> None:
        self.now_s += frames * INTERVAL_S


def _picture(value: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((4, 4, 3), value, np.uint8), format="rgb24").reformat(format="yuv420p")


def _frame(index: int) -> VideoFrame:
    trace = FrameTrace(shown_sample=index * 640, due_sample=index * 640 + 400, audio_arrival_s=0.0)
    return VideoFrame(index, np.zeros((4, 4, 3), np.uint8), np.zeros(17, np.float32), trace)


def test_next_send_s() -> None:
    assert next_send_s(last_send_s=1.0, last_was_rendered=True, frame_waiting=True, fps=FPS) == pytest.approx(1.02)
    assert next_send_s(last_send_s=1.0, last_was_rendered=True, frame_waiting=False, fps=FPS) == pytest.approx(1.06)
    assert next_send_s(last_send_s=1.0, last_was_rendered=False, frame_waiting=False, fps=FPS) == pytest.approx(1.04)


async def test_video_track_stamps_still_rendered_and_repeated_frames_from_the_wall_clock() -> None:
    clock = Clock()
    sent: list[VideoFrame] = []
    repeats: list[None] = []
    dropped: list[None] = []
    still = _picture(0)
    track = AvatarVideoTrack(
        still,
        fps=FPS,
        on_sent=sent.append,
        on_repeat=lambda: repeats.append(None),
        on_dropped=lambda: dropped.append(None),
        clock=clock,
    )

    # Before any audio: the still picture at fps, pts from 0 on the 90 kHz clock.
    first = await track.recv()
    assert first is still and first.pts == 0 and first.time_base == Fraction(1, 90_000)
    clock.advance(1)
    assert (await track.recv()).pts == TICK and len(repeats) == 2

    # A rendered frame 0.6 intervals later goes at once, stamped with its send instant.
    clock.advance(0.6)
    picture0 = _picture(10)
    track.publish(_frame(0), picture0)
    out = await track.recv()
    assert out is picture0 and out.pts == round(1.6 * TICK)
    assert sent[-1].trace.send_s == clock.now_s and sent[-1].trace.send_pts == out.pts

    # Two frames rendered before the sender asks: the newer wins, the older is dropped.
    clock.advance(1)
    track.publish(_frame(1), _picture(11))
    newest = _picture(12)
    track.publish(_frame(2), newest)
    assert await track.recv() is newest and len(dropped) == 1

    # A stall of 5 intervals: repeats fill it at the wall clock's pace, and the next frame's pts
    # is where the wall clock is, not one frame after the last rendered one.
    clock.advance(1.5)
    assert (await track.recv()).pts == round(4.1 * TICK)
    for k in range(3):
        clock.advance(1)
        assert (await track.recv()).pts == round((5.1 + k) * TICK)
    clock.advance(0.5)
    track.publish(_frame(9), _picture(19))
    assert (await track.recv()).pts == round(7.6 * TICK)


async def test_rtp_clock_follows_the_wall_clock_through_stalls_bursts_and_skips() -> None:
    """Over any window, pts advance equals wall time advance within one frame (the receiver's playout rule)."""
    rng = np.random.default_rng(7)
    clock = Clock()
    track = AvatarVideoTrack(_picture(0), fps=FPS, clock=clock)
    stamps: list[tuple[float, int]] = []
    index = 0
    for _ in range(400):
        event = str(rng.choice(["frame", "burst", "stall", "skip"], p=[0.7, 0.1, 0.1, 0.1]))
        clock.advance({"frame": 1.0, "burst": 0.5, "stall": float(rng.uniform(2, 12)), "skip": 2.0}[event])
        if event == "stall" and stamps:
            due = next_send_s(last_send_s=stamps[-1][0], last_was_rendered=True, frame_waiting=False, fps=FPS)
            clock.now_s = max(clock.now_s, due)  # nothing new: the last picture repeats
        else:
            index += 3 if event == "skip" else 1
            track.publish(_frame(index), _picture(index % 200))
            if event == "burst":
                index += 1
                track.publish(_frame(index), _picture(index % 200))
        out = await track.recv()
        stamps.append((clock.now_s, out.pts))
    times = np.array([t for t, _ in stamps])
    pts_s = np.array([p for _, p in stamps]) / 90_000
    assert (np.diff(pts_s) > 0).all()
    # Every window [i, j]: RTP advance minus wall advance, bounded by one frame interval.
    drift = (pts_s - pts_s[0]) - (times - times[0])
    assert drift.max() - drift.min() <= 1 / FPS, (drift.min(), drift.max())
    span_s = times[-1] - times[0]
    print(f"{len(stamps)} frames over {span_s:.1f} s: RTP clock - wall clock within {np.ptp(drift) * 1e3:.3f} ms")


async def test_stop_with_an_async_ended_handler() -> None:
    """pyee keeps its own futures in ``_waiting``: the track must not overwrite it (aiortc's examples do this)."""
    track = AvatarVideoTrack(_picture(0), fps=FPS)
    ended: list[str] = []

    @track.on("ended")
    async def on_ended() -> None:
        ended.append("ended")

    track.stop()
    await asyncio.sleep(0.01)
    assert ended == ["ended"]


def _audio(start: int, rate_hz: int = 48_000, samples: int = 960) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.full((1, samples * 2), start % 100, np.int16), format="s16", layout="stereo")
    frame.sample_rate = rate_hz
    return frame


async def test_voice_track_releases_audio_once_its_video_went_out() -> None:
    track = DelayedVoiceTrack(max_buffered_s=0.1)
    for k in range(4):  # 20 ms each, starting at 0, 320, 640, 960 samples of the 16 kHz clock
        track.push(_audio(k), start_sample=k * 320)
    track.release_through(640)  # the video frame showing sample 640 was sent
    released = [await track.recv() for _ in range(3)]
    assert [f.pts for f in released] == [0, 960, 1920]  # 48 kHz clock, from the 16 kHz start
    assert released[0].time_base == Fraction(1, 48_000)
    # Bounded: beyond max_buffered_s the oldest frames go, they never queue.
    for k in range(4, 12):
        track.push(_audio(k), start_sample=k * 320)
    assert track.frames_dropped == 4
    track.release_through(10**9)
    assert (await track.recv()).pts == 7 * 960
