"""Rendering: AU frames of one or many sessions in, finished pictures out.

One generator call serves the whole batch (the scheduler gathers the sessions
whose frames are due); composing each result into its portrait at full
resolution, and its I420, is per frame (``kernels.compose``).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.avatar import Avatar
from engine.backends.base import GeneratorBackend
from engine.pipeline.frames import AUFrame, VideoFrame
from kernels.layers import FaceLayers


@dataclass(frozen=True)
class RenderRequest:
    """Draw ``frame``'s AUs on ``avatar``."""

    avatar: Avatar
    frame: AUFrame


class Renderer:
    """Runs the generator on a batch and composes each result into its portrait."""

    def __init__(self, generator: GeneratorBackend) -> None:
        self.generator = generator

    def render(self, requests: Sequence[RenderRequest]) -> list[VideoFrame]:
        """Render a batch; stamps each frame's trace with the batch's start and end."""
        if not requests:
            return []
        start = time.perf_counter()
        images = np.stack([r.avatar.crop for r in requests])
        aus = np.stack([r.frame.aus for r in requests])
        color, mask = self.generator.run(images, aus)
        pictures = [r.avatar.compose(FaceLayers(c, m)) for r, c, m in zip(requests, color, mask)]
        end = time.perf_counter()
        frames = []
        for request, picture in zip(requests, pictures):
            request.frame.trace.render_start_s = start
            request.frame.trace.render_end_s = end
            frame = request.frame
            frames.append(VideoFrame(frame.index, picture.rgb, frame.aus, frame.trace, i420=picture.i420))
        return frames
