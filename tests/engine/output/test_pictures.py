"""PictureFormatter: the renderer's own I420 wrapped as it is, scaled only when the size differs; RGB converted."""

import numpy as np
import pytest

from engine.output.pictures import PictureFormatter, output_dimensions
from engine.pipeline.frames import FrameTrace, VideoFrame
from kernels.reference import rgb_to_i420


def planes_of(frame) -> tuple[np.ndarray, ...]:  # noqa: ANN001 - an av.VideoFrame
    packed = frame.to_ndarray()
    height, width = frame.height, frame.width
    u = packed[height : height + height // 4].reshape(height // 2, width // 2)
    v = packed[height + height // 4 :].reshape(height // 2, width // 2)
    return packed[:height], u, v


def video_frame(rgb: np.ndarray) -> VideoFrame:
    trace = FrameTrace(shown_sample=0, due_sample=0, audio_arrival_s=0.0)
    return VideoFrame(0, rgb, np.zeros(17, np.float32), trace, i420=rgb_to_i420(rgb))


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_same_size_passes_the_renderers_planes_through(rgb: np.ndarray) -> None:
    formatter = PictureFormatter(portrait_height_px=48, portrait_width_px=64, output_size_px=64)
    frame = formatter(video_frame(rgb))
    assert (frame.format.name, frame.width, frame.height) == ("yuv420p", 64, 48)
    for got, want in zip(planes_of(frame), rgb_to_i420(rgb), strict=True):
        np.testing.assert_array_equal(got, want)


def test_rgb_is_converted_with_the_reference(rgb: np.ndarray) -> None:
    formatter = PictureFormatter(portrait_height_px=48, portrait_width_px=64, output_size_px=64)
    for got, want in zip(planes_of(formatter(rgb)), rgb_to_i420(rgb), strict=True):
        np.testing.assert_array_equal(got, want)


def test_other_sizes_are_scaled_without_shifting_colours() -> None:
    flat = np.full((48, 64, 3), (200, 60, 30), np.uint8)
    formatter = PictureFormatter(portrait_height_px=48, portrait_width_px=64, output_size_px=128)
    frame = formatter(video_frame(flat))
    assert (frame.width, frame.height) == output_dimensions(48, 64, 128) == (128, 96)
    for got, want in zip(planes_of(frame), rgb_to_i420(flat), strict=True):
        assert np.abs(got.astype(int) - int(want[0, 0])).max() <= 1


def test_a_picture_of_another_size_is_refused(rgb: np.ndarray) -> None:
    formatter = PictureFormatter(portrait_height_px=50, portrait_width_px=64, output_size_px=64)
    with pytest.raises(ValueError, match="64x48"):
        formatter(rgb)
