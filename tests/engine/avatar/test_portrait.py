"""load_portrait: formats, orientation, modes, size limits and errors on real files."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.avatar import PortraitError, default_portrait_path, load_portrait

ORIENTATION_TAG = 0x0112


def test_loads_the_default_portrait_pixel_for_pixel() -> None:
    from skimage import data

    portrait = load_portrait(default_portrait_path())
    assert portrait.dtype == np.uint8 and portrait.shape == (512, 512, 3)
    np.testing.assert_array_equal(portrait, data.astronaut())


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 80 wide x 40 tall, red left half, blue right half; orientation 6
    # means "rotate 90 degrees clockwise to display": upright it is 40 x 80,
    # red on top.
    stored = np.zeros((40, 80, 3), np.uint8)
    stored[:, :40] = (255, 0, 0)
    stored[:, 40:] = (0, 0, 255)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    portrait = load_portrait(path)
    assert portrait.shape == (80, 40, 3)
    assert portrait[10, 20, 0] > 200 and portrait[10, 20, 2] < 50  # top: red
    assert portrait[70, 20, 2] > 200 and portrait[70, 20, 0] < 50  # bottom: blue


def test_grayscale_alpha_cmyk_and_16_bit_become_rgb(tmp_path: Path) -> None:
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(load_portrait(tmp_path / "gray.png"), np.dstack([gray] * 3))

    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode == "I;16"
    np.testing.assert_array_equal(load_portrait(tmp_path / "gray16.png")[..., 0], gray)

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4] = (10, 20, 30, 255)  # top half opaque, bottom half fully transparent
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    portrait = load_portrait(tmp_path / "alpha.png")
    assert (portrait[:4] == (10, 20, 30)).all() and (portrait[4:] == 255).all()

    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red
    portrait = load_portrait(tmp_path / "cmyk.jpg")
    assert portrait.shape == (6, 8, 3) and portrait[3, 4, 0] > 200 and portrait[3, 4, 1] < 60


def test_large_images_are_shrunk_keeping_aspect(tmp_path: Path) -> None:
    Image.new("RGB", (300, 120), (40, 80, 120)).save(tmp_path / "wide.png")
    portrait = load_portrait(tmp_path / "wide.png", max_side_px=100)
    assert portrait.shape == (40, 100, 3)
    assert (portrait == (40, 80, 120)).all()


def test_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (20, 20)).save(path)
    with pytest.raises(PortraitError, match=r"big\.png.*max_pixels"):
        load_portrait(path, max_pixels=399)
    assert load_portrait(path, max_pixels=400).shape == (20, 20, 3)


def test_pillow_bomb_warning_becomes_our_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.png"
    Image.new("RGB", (20, 20)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # warns above 300, fails above 600
    with pytest.raises(PortraitError, match=r"bomb\.png is too large to decode safely"):
        load_portrait(path)


@pytest.mark.parametrize("content", [b"not an image at all", b"\x89PNG\r\n\x1a\n truncated"])
def test_unreadable_file_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(PortraitError, match=r"cannot read portrait .*notes\.png"):
        load_portrait(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(PortraitError, match=r"missing\.jpg"):
        load_portrait(tmp_path / "missing.jpg")
