"""Numpy reference implementations of the image pre/post-processing ops.

These are both the specification that the CUDA kernels must reproduce and the
code the CPU path runs every frame, so each op is vectorised and each docstring
spells out the per-pixel float32 arithmetic, in evaluation order.

Conventions shared by all ops:

- Pixel centres: pixel ``i`` covers ``[i, i + 1)`` and its centre is ``i + 0.5``.
- Every intermediate is IEEE float32, rounded to nearest after each operation,
  evaluated in the order written (no fused multiply-add). A CUDA kernel matches
  bit for bit when built with ``--fmad=false`` (or written with ``__fmul_rn`` /
  ``__fadd_rn``); with FMA contraction it differs by a few ulp, which can move a
  rounded uint8 result by 1 at exact .5 ties.
- ``floor`` is float32 floor; ``rint`` rounds half to even (numpy ``rint``,
  CUDA ``rintf`` / ``__float2int_rn``); ``clamp(i, lo, hi)`` is
  ``min(max(i, lo), hi)``.
- Bilinear sampling of an image ``P`` (n_rows x n_cols) at ``(xs, ys)``::

      xf = floor(xs); fx = xs - xf
      ix0 = clamp(xf, 0, n_cols - 1); ix1 = clamp(xf + 1, 0, n_cols - 1)
      yf = floor(ys); fy = ys - yf
      iy0 = clamp(yf, 0, n_rows - 1); iy1 = clamp(yf + 1, 0, n_rows - 1)
      top = (1 - fx) * P[iy0, ix0] + fx * P[iy0, ix1]
      bot = (1 - fx) * P[iy1, ix0] + fx * P[iy1, ix1]
      value = (1 - fy) * top + fy * bot

  Out-of-range taps are clamped to the edge ("edge clamp"). The implementation
  below does the same arithmetic separably (horizontal pass on the rows it
  needs, then vertical), which yields the very same float32 values.
"""

import numpy as np

from kernels.geometry import CropBox

_F32 = np.float32

# BT.601 limited range, RGB in 0..255 -> Y in 16..235, Cb/Cr in 16..240, as
# 16-bit fixed point: round(coefficient / 255 * 65536) for the coefficients
# Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255,
# Cb = 128 + (-37.797 R - 74.203 G + 112 B) / 255,
# Cr = 128 + (112 R - 93.786 G - 18.214 B) / 255.
# Cb and Cr rows sum to 0, so grey maps to exactly 128.
_Y_COEFFS = (16829, 33039, 6416)
_CB_COEFFS = (-9714, -19070, 28784)
_CR_COEFFS = (28784, -24103, -4681)
_LUMA_SHIFT = 16
_LUMA_OFFSET = (16 << _LUMA_SHIFT) + (1 << (_LUMA_SHIFT - 1))  # +16, then round to nearest
_CHROMA_SHIFT = 18  # 16 bits of coefficient + 2 bits for the sum of a 2x2 block
_CHROMA_OFFSET = (128 << _CHROMA_SHIFT) + (1 << (_CHROMA_SHIFT - 1))

# paste_feathered works in bands of rows of about this many float32 values
# (256 KiB): such temporaries stay in cache and the allocator reuses them,
# while frame-sized ones are fresh memory each time. Measured here for a
# 512x512 paste: ~6.5 ms in one piece, ~3.7 ms in bands (2^14: 6 ms, 2^17: 3.4 ms).
_BAND_ELEMENTS = 1 << 16


def _check_rgb(image: np.ndarray, name: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be uint8 (H, W, 3), got {image.dtype} {image.shape}")


def _taps(coords: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge-clamped bilinear taps ``(i0, i1, frac)`` of float32 sample coordinates."""
    floor = np.floor(coords)
    frac = coords - floor
    i0 = np.clip(floor, 0, n - 1).astype(np.intp)
    i1 = np.clip(floor + 1, 0, n - 1).astype(np.intp)
    return i0, i1, frac


def _lerp_into(a: np.ndarray, b: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """``(1 - frac) * a + frac * b`` in float32, computed in place in ``a`` (and ``b``).

    The same rounding as the expression (products are commutative); in place
    because on a large paste the temporaries cost as much as the arithmetic.
    ``a`` and ``b`` must be scratch float32 arrays.
    """
    a *= 1 - frac
    b *= frac
    a += b
    return a


def _sample_rows_cols(image: np.ndarray, rows: tuple[np.ndarray, ...], cols: tuple[np.ndarray, ...]) -> np.ndarray:
    """Bilinear samples of ``image`` (R, C, ...) on the grid ``rows x cols``.

    ``rows`` and ``cols`` are ``_taps`` results; returns a new float32 array
    (len(rows), len(cols), ...). Horizontal pass over the rows it needs first,
    then vertical: the same float32 operations, in the same order, as the
    per-pixel formula of the module docstring.
    """
    r0, r1, fy = rows
    c0, c1, fx = cols
    extra = (None,) * (image.ndim - 2)
    top, bottom = int(r0.min()), int(r1.max())
    left, right = int(c0.min()), int(c1.max())
    source = image[top : bottom + 1, left : right + 1].astype(np.float32)
    horizontal = _lerp_into(source[:, c0 - left], source[:, c1 - left], fx[(None, slice(None)) + extra])
    return _lerp_into(horizontal[r0 - top], horizontal[r1 - top], fy[(slice(None), None) + extra])


def crop_resize_normalize(portrait: np.ndarray, box: CropBox, size: int = 128) -> np.ndarray:
    """Cut ``box`` out of the portrait, resize it to ``size`` x ``size``, map to [-1, 1].

    Args:
        portrait: uint8 (H, W, 3) RGB, any strides.
        box: the square source region in portrait pixels (may be fractional or
            reach past the portrait: samples clamp to the edge).
        size: output side in pixels (the generator's 128).

    Returns:
        float32 (3, size, size), RGB, in [-1, 1]: the generator's input layout.

    Per output pixel (c, v, u), float32 throughout, with ``scale = f32(box.size) / f32(size)``::

        xs = (f32(box.x0) + (u + 0.5) * scale) - 0.5
        ys = (f32(box.y0) + (v + 0.5) * scale) - 0.5
        value = bilinear(portrait[:, :, c], xs, ys)        # module docstring
        out[c, v, u] = value / 127.5 - 1

    Two taps per axis and no prefilter: a box several times larger than
    ``size`` aliases (fine detail flickers between neighbouring samples). The
    avatar's working size (longest side <= 1024 px) bounds the factor.
    """
    _check_rgb(portrait, "portrait")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    height, width = portrait.shape[:2]
    scale = _F32(box.size) / _F32(size)
    centres = np.arange(size, dtype=np.float32) + _F32(0.5)
    xs = (_F32(box.x0) + centres * scale) - _F32(0.5)
    ys = (_F32(box.y0) + centres * scale) - _F32(0.5)
    value = _sample_rows_cols(portrait, _taps(ys, height), _taps(xs, width))
    out = value / _F32(127.5) - _F32(1)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def attention_blend(image: np.ndarray, color: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """GANimation's output: ``mask * image + (1 - mask) * color``.

    Args:
        image: float32 (..., 3, S, S) in [-1, 1], the generator's input crop.
        color: float32 (..., 3, S, S) in [-1, 1], the colour map C (tanh).
        mask: float32 (..., 1, S, S) in [0, 1], the attention A (sigmoid);
            1 keeps the input pixel.

    Returns:
        float32 (..., 3, S, S) in [-1, 1]. Per element, float32:
        ``out = mask * image + (1 - mask) * color`` (two products, then the sum).
    """
    if mask.shape[-3] != 1 or image.shape != color.shape:
        raise ValueError(
            f"expected image and color (..., 3, S, S) and mask (..., 1, S, S), got "
            f"{image.shape}, {color.shape}, {mask.shape}"
        )
    image, color, mask = (np.asarray(a, dtype=np.float32) for a in (image, color, mask))
    return mask * image + (1 - mask) * color


def paste_rect(box: CropBox, height: int, width: int) -> tuple[int, int, int, int]:
    """The portrait pixels ``paste_feathered`` may change: ``(y_start, y_stop, x_start, x_stop)``.

    The integer bounding rectangle of the box, ``[floor(x0), ceil(x0 + size))``
    (same for y, computed on the host in float64), intersected with the
    portrait; stops are exclusive. May be empty.
    """
    x_start = max(0, int(np.floor(box.x0)))
    y_start = max(0, int(np.floor(box.y0)))
    x_stop = min(width, int(np.ceil(box.x0 + box.size)))
    y_stop = min(height, int(np.ceil(box.y0 + box.size)))
    return y_start, max(y_start, y_stop), x_start, max(x_start, x_stop)


def _paste_taps(
    box: CropBox, crop_size: int, rect: tuple[int, int, int, int]
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Crop-space bilinear taps (rows, cols) of the portrait pixels in ``rect``."""
    y_start, y_stop, x_start, x_stop = rect
    inverse = _F32(crop_size) / _F32(box.size)
    xs = ((np.arange(x_start, x_stop, dtype=np.float32) + _F32(0.5)) - _F32(box.x0)) * inverse
    ys = ((np.arange(y_start, y_stop, dtype=np.float32) + _F32(0.5)) - _F32(box.y0)) * inverse
    return _taps(ys - _F32(0.5), crop_size), _taps(xs - _F32(0.5), crop_size)


def paste_alpha(box: CropBox, feather: np.ndarray, height: int, width: int) -> np.ndarray:
    """The blend weight ``alpha`` that ``paste_feathered`` uses at each portrait pixel.

    Returns float32 (height, width) in [0, 1]: the feather sampled as in
    ``paste_feathered`` inside ``paste_rect``, 0 outside it.
    """
    feather = np.asarray(feather, dtype=np.float32)
    rect = paste_rect(box, height, width)
    y_start, y_stop, x_start, x_stop = rect
    alpha = np.zeros((height, width), dtype=np.float32)
    if y_stop > y_start and x_stop > x_start:
        rows, cols = _paste_taps(box, feather.shape[0], rect)
        alpha[y_start:y_stop, x_start:x_stop] = _sample_rows_cols(feather, rows, cols)
    return alpha


def paste_feathered(portrait: np.ndarray, crop: np.ndarray, box: CropBox, feather: np.ndarray) -> np.ndarray:
    """Paste a generated crop back into the portrait, blended through a feather mask.

    Args:
        portrait: uint8 (H, W, 3) RGB, not modified.
        crop: float32 (3, S, S) RGB in [-1, 1] (the blended generator output).
        box: where the crop came from (``crop_resize_normalize``'s box).
        feather: float32 (S, S) in [0, 1], 1 = take the crop; its outer band
            must be exactly 0 (``feather_mask``) for a seamless edge.

    Returns:
        uint8 (H, W, 3): a new frame. Pixels outside ``paste_rect(box, H, W)``
        are copied; inside, per portrait pixel (x, y), float32 throughout, with
        ``inverse = f32(S) / f32(box.size)``::

            xs = (((x + 0.5) - f32(box.x0)) * inverse) - 0.5
            ys = (((y + 0.5) - f32(box.y0)) * inverse) - 0.5
            alpha = bilinear(feather, xs, ys)                  # module docstring
            c = (bilinear(crop[ch], xs, ys) + 1) * 127.5       # crop in 0..255
            o = alpha * c + (1 - alpha) * portrait[y, x, ch]   # two products, then the sum
            out[y, x, ch] = clamp(rint(o), 0, 255)

        Where alpha is exactly 0, ``o`` is the portrait value itself, so the pixel
        comes out bit-identical.
    """
    _check_rgb(portrait, "portrait")
    crop = np.asarray(crop, dtype=np.float32)
    feather = np.asarray(feather, dtype=np.float32)
    size = crop.shape[-1]
    if crop.shape != (3, size, size) or feather.shape != (size, size):
        raise ValueError(f"expected crop (3, S, S) and feather (S, S), got {crop.shape} and {feather.shape}")
    out = portrait.copy()
    rect = paste_rect(box, *portrait.shape[:2])
    y_start, y_stop, x_start, x_stop = rect
    if y_stop == y_start or x_stop == x_start:
        return out
    (r0, r1, fy), cols = _paste_taps(box, size, rect)
    crop_hwc = crop.transpose(1, 2, 0)
    band = max(8, _BAND_ELEMENTS // (3 * (x_stop - x_start)))
    for top in range(y_start, y_stop, band):
        bottom = min(top + band, y_stop)
        part = slice(top - y_start, bottom - y_start)
        rows = (r0[part], r1[part], fy[part])
        alpha = _sample_rows_cols(feather, rows, cols)[:, :, None]
        colour = _sample_rows_cols(crop_hwc, rows, cols)
        # c = (crop + 1) * 127.5; o = alpha * c + (1 - alpha) * p; in place.
        colour += 1
        colour *= 127.5
        colour *= alpha
        region = out[top:bottom, x_start:x_stop]
        kept = region.astype(np.float32)
        kept *= 1 - alpha
        colour += kept
        np.rint(colour, out=colour)
        np.clip(colour, 0, 255, out=colour)
        region[...] = colour
    return out


def feather_mask(size: int, *, border_frac: float = 0.03, ramp_frac: float = 0.10) -> np.ndarray:
    """Blend weights for pasting a crop back: 0 at the edge, 1 in the middle.

    Per axis, with ``d(i) = (min(i, size - 1 - i) + 0.5) / size`` the distance of
    pixel i's centre to the nearer edge as a fraction of the side,
    ``t = clip((d - border_frac) / ramp_frac, 0, 1)`` and
    ``w(i) = 0.5 - 0.5 * cos(pi * t)`` (a raised cosine: smooth at both ends);
    the mask is ``w(row) * w(col)`` (so the corners round off).

    Defaults for a 128 crop: ``border_frac=0.03`` makes the outer 4 pixels
    exactly 0 (more than a bilinear tap's reach, so the outermost pasted
    portrait pixels get alpha exactly 0 and the paste has no edge), and
    ``ramp_frac=0.10`` ramps over the next ~13 pixels; from 17 pixels in
    (13 % of the side) the crop is taken as is. With the crop geometry of
    ``engine.avatar`` the face box lies inside that flat part.

    Returns:
        float32 (size, size) in [0, 1], symmetric under flips and transposition.
    """
    if not (border_frac >= 0 and ramp_frac > 0 and border_frac + ramp_frac <= 0.5):
        raise ValueError(
            f"need border_frac >= 0, ramp_frac > 0, border_frac + ramp_frac <= 0.5; got {border_frac}, {ramp_frac}"
        )
    index = np.arange(size)
    distance = (np.minimum(index, size - 1 - index) + 0.5) / size
    t = np.clip((distance - border_frac) / ramp_frac, 0.0, 1.0)
    weight = 0.5 - 0.5 * np.cos(np.pi * t)
    return np.outer(weight, weight).astype(np.float32)


def rgb_to_i420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB to I420 (planar YUV 4:2:0), BT.601 limited range, for the video encoder.

    Args:
        rgb: uint8 (H, W, 3), H and W even.

    Returns:
        ``(y, u, v)``: uint8 (H, W), (H/2, W/2), (H/2, W/2). Chroma is taken from
        the average of each 2x2 block (sample centred in the block).

    Integer arithmetic only (int32), so a kernel matches exactly::

        Y  = (16829 R + 33039 G +  6416 B + (16 << 16) + (1 << 15)) >> 16
        Rs, Gs, Bs = sums of the 2x2 block (0..1020)
        Cb = (-9714 Rs - 19070 Gs + 28784 Bs + (128 << 18) + (1 << 17)) >> 18
        Cr = (28784 Rs - 24103 Gs -  4681 Bs + (128 << 18) + (1 << 17)) >> 18

    The coefficients are BT.601's (65.481, 128.553, 24.966; -37.797, -74.203,
    112; 112, -93.786, -18.214) / 255 in 16-bit fixed point, so the result is
    the exact formula rounded to nearest, off by at most 0.5 + 1/128 levels.
    The shifted sums are never negative (no signed-shift ambiguity) and land in
    16..235 (Y) and 16..240 (Cb, Cr), so no clamp is needed.
    """
    _check_rgb(rgb, "rgb")
    height, width = rgb.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"I420 needs even height and width, got {height}x{width}")
    planes = np.ascontiguousarray(rgb.transpose(2, 0, 1)).astype(np.int32)
    r, g, b = planes
    y = (_Y_COEFFS[0] * r + _Y_COEFFS[1] * g + _Y_COEFFS[2] * b + _LUMA_OFFSET) >> _LUMA_SHIFT
    row_pairs = planes[:, 0::2] + planes[:, 1::2]
    rs, gs, bs = row_pairs[:, :, 0::2] + row_pairs[:, :, 1::2]  # 2x2 block sums
    u = (_CB_COEFFS[0] * rs + _CB_COEFFS[1] * gs + _CB_COEFFS[2] * bs + _CHROMA_OFFSET) >> (_CHROMA_SHIFT)
    v = (_CR_COEFFS[0] * rs + _CR_COEFFS[1] * gs + _CR_COEFFS[2] * bs + _CHROMA_OFFSET) >> (_CHROMA_SHIFT)
    return y.astype(np.uint8), u.astype(np.uint8), v.astype(np.uint8)
