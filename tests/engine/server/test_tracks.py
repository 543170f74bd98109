"""The outgoing tracks' timing and stamping, driven by a hand-moved clock (no network, no sleeping).

Each ``recv()`` here is called when the clock says a frame is due, so it
returns at once; when it would have to wait, :func:`next_send_s` says until when.
"""

from fractions import Fraction

import av
import numpy as np
import pytest

from engine.pipeline import FrameTrace, VideoFrame
from engine.server.tracks import AvatarVideoTrack, DelayedVoiceTrack, next_send_s

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


async def test_video_track_stamps_still_rendered_and_repeated_frames() -> None:
    clock = Clock()
    sent: list[VideoFrame | None] = []
    skipped: list[None] = []
    still = _picture(0)
    track = AvatarVideoTrack(still, fps=FPS, on_sent=sent.append, on_skipped=lambda: skipped.append(None), clock=clock)

    # Before any audio: the still picture at fps, pts n * 3600.
    first = await track.recv()
    assert first is still and first.pts == 0 and first.time_base == Fraction(1, 90_000)
    clock.advance(1)
    assert (await track.recv()).pts == TICK

    # The first rendered frame (audio index 0) continues where the still frames left off.
    clock.advance(0.6)
    picture0 = _picture(10)
    track.publish(_frame(0), picture0)
    out = await track.recv()
    assert out is picture0 and out.pts == 2 * TICK
    assert sent[-1] is not None and sent[-1].trace.send_s == clock.now_s

    # Audio index 1, one interval later: the next index.
    clock.advance(1)
    track.publish(_frame(1), _picture(11))
    assert (await track.recv()).pts == 3 * TICK

    # Two frames rendered before the sender asks: the newer wins, the older is skipped, pts leave a gap.
    clock.advance(1)
    track.publish(_frame(2), _picture(12))
    newest = _picture(13)
    track.publish(_frame(3), newest)
    out = await track.recv()
    assert out is newest and out.pts == 5 * TICK and len(skipped) == 1
    # A stale frame (older than the one waiting) never replaces it.
    clock.advance(1)
    track.publish(_frame(5), _picture(15))
    track.publish(_frame(4), _picture(14))
    assert (await track.recv()).pts == 7 * TICK and len(skipped) == 2

    # A stall: the last picture repeats 1.5 intervals after it, pts following the wall clock.
    clock.advance(1.5)
    repeat = await track.recv()
    assert repeat.pts == 9 * TICK and sent[-1] is None
    clock.advance(1)
    assert (await track.recv()).pts == 10 * TICK
    # Audio resumes where it was (index 6 -> 8 with the old offset): re-anchored after the repeats.
    clock.advance(0.5)
    track.publish(_frame(6), _picture(16))
    assert (await track.recv()).pts == 11 * TICK
    clock.advance(1)
    track.publish(_frame(7), _picture(17))
    assert (await track.recv()).pts == 12 * TICK


async def test_video_track_never_steps_back_to_a_frame_older_than_one_sent() -> None:
    """Frames rendered in parallel can finish out of order: the older one is skipped, not shown after."""
    clock = Clock()
    skipped: list[None] = []
    track = AvatarVideoTrack(_picture(0), fps=FPS, on_skipped=lambda: skipped.append(None), clock=clock)
    newer = _picture(12)
    track.publish(_frame(2), newer)
    assert await track.recv() is newer
    clock.advance(1)
    track.publish(_frame(1), _picture(11))
    assert len(skipped) == 1
    clock.advance(0.5)
    assert await track.recv() is newer  # the last picture repeated, never frame 1


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
