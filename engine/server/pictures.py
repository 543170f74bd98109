"""Rendered RGB frames to what the video encoder takes: I420 (yuv420p) at the output size.

Scaling and colour conversion run in FFmpeg's swscale (~1 ms for 512x512);
callers run :meth:`PictureFormatter.__call__` off the event loop.
"""

import av
import numpy as np


def output_dimensions(height_px: int, width_px: int, size_px: int) -> tuple[int, int]:
    """(width, height) of the video: the longer side ``size_px``, the aspect kept, both even.

    A square portrait (the default) gives a ``size_px`` x ``size_px`` video.
    """
    if size_px < 2:
        raise ValueError(f"output size must be at least 2 px, got {size_px}")
    scale = size_px / max(height_px, width_px)
    width = max(2, round(width_px * scale / 2) * 2)
    height = max(2, round(height_px * scale / 2) * 2)
    return width, height


class PictureFormatter:
    """Turns (H, W, 3) uint8 RGB portraits of one size into yuv420p frames of the output size."""

    def __init__(self, *, portrait_height_px: int, portrait_width_px: int, output_size_px: int) -> None:
        self.width_px, self.height_px = output_dimensions(portrait_height_px, portrait_width_px, output_size_px)

    def __call__(self, rgb: np.ndarray) -> av.VideoFrame:
        """A new yuv420p frame of (``width_px``, ``height_px``); pts and time base are left to the track."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        return frame.reformat(width=self.width_px, height=self.height_px, format="yuv420p")
