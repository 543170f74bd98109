"""Rendering: AU frames of one or many sessions in, finished pictures out.

One generator call serves the whole batch (the scheduler gathers the sessions
whose frames are due); blending and pasting back are per frame. The numpy
post-processing here is the reference the CUDA kernels are held to.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.avatar import Avatar
from engine.backends.base import GeneratorBackend
from engine.pipeline.frames import AUFrame, VideoFrame
from kernels.reference import attention_blend


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
        faces = attention_blend(images, color, mask)
        pictures = [r.avatar.compose(face) for r, face in zip(requests, faces)]
        end = time.perf_counter()
        frames = []
        for request, rgb in zip(requests, pictures):
            request.frame.trace.render_start_s = start
            request.frame.trace.render_end_s = end
            frames.append(VideoFrame(request.frame.index, rgb, request.frame.aus, request.frame.trace))
        return frames
