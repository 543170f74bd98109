"""Framing: a square or 16:9 window around the head, even, inside the photo, the face about half its height."""

import numpy as np
import pytest

from engine.avatar import FaceBox, default_portrait_path, load_portrait, prepare_avatar
from engine.avatar.framing import FACE_HEIGHT_FRACTION, frame_portrait, framing_window
from engine.avatar.identity import crop_sha256

FACE = FaceBox(179.0, 83.0, 88.0, 88.0)  # the astronaut's


@pytest.mark.parametrize("framing, aspect", [("head", 1.0), ("head-wide", 16 / 9)])
def test_head_windows(framing: str, aspect: float) -> None:
    x0, y0, width, height = framing_window(FACE, 512, 512, framing)  # type: ignore[arg-type]
    assert x0 % 2 == y0 % 2 == width % 2 == height % 2 == 0
    assert abs(width / height - aspect) < 0.02
    assert FACE.height / height == pytest.approx(FACE_HEIGHT_FRACTION, abs=0.01)
    assert x0 <= FACE.x and FACE.x + FACE.width <= x0 + width and y0 <= FACE.y and FACE.y + FACE.height <= y0 + height
    assert 0 <= x0 and x0 + width <= 512 and 0 <= y0 and y0 + height <= 512


def test_windows_stay_inside_small_photos_and_near_edges() -> None:
    x0, y0, width, height = framing_window(FaceBox(2.0, 3.0, 80.0, 80.0), 150, 120, "head-wide")
    assert x0 == 0 and y0 >= 0 and width <= 120 and y0 + height <= 150
    assert abs(width / height - 16 / 9) < 0.05  # shrunk to the photo's width, aspect kept
    assert framing_window(FaceBox(0.0, 0.0, 2.0, 2.0), 2, 2, "head-wide") == (0, 0, 2, 2)
    assert framing_window(FACE, 512, 512, "portrait") == (0, 0, 512, 512)


def test_frame_portrait_cuts_and_moves_the_face_box() -> None:
    photo = np.arange(512 * 512 * 3, dtype=np.uint32).astype(np.uint8).reshape(512, 512, 3)
    framed, face = frame_portrait(photo, FACE, "head")
    x0, y0, width, height = framing_window(FACE, 512, 512, "head")
    np.testing.assert_array_equal(framed, photo[y0 : y0 + height, x0 : x0 + width])
    assert (face.x, face.y, face.width) == (FACE.x - x0, FACE.y - y0, FACE.width)


def test_a_framed_avatar_shows_the_same_face_crop() -> None:
    photo = load_portrait(default_portrait_path())
    whole, head = prepare_avatar(photo), prepare_avatar(photo, framing="head")
    assert head.portrait.shape[0] < 300 and head.face_box.height / head.portrait.shape[0] > 0.35
    assert crop_sha256(head) == crop_sha256(whole)  # an enrolled generator still recognises its crop
