"""Kernel rgb_to_i420 against reference.rgb_to_i420, exactly (integer arithmetic)."""

from typing import Any

import numpy as np

from kernels.reference import rgb_to_i420


def test_frames_of_several_sizes_and_strides(ops: Any) -> None:
    rng = np.random.default_rng(5)
    frames = [
        rng.integers(0, 256, (2, 2, 3), dtype=np.uint8),
        rng.integers(0, 256, (38, 54, 3), dtype=np.uint8),
        rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)[:, ::-1, ::-1],  # mirrored BGR view
        np.asfortranarray(rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)),
    ]
    for got, frame in zip(ops.rgb_to_i420(frames), frames):
        for plane, want in zip(got, rgb_to_i420(frame)):
            np.testing.assert_array_equal(plane, want)


def test_extremes(ops: Any) -> None:
    """Every corner of the RGB cube, in 2x2 blocks of one colour and of mixed colours."""
    corners = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], np.uint8)
    uniform = np.repeat(np.repeat(corners.reshape(2, 4, 3), 2, axis=0), 2, axis=1)
    mixed = corners.reshape(2, 4, 3)
    for frame in (uniform, mixed):
        (got,) = ops.rgb_to_i420([frame])
        for plane, want in zip(got, rgb_to_i420(frame)):
            np.testing.assert_array_equal(plane, want)
