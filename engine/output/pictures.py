"""Rendered frames to what the video encoder takes: I420 (yuv420p) at the output size.

The renderer already gives each frame its I420 planes (BT.601 limited range,
``kernels.reference.rgb_to_i420``'s numbers; only the 2x2 blocks around the
face are converted per frame, ``kernels.compose``): the formatter wraps them
in an ``av.VideoFrame`` and, when the output size differs from the portrait's,
scales them in FFmpeg's swscale (yuv420p to yuv420p: no colour conversion).
A bare RGB picture is converted with the same reference first. Callers run
:meth:`PictureFormatter.__call__` off the event loop.
"""

import av
import numpy as np

from engine.pipeline.frames import VideoFrame
from kernels.reference import rgb_to_i420


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
    """Turns frames of one portrait size into yuv420p frames of the output size.

    Call it as ``formatter(frame)`` with the pipeline's :class:`VideoFrame`
    (its ``i420`` planes are used as they are), or ``formatter(rgb)`` with a
    uint8 (H, W, 3) RGB array (converted first: a whole-frame conversion,
    slower than using the planes). Returns a new ``av.VideoFrame`` (yuv420p,
    ``width_px`` x ``height_px``); pts and time base are left to the track.
    """

    def __init__(self, *, portrait_height_px: int, portrait_width_px: int, output_size_px: int) -> None:
        self.portrait_height_px, self.portrait_width_px = portrait_height_px, portrait_width_px
        self.width_px, self.height_px = output_dimensions(portrait_height_px, portrait_width_px, output_size_px)

    def __call__(self, picture: VideoFrame | np.ndarray) -> av.VideoFrame:
        if isinstance(picture, VideoFrame):
            planes = picture.i420 if picture.i420 is not None else rgb_to_i420(picture.rgb)
        else:
            planes = rgb_to_i420(np.asarray(picture))
        y, u, v = planes
        height, width = y.shape
        if (height, width) != (self.portrait_height_px, self.portrait_width_px):
            raise ValueError(
                f"picture is {width}x{height}, the formatter was made for "
                f"{self.portrait_width_px}x{self.portrait_height_px}"
            )
        packed = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(height * 3 // 2, width)
        frame = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        if (width, height) == (self.width_px, self.height_px):
            return frame
        return frame.reformat(width=self.width_px, height=self.height_px, format="yuv420p")
