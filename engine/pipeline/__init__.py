"""A session's chain: audio in, AU frames, rendered video frames out, with traces."""

from engine.audio import SAMPLE_RATE_HZ
from engine.pipeline.au_estimator import AUEstimator, frame_hop
from engine.pipeline.frames import AUFrame, FrameTrace, VideoFrame
from engine.pipeline.renderer import Renderer, RenderRequest
from engine.pipeline.session import Session

__all__ = [
    "AUEstimator",
    "AUFrame",
    "FrameTrace",
    "Renderer",
    "RenderRequest",
    "SAMPLE_RATE_HZ",
    "Session",
    "VideoFrame",
    "frame_hop",
]
