"""Packing batch items: the checks that keep a kernel from writing where it must not."""

from dataclasses import replace

import numpy as np
import pytest

from kernels.geometry import CropBox
from kernels.items import I420Job, I420Ref, ImageRef, MotionRef, PostprocessJob, pack_i420, pack_postprocess
from kernels.reference import compose_rect, paste_rect

BOX = CropBox(-3.3, 4.5, 20.0)


def job(portrait: ImageRef, *, rgb: ImageRef | None = None, i420: I420Ref | None = None) -> PostprocessJob:
    return PostprocessJob(portrait, BOX, color=2, mask=3, shift=0, motion=None, rgb=rgb, i420=i420)


def test_postprocess_record_carries_box_and_paste_rect() -> None:
    portrait = ImageRef.packed(0x1000, 30, 40)
    (record,) = pack_postprocess([job(portrait, i420=I420Ref.packed(0x9000, 30, 40))])
    assert tuple(record[["y_start", "y_stop", "x_start", "x_stop"]]) == paste_rect(BOX, 30, 40)
    assert record["box"]["x0"] == np.float32(-3.3) and record["box"]["size"] == 20
    assert record["i420"]["u"] == 0x9000 + 1200 and record["i420"]["v"] == 0x9000 + 1500
    assert record["i420"]["uv_pitch"] == 20 and record["rgb"]["data"] == 0  # no rgb output


def test_postprocess_record_carries_the_head_motion() -> None:
    portrait = ImageRef.packed(0x1000, 30, 40)
    motion = MotionRef(weight=0x5000, size=24, box=CropBox(-6.0, -2.0, 30.0), matrix=(1.0, 0.5, -2.0, 0.0, 1.0, 3.0))
    bare = job(portrait, i420=I420Ref.packed(0x9000, 30, 40))
    (record,) = pack_postprocess([replace(bare, motion=motion, shift=0x7000)])
    assert record["motion_weight"] == 0x5000 and record["motion_size"] == 24 and record["shift"] == 0x7000
    assert list(record["motion_matrix"]) == [1.0, 0.5, -2.0, 0.0, 1.0, 3.0]
    assert record["motion_box"]["x0"] == -6 and record["motion_box"]["size"] == 30
    rect = tuple(record[["y_start", "y_stop", "x_start", "x_stop"]])
    assert rect == compose_rect(BOX, 30, 40, motion.box) == (0, 28, 0, 24)


@pytest.mark.parametrize(
    "bad, message",
    [
        (job(ImageRef.packed(0, 30, 40)), "needs an rgb or an i420 output"),
        (job(ImageRef.packed(0, 31, 40), i420=I420Ref.packed(0, 31, 40)), "even height and width"),
        (job(ImageRef.packed(0, 30, 40), rgb=ImageRef.packed(0, 30, 42)), "rgb output is 30x42"),
    ],
)
def test_postprocess_rejects(bad: PostprocessJob, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pack_postprocess([bad])


def test_i420_rejects_odd_frames() -> None:
    with pytest.raises(ValueError, match="even height and width"):
        pack_i420([I420Job(ImageRef.packed(0, 4, 5), I420Ref.packed(0, 4, 5))])


def test_image_ref_of_array_keeps_strides() -> None:
    array = np.zeros((6, 8, 3), np.uint8)[::-2, 1::3]
    ref = ImageRef.of_array(array)
    assert (ref.height, ref.width, ref.strides) == (3, 3, (-48, 9, 1))
    with pytest.raises(ValueError, match="uint8"):
        ImageRef.of_array(np.zeros((2, 2, 3), np.float32))
