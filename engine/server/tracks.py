"""A WebRTC session's outgoing tracks: the avatar's video and, optionally, the voice delayed to match.

aiortc's sender does not pace: it awaits ``track.recv()`` and encodes and sends
what it gets at once. So each track here decides *when* its next frame goes
out, and stamps it.

Video (:class:`AvatarVideoTrack`). The frame clock follows the audio clock:
a frame is rendered as soon as the audio it shows has arrived and goes out as
soon as it is rendered, with no free-running timer to wait for. The track:

- sends a newly rendered frame at once, but never sooner than half a frame
  interval after the previous one (a burst is thinned, not queued: a newer
  frame replaces a waiting one, which is counted as skipped);
- repeats the last picture when nothing new has come 1.5 frame intervals
  after a rendered frame, then every interval (before any audio: the still
  avatar at ``fps``), so the receiver always gets ``fps`` frames per second;
- stamps frame pts on a 90 kHz clock from an output frame index n
  (pts = n * 90000 / fps): n is the frame's own index on the session's audio
  clock plus an offset, so pts advance exactly as the audio does (a skipped
  frame leaves a gap). The offset starts where the still frames before the
  first audio left off and only grows (when a repeat filled a stall), so pts
  strictly increase.

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


class AvatarVideoTrack(MediaStreamTrack):
    """The avatar's video: rendered frames when they come, the last picture repeated when they do not.

    Feed it with :meth:`publish`; aiortc's sender calls :meth:`recv`.
    """

    kind = "video"

    def __init__(
        self,
        still: av.VideoFrame,
        *,
        fps: int,
        on_sent: Callable[[VideoFrame | None], None] | None = None,
        on_skipped: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """
        Args:
            still: the picture to show before the first rendered frame (yuv420p).
            fps: the session's frame rate, frames per second.
            on_sent: called as each frame goes out, with the rendered frame
                (its ``trace.send_s`` set) or None for a repeated picture.
            on_skipped: called when a published frame is replaced before it was sent.
            clock: seconds; the clock of ``FrameTrace`` (``time.perf_counter``).
        """
        super().__init__()
        self.fps = fps
        self._on_sent = on_sent
        self._on_skipped = on_skipped
        self._clock = clock
        self._picture = still
        self._waiting: tuple[VideoFrame, av.VideoFrame] | None = None
        self._published = asyncio.Event()
        self._last_send_s: float | None = None
        self._last_was_rendered = False
        self._last_index = -1
        self._index_offset = 0
        self._newest_sent_index = -1
        """The session frame index of the newest rendered frame sent (not the pts index)."""

    def publish(self, frame: VideoFrame, picture: av.VideoFrame) -> None:
        """Offer a newly rendered frame and its yuv420p picture; the newest one wins.

        Of two frames waiting, the older one is dropped and counted as skipped;
        so is a frame older than one already sent (frames rendered in parallel
        can finish out of order), which would step the face back in time.
        """
        if frame.index <= self._newest_sent_index:
            self._skip()
            return
        if self._waiting is not None:
            self._skip()
            if frame.index <= self._waiting[0].index:
                return
        self._waiting = (frame, picture)
        self._published.set()

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
                    frame_waiting=self._waiting is not None,
                    fps=self.fps,
                )
            if now >= due:
                return self._send_rendered(now) if self._waiting is not None else self._send_repeat(now)
            self._published.clear()
            try:
                async with asyncio.timeout(due - now):
                    await self._published.wait()
            except TimeoutError:
                pass

    def stop(self) -> None:
        """End the track; a pending :meth:`recv` raises MediaStreamError."""
        super().stop()
        self._published.set()

    def _send_rendered(self, now: float) -> av.VideoFrame:
        assert self._waiting is not None
        frame, picture = self._waiting
        self._waiting = None
        self._newest_sent_index = frame.index
        index = frame.index + self._index_offset
        if index <= self._last_index:
            self._index_offset += self._last_index + 1 - index
            index = self._last_index + 1
        self._picture = picture
        return self._stamp(picture, index, now, frame)

    def _send_repeat(self, now: float) -> av.VideoFrame:
        if self._last_send_s is None:
            index = 0
        else:
            index = self._last_index + max(1, round((now - self._last_send_s) * self.fps))
        return self._stamp(self._picture, index, now, None)

    def _stamp(self, picture: av.VideoFrame, index: int, now: float, frame: VideoFrame | None) -> av.VideoFrame:
        picture.pts = index * VIDEO_CLOCK_RATE_HZ // self.fps
        picture.time_base = VIDEO_TIME_BASE
        self._last_index = index
        self._last_send_s = now
        self._last_was_rendered = frame is not None
        if frame is not None:
            frame.trace.send_s = now
            frame.trace.send_pts = picture.pts
        if self._on_sent is not None:
            self._on_sent(frame)
        return picture

    def _skip(self) -> None:
        if self._on_skipped is not None:
            self._on_skipped()


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
