"""JPEG pictures for the WebSocket API: libjpeg-turbo through simplejpeg, resized by Pillow when asked.

Why simplejpeg: it hands a numpy array straight to libjpeg-turbo's encoder,
where Pillow first copies it into an image object and out through a file-like
buffer; both use libjpeg-turbo, 4:2:0 chroma and the same quality scale, so
the files are alike. The CPU per picture, measured by ``python -m bench
encoders``, is in bench/README.md.
"""

import numpy as np
import simplejpeg
from PIL import Image

DEFAULT_QUALITY = 85
"""libjpeg quality 1..100; 85 keeps a face's detail at about a third of the bytes of 95."""


def encode_jpeg(rgb: np.ndarray, size: tuple[int, int], quality: int = DEFAULT_QUALITY) -> bytes:
    """(H, W, 3) uint8 RGB -> a baseline JPEG of ``size`` (width, height) pixels, 4:2:0 chroma.

    Resized when ``size`` differs: by an exact integer factor with Pillow's
    box reduction (each output pixel the mean of a factor x factor block; a
    quarter of the CPU of a bilinear downscale here), otherwise with its
    bilinear filter.

    Raises:
        ValueError: not an (H, W, 3) uint8 array, a size below 1 px, or quality outside 1..100.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.dtype} {rgb.shape}")
    if min(size) < 1 or not 1 <= quality <= 100:
        raise ValueError(f"size must be at least 1x1 px and quality in 1..100, got {size} and {quality}")
    height_px, width_px = rgb.shape[:2]
    if (width_px, height_px) != size:
        factor = width_px // size[0]
        image = Image.fromarray(rgb)
        if factor > 1 and (size[0] * factor, size[1] * factor) == (width_px, height_px):
            rgb = np.asarray(image.reduce(factor))
        else:
            rgb = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
    return bytes(
        simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=quality, colorspace="RGB", colorsubsampling="420")
    )
