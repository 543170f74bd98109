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
- Cubic sampling (Catmull-Rom, Keys' a = -0.5), for the photo where the
  compositor moves it: bilinear interpolation at a fractional position
  averages neighbours and visibly softens a photo (half the variance of its
  Laplacian at a half-pixel shift), a cubic keeps edges. Per axis, with
  ``f = floor(xs); t = xs - f``, taps ``clamp(f + k, 0, n - 1)`` for
  k = -1, 0, 1, 2 with weights::

      w0 = (((-0.5 * t) + 1) * t - 0.5) * t
      w1 = (((1.5 * t) - 2.5) * t) * t + 1
      w2 = (((-1.5 * t) + 2) * t + 0.5) * t
      w3 = (((0.5 * t) - 0.5) * t) * t

  each row ``h_r = ((w0 * P[r, c0] + w1 * P[r, c1]) + w2 * P[r, c2]) + w3 * P[r, c3]``,
  then ``value = ((v0 * h_0 + v1 * h_1) + v2 * h_2) + v3 * h_3`` with the row
  weights v. At t = 0 the weights are (-0, 1, 0, -0): a pixel's own value, exactly.
"""

import numpy as np

from kernels.geometry import CropBox
from kernels.layers import FaceLayers, HeadMotion

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
# while frame-sized ones are fresh memory each time (a 512x512 paste in bands
# took a little over half the time of one piece: bench/README.md).
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


def compose_rect(box: CropBox, height: int, width: int, motion_box: CropBox | None = None) -> tuple[int, int, int, int]:
    """The portrait pixels ``compose`` may change: ``(y_start, y_stop, x_start, x_stop)``.

    ``paste_rect`` of the crop box, widened to ``paste_rect`` of the head
    motion's box when there is one (the bounding rectangle of both; an empty
    one is ignored). May be empty.
    """
    rects = [paste_rect(box, height, width)]
    if motion_box is not None:
        rects.append(paste_rect(motion_box, height, width))
    rects = [r for r in rects if r[1] > r[0] and r[3] > r[2]]
    if not rects:
        return 0, 0, 0, 0
    return min(r[0] for r in rects), max(r[1] for r in rects), min(r[2] for r in rects), max(r[3] for r in rects)


def _layer_table(layers: FaceLayers, feather: np.ndarray) -> np.ndarray:
    """(S, S, K) float32: feather, mask, colour R G B, then shift dx dy if any: sampled together."""
    planes = [feather[None], layers.mask, layers.color]
    if layers.shift is not None:
        planes.append(layers.shift)
    return np.ascontiguousarray(np.concatenate([np.asarray(p, dtype=np.float32) for p in planes]).transpose(1, 2, 0))


def _sample_points(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, K) of ``image`` (R, C, K) at the points ``(xs, ys)`` (N,) float32.

    The per-pixel formula of the module docstring, evaluated point by point (the
    coordinates need not form a grid); the same float32 operations as
    ``_sample_rows_cols``.
    """
    c0, c1, fx = _taps(xs, image.shape[1])
    r0, r1, fy = _taps(ys, image.shape[0])
    fx, fy = fx[:, None], fy[:, None]
    top = _lerp_into(image[r0, c0].astype(np.float32), image[r0, c1].astype(np.float32), fx)
    bottom = _lerp_into(image[r1, c0].astype(np.float32), image[r1, c1].astype(np.float32), fx)
    return _lerp_into(top, bottom, fy)


def _cubic_taps(coords: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Edge-clamped Catmull-Rom taps of float32 coordinates (module docstring): 4 indices, 4 weights."""
    floor = np.floor(coords)
    t = coords - floor
    indices = [np.clip(floor + _F32(k), 0, n - 1).astype(np.intp) for k in (-1, 0, 1, 2)]
    weights = [
        (((_F32(-0.5) * t) + _F32(1)) * t - _F32(0.5)) * t,
        (((_F32(1.5) * t) - _F32(2.5)) * t) * t + _F32(1),
        (((_F32(-1.5) * t) + _F32(2)) * t + _F32(0.5)) * t,
        (((_F32(0.5) * t) - _F32(0.5)) * t) * t,
    ]
    return indices, weights


def _sample_points_cubic(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Catmull-Rom samples (N, K) float32 of ``image`` (R, C, K) at the points ``(xs, ys)`` (N,) float32."""
    cols, col_weights = _cubic_taps(xs, image.shape[1])
    rows, row_weights = _cubic_taps(ys, image.shape[0])
    weighted_rows = []
    for row, v in zip(rows, row_weights):
        h = col_weights[0][:, None] * image[row, cols[0]].astype(np.float32)
        for col, w in zip(cols[1:], col_weights[1:]):
            h += w[:, None] * image[row, col].astype(np.float32)
        h *= v[:, None]
        weighted_rows.append(h)
    value = weighted_rows[0]
    for h in weighted_rows[1:]:
        value += h
    return value


def compose(
    portrait: np.ndarray,
    box: CropBox,
    layers: FaceLayers,
    feather: np.ndarray,
    motion: HeadMotion | None = None,
) -> np.ndarray:
    """A video frame: the face layers composed into the portrait at the portrait's resolution.

    Args:
        portrait: uint8 (H, W, 3) RGB, not modified.
        box: the crop box the layers cover (``crop_resize_normalize``'s box).
        layers: colour, attention and optional shift at crop resolution S.
        feather: float32 (S, S) in [0, 1], 1 inside: fades every change to
            nothing at the crop's edge; its outer band must be exactly 0
            (``feather_mask``) for a seamless edge.
        motion: the head's motion, or None to keep the portrait's pose.

    Returns:
        uint8 (H, W, 3): a new frame. Pixels outside ``compose_rect`` are
        copied; inside, per portrait pixel (x, y), float32 throughout, with
        ``inverse = f32(S) / f32(box.size)``::

            px = x + 0.5; py = y + 0.5
            if motion:                                            # else qx = px, qy = py
                minv = f32(M) / f32(motion.box.size)
                m = bilinear(weight, ((px - mb.x0) * minv) - 0.5, ((py - mb.y0) * minv) - 0.5)
                hx = ((k00 * px) + (k01 * py)) + k02              # k = motion.matrix
                hy = ((k10 * px) + (k11 * py)) + k12
                qx = px + m * (hx - px); qy = py + m * (hy - py)
            u = ((qx - f32(box.x0)) * inverse) - 0.5; v = ((qy - f32(box.y0)) * inverse) - 0.5
            alpha = bilinear(feather, u, v); a = bilinear(mask, u, v)
            c = (bilinear(color[ch], u, v) + 1) * 127.5           # 0..255
            rx = qx + alpha * bilinear(shift[0], u, v)            # rx = qx without a shift
            ry = qy + alpha * bilinear(shift[1], u, v)
            p = cubic(portrait[:, :, ch], rx - 0.5, ry - 0.5)     # the photo, full resolution
            w = alpha * (1 - a)                                   # how much colour replaces the photo
            o = (1 - w) * p + w * c                               # two products, then the sum
            out[y, x, ch] = clamp(rint(o), 0, 255)

        Bilinear and cubic samples clamp to the edge (module docstring). A pixel the
        layers leave alone (w = 0, no shift, no motion) samples the photo at its
        own centre, so it comes out bit-identical: A = 1 keeps the photo's full
        detail, whatever S is. Without motion and shift this is GANimation's
        ``A * photo + (1 - A) * C`` with A and C upsampled, feathered at the edge.
    """
    _check_rgb(portrait, "portrait")
    feather = np.asarray(feather, dtype=np.float32)
    size = layers.size
    if feather.shape != (size, size):
        raise ValueError(f"expected feather ({size}, {size}) for layers of side {size}, got {feather.shape}")
    out = portrait.copy()
    height, width = portrait.shape[:2]
    y_start, y_stop, x_start, x_stop = rect = compose_rect(box, height, width, None if motion is None else motion.box)
    if y_stop == y_start or x_stop == x_start:
        return out
    table = _layer_table(layers, feather)
    if motion is None:
        rect = _changed_rect(table, box, size, rect)
        y_start, y_stop, x_start, x_stop = rect
        if y_stop == y_start or x_stop == x_start:
            return out
    (r0, r1, fy), cols = _paste_taps(box, size, rect)
    motion_taps = None
    if motion is not None:
        motion_taps = _paste_taps(motion.box, motion.weight.shape[0], rect)
        weight = np.asarray(motion.weight, dtype=np.float32)[:, :, None]
        matrix = np.asarray(motion.matrix, dtype=np.float32)
    centres_x = np.arange(x_start, x_stop, dtype=np.float32) + _F32(0.5)
    band = max(8, _BAND_ELEMENTS // (table.shape[2] * (x_stop - x_start)))
    for top in range(y_start, y_stop, band):
        bottom = min(top + band, y_stop)
        part = slice(top - y_start, bottom - y_start)
        centres_y = np.arange(top, bottom, dtype=np.float32) + _F32(0.5)
        qx = np.broadcast_to(centres_x, (bottom - top, x_stop - x_start)).copy()
        qy = np.broadcast_to(centres_y[:, None], qx.shape).copy()
        sampled = _sample_rows_cols(table, (r0[part], r1[part], fy[part]), cols)
        if motion_taps is not None:
            (m0, m1, mf), motion_cols = motion_taps
            follow = _sample_rows_cols(weight, (m0[part], m1[part], mf[part]), motion_cols)[:, :, 0]
            _move(qx, qy, follow, matrix)
            moved = follow != 0
            inverse = _F32(size) / _F32(box.size)
            u = ((qx[moved] - _F32(box.x0)) * inverse) - _F32(0.5)
            v = ((qy[moved] - _F32(box.y0)) * inverse) - _F32(0.5)
            sampled[moved] = _sample_points(table, u, v)
        alpha = sampled[:, :, 0]
        region = out[top:bottom, x_start:x_stop]
        if table.shape[2] == 7:
            qx += alpha * sampled[:, :, 5]
            qy += alpha * sampled[:, :, 6]
        photo = region.astype(np.float32)
        resample = (qx != centres_x) | (qy != centres_y[:, None])
        if resample.any():
            photo[resample] = _sample_points_cubic(portrait, qx[resample] - _F32(0.5), qy[resample] - _F32(0.5))
        # w = alpha * (1 - a); o = (1 - w) * p + w * c, c = (color + 1) * 127.5; in place.
        w = (1 - sampled[:, :, 1]) * alpha
        colour = sampled[:, :, 2:5]
        colour += 1
        colour *= 127.5
        colour *= w[:, :, None]
        photo *= (1 - w)[:, :, None]
        photo += colour
        np.rint(photo, out=photo)
        np.clip(photo, 0, 255, out=photo)
        region[...] = photo
    return out


def _changed_rect(
    table: np.ndarray, box: CropBox, size: int, rect: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """The part of ``rect`` whose pixels may differ from the photo when there is no head motion.

    A pixel whose four taps all have attention 1 and no shift comes out as the
    photo's own value (``compose``'s docstring), so only rows and columns that
    tap a crop row and column holding some change need computing: the same
    bytes, for less work (the warp renderer leaves most of the crop alone).
    """
    changes = table[:, :, 1] != 1
    if table.shape[2] == 7:
        changes |= (table[:, :, 5] != 0) | (table[:, :, 6] != 0)
    (r0, r1, _), (c0, c1, _) = _paste_taps(box, size, rect)
    rows = np.flatnonzero(changes.any(axis=1)[r0] | changes.any(axis=1)[r1])
    cols = np.flatnonzero(changes.any(axis=0)[c0] | changes.any(axis=0)[c1])
    if rows.size == 0 or cols.size == 0:
        return rect[0], rect[0], rect[2], rect[2]
    return rect[0] + int(rows[0]), rect[0] + int(rows[-1]) + 1, rect[2] + int(cols[0]), rect[2] + int(cols[-1]) + 1


def _move(qx: np.ndarray, qy: np.ndarray, follow: np.ndarray, matrix: np.ndarray) -> None:
    """Pixel centres ``(qx, qy)`` moved in place by ``follow`` of the head's motion ``matrix`` (float32 (2, 3))."""
    hx = (matrix[0, 0] * qx + matrix[0, 1] * qy) + matrix[0, 2]
    hy = (matrix[1, 0] * qx + matrix[1, 1] * qy) + matrix[1, 2]
    hx -= qx
    hy -= qy
    hx *= follow
    hy *= follow
    qx += hx
    qy += hy


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


def update_i420(
    planes: tuple[np.ndarray, np.ndarray, np.ndarray], rgb: np.ndarray, rect: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The I420 of ``rgb`` given the I420 ``planes`` of a frame that differs from it only inside ``rect``.

    Copies the planes and recomputes the 2x2 blocks that touch ``rect``
    (``(y_start, y_stop, x_start, x_stop)``, as ``compose_rect``) with
    ``rgb_to_i420``: the result equals ``rgb_to_i420(rgb)`` at the cost of the
    rect. rgb: uint8 (H, W, 3), H and W even; planes: ``rgb_to_i420``'s shapes.
    """
    _check_rgb(rgb, "rgb")
    y, u, v = (plane.copy() for plane in planes)
    height, width = rgb.shape[:2]
    if y.shape != (height, width) or not u.shape == v.shape == (height // 2, width // 2):
        raise ValueError(f"planes {[p.shape for p in planes]} do not fit a {height}x{width} frame")
    y_start, y_stop, x_start, x_stop = rect
    if y_stop <= y_start or x_stop <= x_start:
        return y, u, v
    by0, by1, bx0, bx1 = y_start // 2, (y_stop + 1) // 2, x_start // 2, (x_stop + 1) // 2
    block = rgb_to_i420(rgb[2 * by0 : 2 * by1, 2 * bx0 : 2 * bx1])
    y[2 * by0 : 2 * by1, 2 * bx0 : 2 * bx1] = block[0]
    u[by0:by1, bx0:bx1] = block[1]
    v[by0:by1, bx0:bx1] = block[2]
    return y, u, v
