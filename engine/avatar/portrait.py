"""Reading a portrait image from disk into an RGB array of a workable size."""

import warnings
from os import PathLike

import numpy as np
from PIL import Image, ImageOps

from engine.avatar.errors import PortraitError

DEFAULT_MAX_PIXELS = 40_000_000
"""Refuse images with more pixels than this (40 MP, beyond any phone camera):
decoding is the costly part and a small file can claim a huge size (a
decompression bomb). Checked from the header, before decoding."""

DEFAULT_MAX_SIDE_PX = 1024
"""Shrink images whose longest side is longer than this. The portrait is shown
and encoded every frame and the face fills only part of it: 1024 px keeps the
face box of a head-and-shoulders photo well above the 128 px crop and keeps
detection (~0.1 s) and per-frame paste, colour conversion and encoding cheap."""

_TRANSPARENT_BACKGROUND = (255, 255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def load_portrait(
    path: str | PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side_px: int = DEFAULT_MAX_SIDE_PX,
) -> np.ndarray:
    """Load a portrait as uint8 (H, W, 3) RGB, upright, at most ``max_side_px`` on a side.

    Any format Pillow reads (PNG, JPEG, WebP, TIFF, ...; the first frame of an
    animation). The EXIF orientation is applied, so the face is upright as a
    photo viewer shows it. Grayscale, palette, CMYK and 16-bit grayscale become
    RGB; transparency is composited over white. Larger images are shrunk
    (Lanczos, aspect ratio kept; JPEGs decode at reduced scale directly), and
    face boxes refer to the pixels of the returned array.

    Raises:
        PortraitError: naming the file, when it is missing or not a readable
            image, or when it has more than ``max_pixels`` pixels (or more than
            Pillow's own decompression-bomb limit).
    """
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its two bomb limits; make it an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                pixels = image.width * image.height
                if pixels > max_pixels:
                    raise PortraitError(
                        f"portrait {path}: {image.width}x{image.height} is "
                        f"{pixels / 1e6:.1f} MP, more than the limit of "
                        f"{max_pixels / 1e6:.1f} MP (max_pixels); shrink the image first"
                    )
                # JPEG only: decode at a reduced DCT scale, still >= the target size.
                image.draft(image.mode, (max_side_px, max_side_px))
                rgb = _to_rgb(ImageOps.exif_transpose(image))
    except PortraitError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PortraitError(f"portrait {path} is too large to decode safely: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # OSError covers missing files, unknown formats and truncated data;
        # some Pillow decoders raise SyntaxError or ValueError on corrupt files.
        raise PortraitError(f"cannot read portrait {path}: {exc}") from exc
    rgb.thumbnail((max_side_px, max_side_px), Image.Resampling.LANCZOS)
    return np.array(rgb, dtype=np.uint8)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha over white, 16-bit gray scaled)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own conversion clips 16-bit values at 255 (a white image).
        gray = (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _TRANSPARENT_BACKGROUND)
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
