"""Kernel preprocess_f32 / preprocess_f16 against reference.crop_resize_normalize, bit for bit."""

from typing import Any

import numpy as np
import pytest

from kernels.geometry import CropBox
from kernels.reference import crop_resize_normalize

BOXES = [
    CropBox(3.25, 10.5, 29.75),  # inside, fractional
    CropBox(-7.6, 40.3, 33.1),  # partly outside, left and bottom
    CropBox(20.0, -15.0, 90.0),  # larger than the portrait
    CropBox(11.0, 7.0, 1.0),  # one pixel: every sample on one pixel's bilinear patch
    CropBox(30.4, 2.2, 0.3),  # smaller than a pixel
    CropBox(200.0, -300.0, 12.0),  # wholly outside: edge clamp
]


@pytest.fixture
def portrait() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd sizes


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_matches_reference_on_odd_sizes_and_boxes(ops: Any, portrait: np.ndarray, dtype: type) -> None:
    out = ops.preprocess([portrait] * len(BOXES), BOXES, dtype=dtype)
    assert out.shape == (len(BOXES), 3, 128, 128) and out.dtype == dtype
    for got, box in zip(out, BOXES):
        # float16: the float32 result rounded to nearest even, as numpy's astype.
        np.testing.assert_array_equal(got, crop_resize_normalize(portrait, box).astype(dtype), strict=True)


def test_strided_portraits(ops: Any, portrait: np.ndarray) -> None:
    views = [
        portrait[::-1, 1::2],  # negative row stride, every other column
        portrait[:, :, ::-1],  # BGR view of the same bytes: negative channel stride
        portrait.transpose(1, 0, 2),  # column-major pixels
        np.asfortranarray(portrait),
    ]
    boxes = [CropBox(-2.5, 4.0, 21.0)] * len(views)
    out = ops.preprocess(views, boxes)
    for got, view, box in zip(out, views, boxes):
        np.testing.assert_array_equal(got, crop_resize_normalize(view, box))


def test_batch_of_different_portraits_and_sizes(ops: Any) -> None:
    rng = np.random.default_rng(3)
    shapes = [(1, 1, 3), (64, 48, 3), (5, 200, 3)]
    portraits = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    boxes = [CropBox(0.0, 0.0, 1.0), CropBox(8.5, 12.25, 30.0), CropBox(150.0, -1.0, 4.5)]
    for size in (1, 37):
        out = ops.preprocess(portraits, boxes, size=size)
        for got, portrait, box in zip(out, portraits, boxes):
            np.testing.assert_array_equal(got, crop_resize_normalize(portrait, box, size))


def test_identity_crop_is_exact_normalisation(ops: Any) -> None:
    image = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    out = ops.preprocess([image], [CropBox(0.0, 0.0, 128.0)])[0]
    np.testing.assert_array_equal(out, image.transpose(2, 0, 1).astype(np.float32) / np.float32(127.5) - 1)
