"""Kernel postprocess against attention_blend + paste_feathered + rgb_to_i420, bit for bit."""

from typing import Any

import numpy as np
import pytest

from kernels.geometry import CropBox
from kernels.reference import attention_blend, feather_mask, paste_feathered, rgb_to_i420

SIZE = 128

BOXES = [
    CropBox(3.5, 5.25, 20.5),  # inside; odd rect start: its 2x2 blocks reach past the rect
    CropBox(-9.3, 20.7, 40.1),  # partly outside, left and bottom
    CropBox(-30.0, -30.0, 200.0),  # covers the whole portrait
    CropBox(17.0, 9.0, 1.0),  # one pixel
    CropBox(30.6, 12.1, 0.3),  # within one pixel
    CropBox(80.0, 5.0, 10.0),  # wholly outside: nothing changes
]


def generator_output(rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, ...]:
    """Input crop, colour and mask as the generator gives them; the mask includes exact 0 and 1."""
    image = rng.uniform(-1, 1, (3, size, size)).astype(np.float32)
    color = rng.uniform(-1, 1, (3, size, size)).astype(np.float32)
    mask = rng.uniform(0, 1, (1, size, size)).astype(np.float32)
    mask[:, ::7] = 0
    mask[:, 3::7] = 1
    return image, color, mask


def expected(portrait: np.ndarray, box: CropBox, output: tuple[np.ndarray, ...], feather: np.ndarray) -> np.ndarray:
    return paste_feathered(portrait, attention_blend(*output), box, feather)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.mark.parametrize("feather_kind", ["feather_mask", "random"])
def test_rgb_and_i420_match_reference(ops: Any, rng: np.random.Generator, feather_kind: str) -> None:
    # A random feather is non-zero at the crop's edge, so the paste rect's bounds show.
    feather = feather_mask(SIZE)
    if feather_kind == "random":
        feather = rng.uniform(0, 1, (SIZE, SIZE)).astype(np.float32)
    portrait = rng.integers(0, 256, (38, 54, 3), dtype=np.uint8)
    outputs = [generator_output(rng) for _ in BOXES]
    frames = [portrait.copy() for _ in BOXES]
    planes = [tuple(p.copy() for p in rgb_to_i420(portrait)) for _ in BOXES]
    ops.postprocess([portrait] * len(BOXES), BOXES, *zip(*outputs), feather, frames=frames, planes=planes)
    for box, output, frame, trio in zip(BOXES, outputs, frames, planes):
        want = expected(portrait, box, output, feather)
        np.testing.assert_array_equal(frame, want, err_msg=str(box))
        for got, plane in zip(trio, rgb_to_i420(want)):
            np.testing.assert_array_equal(got, plane, err_msg=str(box))


def test_batch_of_sessions_with_their_own_portraits(ops: Any, rng: np.random.Generator) -> None:
    shapes = [(2, 2, 3), (64, 48, 3), (30, 90, 3)]
    boxes = [CropBox(0.0, 0.0, 2.0), CropBox(6.5, 10.0, 33.3), CropBox(50.0, -4.0, 40.0)]
    portraits = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    outputs = [generator_output(rng) for _ in shapes]
    feather = feather_mask(SIZE)
    planes = [tuple(p.copy() for p in rgb_to_i420(portrait)) for portrait in portraits]
    ops.postprocess(portraits, boxes, *zip(*outputs), feather, planes=planes)
    for portrait, box, output, trio in zip(portraits, boxes, outputs, planes):
        for got, plane in zip(trio, rgb_to_i420(expected(portrait, box, output, feather))):
            np.testing.assert_array_equal(got, plane)


def test_rgb_only_on_odd_strided_portrait(ops: Any, rng: np.random.Generator) -> None:
    base = rng.integers(0, 256, (74, 106, 3), dtype=np.uint8)
    portrait = base[::2, ::-2]  # 37 x 53, negative column stride
    frame = np.asfortranarray(portrait)  # an output frame with other strides
    output = generator_output(rng)
    feather = feather_mask(SIZE)
    box = CropBox(31.5, 20.25, 19.0)  # its blocks reach the last row and column
    ops.postprocess([portrait], [box], *([a] for a in output), feather, frames=[frame])
    np.testing.assert_array_equal(frame, expected(portrait, box, output, feather))


def test_other_crop_size(ops: Any, rng: np.random.Generator) -> None:
    portrait = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    output = generator_output(rng, size=16)
    feather = feather_mask(16, border_frac=0.0, ramp_frac=0.5)
    box = CropBox(2.75, 1.5, 15.5)
    frame = portrait.copy()
    ops.postprocess([portrait], [box], *([a] for a in output), feather, frames=[frame])
    np.testing.assert_array_equal(frame, expected(portrait, box, output, feather))
