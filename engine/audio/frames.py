"""Decoded PyAV audio frames to ``(samples, channels)`` arrays, for files and WebRTC alike.

PyAV's ``to_ndarray`` gives planar formats as ``(channels, samples)`` and
packed ones interleaved as ``(1, samples * channels)``; the engine's converter
wants one row per instant.
"""

import av
import numpy as np


def frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """The samples of ``frame`` as ``(samples, channels)``: int16, or float at full scale 1.0.

    int16 and float formats keep their dtype; other integer formats (u8, s32,
    s64) are rescaled to float64 around their midpoint, which the converter
    accepts. The format, layout and rate are read from each frame, never
    assumed (aiortc's Opus decoder gives packed s16 stereo, but that is its
    choice, not a contract).
    """
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    samples = data.T if frame.format.is_planar else data.reshape(-1, channels)
    if samples.dtype.kind in "iu" and samples.dtype != np.int16:
        info = np.iinfo(samples.dtype.name)
        half_range = (float(info.max) - float(info.min) + 1.0) / 2.0
        midpoint = float(info.min) + half_range
        return (samples.astype(np.float64) - midpoint) / half_range
    return np.ascontiguousarray(samples)
