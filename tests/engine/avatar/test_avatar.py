"""prepare_avatar and Avatar.compose on the real astronaut portrait."""

import numpy as np
import pytest

from engine.avatar import (
    Avatar,
    FaceBox,
    PortraitError,
    default_portrait_path,
    load_portrait,
    prepare_avatar,
)
from engine.avatar import avatar as avatar_module
from kernels.geometry import CropBox
from kernels.layers import FaceLayers
from kernels.reference import crop_resize_normalize, paste_rect, rgb_to_i420


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return load_portrait(default_portrait_path())


@pytest.fixture(scope="module")
def avatar(astronaut: np.ndarray) -> Avatar:
    return prepare_avatar(astronaut)


def test_prepared_avatar_shapes_and_read_only(avatar: Avatar, astronaut: np.ndarray) -> None:
    assert avatar.portrait.shape == (512, 512, 3)
    np.testing.assert_array_equal(avatar.portrait, astronaut)
    assert avatar.crop.shape == (3, 128, 128) and avatar.crop.dtype == np.float32
    np.testing.assert_array_equal(avatar.crop, crop_resize_normalize(astronaut, avatar.crop_box))
    for got, want in zip(avatar.portrait_i420, rgb_to_i420(astronaut), strict=True):
        np.testing.assert_array_equal(got, want)
    for array in (avatar.portrait, avatar.crop, *avatar.portrait_i420):
        assert not array.flags.writeable
    assert astronaut.flags.writeable  # the caller's array was copied, not frozen
    face, box = avatar.face_box, avatar.crop_box
    assert box.x0 <= face.x and face.x + face.width <= box.x0 + box.size
    assert box.y0 <= face.y and face.y + face.height <= box.y0 + box.size


def layers(color: np.ndarray, mask_value: float) -> FaceLayers:
    return FaceLayers(color, np.full((1, 128, 128), mask_value, np.float32))


def test_compose_keeps_the_photo_at_full_resolution_where_the_mask_keeps_it(avatar: Avatar) -> None:
    # A generator at 128 px that changes nothing (A = 1) leaves every pixel of the 141-px box as photographed.
    frame = avatar.compose(layers(np.zeros((3, 128, 128), np.float32), 1.0))
    np.testing.assert_array_equal(frame.rgb, avatar.portrait)
    for got, want in zip(frame.i420, avatar.portrait_i420, strict=True):
        np.testing.assert_array_equal(got, want)


def test_compose_with_a_white_colour_whitens_the_face_centre_only(avatar: Avatar) -> None:
    frame = avatar.compose(layers(np.ones((3, 128, 128), np.float32), 0.0)).rgb
    face = avatar.face_box
    cx, cy = int(face.x + face.width / 2), int(face.y + face.height / 2)
    assert (frame[cy - 20 : cy + 20, cx - 20 : cx + 20] == 255).all()
    assert (avatar.portrait[cy - 20 : cy + 20, cx - 20 : cx + 20] < 250).any()
    y_start, y_stop, x_start, x_stop = paste_rect(avatar.crop_box, 512, 512)
    outside = np.ones((512, 512), bool)
    outside[y_start:y_stop, x_start:x_stop] = False
    np.testing.assert_array_equal(frame[outside], avatar.portrait[outside])
    assert not avatar.portrait.flags.writeable and frame.flags.writeable
    for got, want in zip(avatar.compose(layers(np.ones((3, 128, 128), np.float32), 0.0)).i420, rgb_to_i420(frame)):
        np.testing.assert_array_equal(got, want)


def test_manual_face_box_bypasses_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_detection(portrait: np.ndarray) -> FaceBox:
        raise AssertionError("the detector must not run when a face box is given")

    monkeypatch.setattr(avatar_module, "detect_face", no_detection)
    gray = np.full((101, 150, 3), 128, np.uint8)  # no face, odd height
    avatar = prepare_avatar(gray, face_box=FaceBox(50.0, 30.0, 40.0, 40.0))
    assert avatar.portrait.shape == (100, 150, 3)
    assert avatar.face_box == FaceBox(50.0, 30.0, 40.0, 40.0)
    assert avatar.crop_box == CropBox(38.0, 20.0, 64.0)


def test_bad_portrait_or_face_box_raises_portrait_error() -> None:
    gray = np.full((100, 150, 3), 128, np.uint8)
    with pytest.raises(PortraitError, match="outside"):
        prepare_avatar(gray, face_box=FaceBox(150.0, 10.0, 40.0, 40.0))
    with pytest.raises(PortraitError, match="uint8"):
        prepare_avatar(gray.astype(np.float32), face_box=FaceBox(0.0, 0.0, 4.0, 4.0))
    with pytest.raises(PortraitError, match="too small"):
        prepare_avatar(np.zeros((1, 5, 3), np.uint8), face_box=FaceBox(0.0, 0.0, 1.0, 1.0))
