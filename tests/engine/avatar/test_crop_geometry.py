"""crop_box_for_face: margin, centring, and staying inside the portrait."""

import pytest

from engine.avatar import CROP_MARGIN, CROP_SHIFT_DOWN, FaceBox, crop_box_for_face
from kernels.geometry import CropBox


def test_square_margin_around_the_face_moved_down() -> None:
    face = FaceBox(200.0, 150.0, 100.0, 80.0)
    box = crop_box_for_face(face, 600, 800)
    assert box.size == round(CROP_MARGIN * 100)
    assert box.x0 + box.size / 2 == pytest.approx(250, abs=0.5)
    assert box.y0 + box.size / 2 == pytest.approx(190 + CROP_SHIFT_DOWN * 80, abs=0.5)
    assert all(float(v).is_integer() for v in (box.x0, box.y0, box.size))


def test_margin_one_is_the_tight_reference_crop() -> None:
    box = crop_box_for_face(FaceBox(10.0, 20.0, 50.0, 50.0), 100, 100, margin=1.0, shift_down=0.0)
    assert box == CropBox(10.0, 20.0, 50.0)


def test_moved_inside_near_an_edge_and_shrunk_when_too_big() -> None:
    near_corner = crop_box_for_face(FaceBox(0.0, 0.0, 40.0, 40.0), 300, 200)
    assert near_corner == CropBox(0.0, 0.0, 64.0)
    far_corner = crop_box_for_face(FaceBox(170.0, 270.0, 30.0, 30.0), 300, 200)
    assert far_corner.x0 + far_corner.size == 200 and far_corner.y0 + far_corner.size == 300
    huge = crop_box_for_face(FaceBox(10.0, 10.0, 180.0, 250.0), 300, 200)
    assert huge.size == 200 and 0 <= huge.y0 <= 100 and huge.x0 == 0
