"""Where a live session's frames go: the two kinds of output every transport is built from.

A :class:`engine.live.LiveSession` produces, for one speaker, AU frames (one per
video frame, as soon as the audio they show has arrived) and rendered video
frames. Outputs are thin adapters that move them somewhere: a WebSocket, a
WebRTC track, a virtual camera, a WHIP publisher, VMC/OSC, VTube Studio, Live
Link, an mp4. They differ in one way that matters for latency:

- an **AU output** gets every AU frame, in order, none skipped (a game engine
  interpolates between records and must not see gaps); records are a few
  hundred bytes, so keeping up is the transport's job;
- a **video output** gets rendered frames *newest first*: while it is busy
  with one frame, newer frames replace each other and only the newest is handed
  over next, so a slow output shows fewer frames instead of older ones
  (``engine.live.newest.NewestWins``). Frames never go backwards in index.

Both are called from the event loop, one call at a time per output; a call
may await (a socket write, a thread for encoding). An exception raised by an
output ends the session that owns it, and no other.
"""

from typing import Protocol

from engine.pipeline.frames import AUFrame, VideoFrame


class AUOutput(Protocol):
    """Receives every AU frame of a session, in order."""

    name: str
    """Short transport label for metrics and logs ("ws", "vmc", "vts", "livelink", ...)."""

    async def send_aus(self, frame: AUFrame) -> None:
        """Deliver ``frame`` (its ``aus`` are (17,) float32 in 0..5, after the session's expression)."""
        ...

    async def close(self) -> None:
        """The session ended: release sockets and tasks (called once; further sends will not come)."""
        ...


class VideoOutput(Protocol):
    """Receives rendered frames, newest first (see the module docstring)."""

    name: str
    """Short transport label for metrics and logs ("webrtc", "ws", "vcam", "whip", ...)."""

    async def send_video(self, frame: VideoFrame) -> None:
        """Deliver ``frame`` ((H, W, 3) uint8 RGB at the portrait's size); return when it is handed over."""
        ...

    async def close(self) -> None:
        """The session ended: release what the output holds (called once)."""
        ...
