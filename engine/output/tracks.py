"""A WebRTC session's outgoing tracks: the avatar's video and, optionally, the voice delayed to match.

aiortc's sender does not pace: it awaits ``track.recv()`` and encodes and sends
what it gets at once. So each track here decides *when* its next frame goes
out, and stamps it.

Video (:class:`AvatarVideoTrack`, fed by :class:`TrackOutput`, the session's
video output). The frame clock follows the audio clock: a frame is rendered as
soon as the audio it shows has arrived and goes out as soon as it is rendered,
with no free-running timer to wait for. The track:

- sends a newly rendered frame at once, but never sooner than half a frame
  interval after the previous one (a burst is thinned, not queued: a newer
  frame replaces a waiting one, ``engine.live.NewestWins``);
- repeats the last picture when nothing new has come 1.5 frame intervals
  after a rendered frame, then every interval (before any audio: the still
  avatar at ``fps``), so the receiver always gets ``fps`` frames per second;
- stamps each frame with the instant it is sent, on the 90 kHz RTP clock:
  ``pts = round((send_s - first_send_s) * 90000)``, strictly increasing.
  A receiver schedules playout from these timestamps: were they to run ahead
  of real time (frame indices after a stall, say), its jitter buffer would
  hold frames back to catch up, and the person watching would see the face
  up to a second late. Stamped from the send instant, the RTP clock advances
  exactly as the wall clock does, whatever stalls, skips or repeats happen,
  and the receiver's buffer only absorbs network jitter.

Voice (:class:`DelayedVoiceTrack`): the caller's own decoded audio frames,
each released once a video frame showing an instant at or after its start has
been sent, so that lips and voice leave together, delayed by the pipeline's
actual latency; stamped from the same audio clock.
"""

import asyncio
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from engine.live import NewestWins
from engine.pipeline import SAMPLE_RATE_HZ, VideoFrame

VIDEO_CLOCK_RATE_HZ = 90_000
"""RTP clock of video: pts are in 1/90000 s."""
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE_HZ)

MIN_GAP_FRAMES = 0.5
"""A rendered frame waits until this many frame intervals have passed since the previous send."""
REPEAT_AFTER_FRAMES = 1.5
"""With no new frame this many intervals after a rendered one, the last picture is repeated."""


def next_send_s(*, last_send_s: float, last_was_rendered: bool, frame_waiting: bool, fps: int) -> float:
    """When the next video frame may go, in the clock's seconds, given when the last one went.

    A rendered frame waiting goes ``MIN_GAP_FRAMES`` intervals after the last
    send; with none waiting, the last picture is repeated ``REPEAT_AFTER_FRAMES``
    intervals after a rendered frame, or one interval after a repeat.
    """
    interval_s = 1.0 / fps
    if frame_waiting:
        return last_send_s + MIN_GAP_FRAMES * interval_s
    return last_send_s + (REPEAT_AFTER_FRAMES if last_was_rendered else 1.0) * interval_s


class WallClockStamper:
    """90 kHz pts from send instants: the RTP clock advances as the wall clock does, strictly increasing."""

    def __init__(self) -> None:
        self._first_s: float | None = None
        self._last_pts = -1

    def __call__(self, send_s: float) -> int:
        """The pts of a frame sent at ``send_s`` (seconds); the first frame gets 0."""
        if self._first_s is None:
            self._first_s = send_s
        pts = max(round((send_s - self._first_s) * VIDEO_CLOCK_RATE_HZ), self._last_pts + 1)
        self._last_pts = pts
        return pts


class AvatarVideoTrack(MediaStreamTrack):
    """The avatar's video: rendered frames when they come, the last picture repeated when they do not.

    Hand it frames with :meth:`publish`; aiortc's sender calls :meth:`recv`.
    """

    kind = "video"

    def __init__(
        self,
        still: av.VideoFrame,
        *,
        fps: int,
        on_sent: Callable[[VideoFrame], None] | None = None,
        on_repeat: Callable[[], None] | None = None,
        on_dropped: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """
        Args:
            still: the picture to show before the first rendered frame (yuv420p).
            fps: the session's frame rate, frames per second.
            on_sent: called as each rendered frame goes out (its ``trace.send_s``
                and ``trace.send_pts`` set).
            on_repeat: called as the last picture is sent again.
            on_dropped: called when a published frame is replaced by a newer
                one before its turn came.
            clock: seconds; the clock of ``FrameTrace`` (``time.perf_counter``).
        """
        super().__init__()
        self.fps = fps
        self._on_sent = on_sent
        self._on_repeat = on_repeat
        self._clock = clock
        self._picture = still
        # Not "_waiting": pyee's AsyncIOEventEmitter, a base class, keeps its own futures there.
        self._next: NewestWins[tuple[VideoFrame, av.VideoFrame]] = NewestWins(on_drop=on_dropped)
        self._changed = asyncio.Event()
        self._stamp_pts = WallClockStamper()
        self._last_send_s: float | None = None
        self._last_was_rendered = False

    def publish(self, frame: VideoFrame, picture: av.VideoFrame) -> None:
        """Offer a newly rendered frame and its yuv420p picture; it goes when pacing allows, unless a newer one
        is published first (newest wins)."""
        if self._next.offer(frame.index, (frame, picture)):
            self._changed.set()

    async def recv(self) -> av.VideoFrame:
        """The next frame to send, at the moment it should go (see the module docstring)."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            now = self._clock()
            due = now
            if self._last_send_s is not None:
                due = next_send_s(
                    last_send_s=self._last_send_s,
                    last_was_rendered=self._last_was_rendered,
                    frame_waiting=self._next.waiting,
                    fps=self.fps,
                )
            if now >= due:
                return self._send_next(now) if self._next.waiting else self._send_repeat(now)
            self._changed.clear()
            try:
                async with asyncio.timeout(due - now):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def stop(self) -> None:
        """End the track; a pending :meth:`recv` raises MediaStreamError."""
        super().stop()
        self._next.clear()
        self._changed.set()

    def _send_next(self, now: float) -> av.VideoFrame:
        taken = self._next.take()
        assert taken is not None
        frame, picture = taken
        self._picture = picture
        self._stamp(picture, now, rendered=True)
        frame.trace.send_s = now
        frame.trace.send_pts = picture.pts
        if self._on_sent is not None:
            self._on_sent(frame)
        return picture

    def _send_repeat(self, now: float) -> av.VideoFrame:
        self._stamp(self._picture, now, rendered=False)
        if self._on_repeat is not None:
            self._on_repeat()
        return self._picture

    def _stamp(self, picture: av.VideoFrame, now: float, *, rendered: bool) -> None:
        picture.pts = self._stamp_pts(now)
        picture.time_base = VIDEO_TIME_BASE
        self._last_send_s = now
        self._last_was_rendered = rendered


class TrackOutput:
    """The WebRTC video output of a live session: I420 off the event loop, then the paced track.

    It hands each frame over without waiting for its turn: the track paces, and
    a frame still waiting when a newer one arrives is dropped there (newest
    wins). So the track, not this output, reports what left (``on_sent``,
    ``on_repeat``, ``on_dropped``): attach it with ``reports_sends=True``.
    """

    name = "webrtc"

    def __init__(self, track: AvatarVideoTrack, to_picture: Callable[[VideoFrame], av.VideoFrame]) -> None:
        """``to_picture``: a rendered frame -> its yuv420p picture at the video size (run in a thread)."""
        self._track = track
        self._to_picture = to_picture

    async def send_video(self, frame: VideoFrame) -> None:
        picture = await asyncio.to_thread(self._to_picture, frame)
        self._track.publish(frame, picture)

    async def close(self) -> None:
        self._track.stop()


class DelayedVoiceTrack(MediaStreamTrack):
    """The caller's voice, held until the video showing it has gone out.

    Frames are the decoded incoming ones (any rate; s16 mono or stereo, what
    aiortc's Opus encoder accepts), each with its start on the session's
    audio clock (16 kHz samples). At most ``max_buffered_s`` of audio waits:
    beyond it the oldest frames are dropped, never queued.
    """

    kind = "audio"

    def __init__(self, *, max_buffered_s: float = 1.0) -> None:
        super().__init__()
        self.max_buffered_s = max_buffered_s
        self.frames_dropped = 0
        self._frames: deque[tuple[int, av.AudioFrame]] = deque()
        self._buffered_s = 0.0
        self._released_through = -1
        self._changed = asyncio.Event()

    def push(self, frame: av.AudioFrame, start_sample: int) -> None:
        """Hold ``frame``, which starts at ``start_sample`` on the audio clock (16 kHz samples)."""
        if frame.format.name != "s16" or len(frame.layout.channels) > 2:
            return  # not what the Opus encoder takes; aiortc's decoder never produces it
        self._frames.append((start_sample, frame))
        self._buffered_s += frame.samples / frame.sample_rate
        while self._buffered_s > self.max_buffered_s and len(self._frames) > 1:
            _, dropped = self._frames.popleft()
            self._buffered_s -= dropped.samples / dropped.sample_rate
            self.frames_dropped += 1
        self._changed.set()

    def release_through(self, shown_sample: int) -> None:
        """A video frame showing audio instant ``shown_sample`` (16 kHz samples) was sent."""
        if shown_sample > self._released_through:
            self._released_through = shown_sample
            self._changed.set()

    async def recv(self) -> av.AudioFrame:
        """The next released frame, pts on its own rate's clock from its audio-clock start."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._frames and self._frames[0][0] <= self._released_through:
                start_sample, frame = self._frames.popleft()
                self._buffered_s -= frame.samples / frame.sample_rate
                frame.pts = start_sample * frame.sample_rate // SAMPLE_RATE_HZ
                frame.time_base = Fraction(1, frame.sample_rate)
                return frame
            self._changed.clear()
            await self._changed.wait()

    def stop(self) -> None:
        """End the track; a pending :meth:`recv` raises MediaStreamError."""
        super().stop()
        self._changed.set()
