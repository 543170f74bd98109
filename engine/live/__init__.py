"""Live sessions: one speaker's audio in, AU frames and video frames out, to any transport."""

from engine.live.au_worker import AUWorker
from engine.live.newest import NewestWins
from engine.live.outputs import AUOutput, VideoOutput
from engine.live.session import FrameObserver, LiveParts, LiveSession, render_deadline_s
from engine.live.stats import FrameStats

__all__ = [
    "AUOutput",
    "AUWorker",
    "FrameObserver",
    "FrameStats",
    "LiveParts",
    "LiveSession",
    "NewestWins",
    "VideoOutput",
    "render_deadline_s",
]
