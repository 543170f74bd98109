"""JPEG pictures for the WebSocket API: decodable, the asked size, close to the source."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from engine.output.jpeg import encode_jpeg


def _decoded(jpeg: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB")).astype(np.float32)


@pytest.mark.parametrize("size", [(512, 512), (256, 256), (300, 200)])
def test_jpeg_has_the_asked_size_and_looks_like_the_source(size: tuple[int, int]) -> None:
    portrait = data.astronaut()  # 512x512 RGB
    picture = _decoded(encode_jpeg(portrait, size, quality=85))
    assert picture.shape == (size[1], size[0], 3)
    reference = np.asarray(Image.fromarray(portrait).resize(size, Image.Resampling.BILINEAR)).astype(np.float32)
    assert np.abs(picture - reference).mean() < 6.0  # of 255: JPEG at 85 plus a different downscale filter


def test_quality_trades_bytes_for_fidelity() -> None:
    portrait = data.astronaut()
    low, high = encode_jpeg(portrait, (512, 512), quality=30), encode_jpeg(portrait, (512, 512), quality=95)
    assert len(low) < len(high) / 2
    error_low = np.abs(_decoded(low) - portrait).mean()
    error_high = np.abs(_decoded(high) - portrait).mean()
    assert error_high < error_low


def test_bad_input_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_jpeg(np.zeros((8, 8, 3), np.float32), (8, 8))
    with pytest.raises(ValueError, match="quality"):
        encode_jpeg(np.zeros((8, 8, 3), np.uint8), (8, 8), quality=0)
