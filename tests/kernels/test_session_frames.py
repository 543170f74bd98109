"""The launcher as a session uses it: I420 once, then one preprocess and postprocess per frame."""

from typing import Any

import numpy as np
import pytest

from kernels.geometry import CropBox
from kernels.items import I420Job, I420Ref, PostprocessJob, PreprocessJob
from kernels.launch import address
from kernels.layers import FaceLayers
from kernels.reference import compose, crop_resize_normalize, feather_mask, rgb_to_i420

SIZE = 128


@pytest.fixture(params=["emulated", pytest.param("gpu", marks=pytest.mark.gpu)])
def launcher(request: pytest.FixtureRequest) -> Any:
    """``GpuOps`` over the CPU stand-in of cuda.core, or over the real one on a GPU."""
    return request.getfixturevalue(f"{request.param}_ops")


def split_i420(flat: np.ndarray, height: int, width: int) -> tuple[np.ndarray, ...]:
    luma, chroma = height * width, height * width // 4
    half = (height // 2, width // 2)
    y, u, v = flat[:luma], flat[luma : luma + chroma], flat[luma + chroma :]
    return y.reshape(height, width), u.reshape(half), v.reshape(half)


def test_frames_written_into_one_packed_i420_buffer(launcher: Any) -> None:
    rng = np.random.default_rng(2)
    height, width = 96, 80
    portrait = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    box = CropBox(13.5, 21.25, 47.0)
    feather = feather_mask(SIZE)
    kernels, stream = launcher.kernels, launcher.stream
    portrait_buffer, portrait_ref = launcher.upload_image(portrait)  # the buffer must outlive the ref
    crop = launcher.device.allocate(3 * SIZE * SIZE * 4, stream=stream)
    kernels.preprocess([PreprocessJob(portrait_ref, box)], crop, stream=stream)
    frame = launcher.device.allocate(height * width * 3 // 2, stream=stream)
    planes = I420Ref.packed(address(frame), height, width)
    kernels.rgb_to_i420([I420Job(portrait_ref, planes)], stream=stream)  # once per session
    feather_buffer = launcher.upload(feather)
    generator_input = launcher.download(crop, (3, SIZE, SIZE), np.float32)
    np.testing.assert_array_equal(generator_input, crop_resize_normalize(portrait, box))
    for _ in range(3):  # frames: only the box's blocks change
        color = rng.uniform(-1, 1, (3, SIZE, SIZE)).astype(np.float32)
        mask = rng.uniform(0, 1, (1, SIZE, SIZE)).astype(np.float32)
        color_buffer, mask_buffer = launcher.upload(color), launcher.upload(mask)
        job = PostprocessJob(portrait_ref, box, address(color_buffer), address(mask_buffer), 0, None, None, planes)
        kernels.postprocess([job], feather_buffer, stream=stream)
        got = split_i420(launcher.download(frame, (height * width * 3 // 2,), np.uint8), height, width)
        want = rgb_to_i420(compose(portrait, box, FaceLayers(color, mask), feather))
        for plane, expected in zip(got, want):
            np.testing.assert_array_equal(plane, expected)
    assert portrait_buffer.size == portrait.nbytes
