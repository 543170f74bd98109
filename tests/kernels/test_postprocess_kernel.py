"""Kernel postprocess against compose + rgb_to_i420, bit for bit."""

from typing import Any

import numpy as np
import pytest

from kernels.geometry import CropBox
from kernels.layers import FaceLayers, HeadMotion
from kernels.reference import compose, feather_mask, rgb_to_i420

SIZE = 128

BOXES = [
    CropBox(3.5, 5.25, 20.5),  # inside; odd rect start: its 2x2 blocks reach past the rect
    CropBox(-9.3, 20.7, 40.1),  # partly outside, left and bottom
    CropBox(-30.0, -30.0, 200.0),  # covers the whole portrait
    CropBox(17.0, 9.0, 1.0),  # one pixel
    CropBox(30.6, 12.1, 0.3),  # within one pixel
    CropBox(80.0, 5.0, 10.0),  # wholly outside: nothing changes
]


def face_layers(rng: np.random.Generator, size: int = SIZE, *, shift: bool = True) -> FaceLayers:
    """Colour, attention and shift as renderers give them; the mask includes exact 0 and 1."""
    mask = rng.uniform(0, 1, (1, size, size)).astype(np.float32)
    mask[:, ::7] = 0
    mask[:, 3::7] = 1
    return FaceLayers(
        color=rng.uniform(-1, 1, (3, size, size)).astype(np.float32),
        mask=mask,
        shift=rng.uniform(-6, 6, (2, size, size)).astype(np.float32) if shift else None,
    )


def head_motion(rng: np.random.Generator, box: CropBox) -> HeadMotion:
    """A random small rotation and shift, following a feathered weight over ``box``."""
    angle = rng.uniform(-0.1, 0.1)
    matrix = np.array([[np.cos(angle), -np.sin(angle), rng.uniform(-3, 3)], [np.sin(angle), np.cos(angle), 1.5]])
    return HeadMotion(matrix=matrix.astype(np.float32), box=box, weight=feather_mask(24, ramp_frac=0.3))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.mark.parametrize("feather_kind", ["feather_mask", "random"])
def test_rgb_and_i420_match_reference(ops: Any, rng: np.random.Generator, feather_kind: str) -> None:
    # A random feather is non-zero at the crop's edge, so the compose rect's bounds show.
    feather = feather_mask(SIZE)
    if feather_kind == "random":
        feather = rng.uniform(0, 1, (SIZE, SIZE)).astype(np.float32)
    portrait = rng.integers(0, 256, (38, 54, 3), dtype=np.uint8)
    layers = [face_layers(rng, shift=i % 2 == 0) for i in range(len(BOXES))]
    frames = [portrait.copy() for _ in BOXES]
    planes = [tuple(p.copy() for p in rgb_to_i420(portrait)) for _ in BOXES]
    ops.postprocess([portrait] * len(BOXES), BOXES, layers, feather, frames=frames, planes=planes)
    for box, layer, frame, trio in zip(BOXES, layers, frames, planes):
        want = compose(portrait, box, layer, feather)
        np.testing.assert_array_equal(frame, want, err_msg=str(box))
        for got, plane in zip(trio, rgb_to_i420(want)):
            np.testing.assert_array_equal(got, plane, err_msg=str(box))


def test_head_motion_matches_reference(ops: Any, rng: np.random.Generator) -> None:
    portrait = rng.integers(0, 256, (46, 60, 3), dtype=np.uint8)
    boxes = [CropBox(12.5, 8.25, 22.0), CropBox(-4.0, 20.0, 30.0), CropBox(30.0, 3.0, 16.0)]
    motion_boxes = [CropBox(4.75, -3.5, 40.0), CropBox(-10.0, 10.0, 50.0), CropBox(50.0, 40.0, 30.0)]
    layers = [face_layers(rng) for _ in boxes]
    motions = [head_motion(rng, box) for box in motion_boxes]
    feather = feather_mask(SIZE)
    frames = [portrait.copy() for _ in boxes]
    planes = [tuple(p.copy() for p in rgb_to_i420(portrait)) for _ in boxes]
    ops.postprocess([portrait] * 3, boxes, layers, feather, motions=motions, frames=frames, planes=planes)
    for box, layer, motion, frame, trio in zip(boxes, layers, motions, frames, planes):
        want = compose(portrait, box, layer, feather, motion)
        assert (want != portrait).any()
        np.testing.assert_array_equal(frame, want, err_msg=str(box))
        for got, plane in zip(trio, rgb_to_i420(want)):
            np.testing.assert_array_equal(got, plane, err_msg=str(box))


def test_batch_of_sessions_with_their_own_portraits(ops: Any, rng: np.random.Generator) -> None:
    shapes = [(2, 2, 3), (64, 48, 3), (30, 90, 3)]
    boxes = [CropBox(0.0, 0.0, 2.0), CropBox(6.5, 10.0, 33.3), CropBox(50.0, -4.0, 40.0)]
    portraits = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    layers = [face_layers(rng) for _ in shapes]
    motions = [None, head_motion(rng, CropBox(0.0, 2.0, 50.0)), None]
    feather = feather_mask(SIZE)
    planes = [tuple(p.copy() for p in rgb_to_i420(portrait)) for portrait in portraits]
    ops.postprocess(portraits, boxes, layers, feather, motions=motions, planes=planes)
    for portrait, box, layer, motion, trio in zip(portraits, boxes, layers, motions, planes):
        for got, plane in zip(trio, rgb_to_i420(compose(portrait, box, layer, feather, motion))):
            np.testing.assert_array_equal(got, plane)


def test_rgb_only_on_odd_strided_portrait(ops: Any, rng: np.random.Generator) -> None:
    base = rng.integers(0, 256, (74, 106, 3), dtype=np.uint8)
    portrait = base[::2, ::-2]  # 37 x 53, negative column stride
    frame = np.asfortranarray(portrait)  # an output frame with other strides
    layers = face_layers(rng)
    feather = feather_mask(SIZE)
    box = CropBox(31.5, 20.25, 19.0)  # its blocks reach the last row and column
    motion = head_motion(rng, CropBox(25.0, 14.0, 40.0))
    ops.postprocess([portrait], [box], [layers], feather, motions=[motion], frames=[frame])
    np.testing.assert_array_equal(frame, compose(portrait, box, layers, feather, motion))


def test_other_crop_size(ops: Any, rng: np.random.Generator) -> None:
    portrait = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    layers = face_layers(rng, size=16)
    feather = feather_mask(16, border_frac=0.0, ramp_frac=0.5)
    box = CropBox(2.75, 1.5, 15.5)
    frame = portrait.copy()
    ops.postprocess([portrait], [box], [layers], feather, frames=[frame])
    np.testing.assert_array_equal(frame, compose(portrait, box, layers, feather))
