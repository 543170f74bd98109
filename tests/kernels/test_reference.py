"""The numpy references: each op against an independent formula, PIL or PyAV."""

import av
import numpy as np
import pytest
from PIL import Image

from kernels import reference
from kernels.geometry import CropBox
from kernels.layers import FaceLayers, HeadMotion
from kernels.reference import (
    compose,
    compose_rect,
    crop_resize_normalize,
    feather_mask,
    paste_rect,
    rgb_to_i420,
    update_i420,
)

F32 = np.float32


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def bilinear_scalar(image: np.ndarray, xs: np.float32, ys: np.float32) -> np.float32:
    """One bilinear sample, written from the module docstring with float32 scalars."""
    n_rows, n_cols = image.shape
    xf, yf = np.floor(xs), np.floor(ys)
    fx, fy = xs - xf, ys - yf
    ix0, ix1 = (int(min(max(v, 0), n_cols - 1)) for v in (xf, xf + 1))
    iy0, iy1 = (int(min(max(v, 0), n_rows - 1)) for v in (yf, yf + 1))
    top = (F32(1) - fx) * image[iy0, ix0] + fx * image[iy0, ix1]
    bot = (F32(1) - fx) * image[iy1, ix0] + fx * image[iy1, ix1]
    return (F32(1) - fy) * top + fy * bot


def cubic_scalar(image: np.ndarray, xs: np.float32, ys: np.float32) -> np.float32:
    """One Catmull-Rom sample, written from the module docstring with float32 scalars."""

    def taps(coord: np.float32, n: int) -> tuple[list[int], list[np.float32]]:
        f = np.floor(coord)
        t = coord - f
        indices = [int(min(max(f + F32(k), 0), n - 1)) for k in (-1, 0, 1, 2)]
        weights = [
            (((F32(-0.5) * t) + F32(1)) * t - F32(0.5)) * t,
            (((F32(1.5) * t) - F32(2.5)) * t) * t + F32(1),
            (((F32(-1.5) * t) + F32(2)) * t + F32(0.5)) * t,
            (((F32(0.5) * t) - F32(0.5)) * t) * t,
        ]
        return indices, weights

    cols, w = taps(xs, image.shape[1])
    rows, v = taps(ys, image.shape[0])
    h = [((w[0] * image[r, cols[0]] + w[1] * image[r, cols[1]]) + w[2] * image[r, cols[2]]) + w[3] * image[r, cols[3]]
         for r in rows]  # fmt: skip
    return ((v[0] * h[0] + v[1] * h[1]) + v[2] * h[2]) + v[3] * h[3]


def test_cubic_sample_is_the_pixel_at_its_centre_and_follows_a_ramp_exactly() -> None:
    ramp = np.tile(np.arange(8, dtype=np.float32) * F32(10), (6, 1))
    assert cubic_scalar(ramp, F32(3), F32(2)) == F32(30)
    # Catmull-Rom reproduces straight lines away from the edges (a bilinear would too; a blur would not).
    assert cubic_scalar(ramp, F32(3.25), F32(2.5)) == pytest.approx(32.5, abs=1e-4)


# --- crop_resize_normalize -------------------------------------------------------


def test_crop_identity_is_exact(rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    out = crop_resize_normalize(image, CropBox(0.0, 0.0, 128.0), 128)
    expected = image.transpose(2, 0, 1).astype(np.float32) / F32(127.5) - F32(1)
    assert out.dtype == np.float32 and out.shape == (3, 128, 128)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("box", [CropBox(0.0, 8.0, 37.0), CropBox(3.25, 10.5, 29.75)])
def test_crop_upscale_matches_pil_bilinear(rng: np.random.Generator, box: CropBox) -> None:
    image = rng.integers(0, 256, (53, 37, 3), dtype=np.uint8)  # odd sizes, box inside
    out = crop_resize_normalize(image, box, 128)
    region = (box.x0, box.y0, box.x0 + box.size, box.y0 + box.size)
    for channel in range(3):
        plane = Image.fromarray(image[:, :, channel].astype(np.float32), mode="F")
        pil = np.asarray(plane.resize((128, 128), Image.Resampling.BILINEAR, box=region))
        # PIL weighs in float64; ours is float32: ~1e-5 of 255 levels apart.
        np.testing.assert_allclose(out[channel], pil / 127.5 - 1, atol=2e-5)


@pytest.mark.parametrize("box", [CropBox(-5.5, 20.25, 40.0), CropBox(30.0, -3.0, 11.0), CropBox(1.0, 2.0, 61.5)])
def test_crop_matches_per_pixel_formula_bit_for_bit(rng: np.random.Generator, box: CropBox) -> None:
    # Non-contiguous input; boxes that reach past the edges, upscale and downscale.
    image = rng.integers(0, 256, (110, 90, 3), dtype=np.uint8)[::2, 1::2]
    size = 19
    out = crop_resize_normalize(image, box, size)
    scale = F32(box.size) / F32(size)
    planes = image.astype(np.float32)
    for v in range(size):
        for u in range(size):
            xs = (F32(box.x0) + (F32(u) + F32(0.5)) * scale) - F32(0.5)
            ys = (F32(box.y0) + (F32(v) + F32(0.5)) * scale) - F32(0.5)
            for c in range(3):
                value = bilinear_scalar(planes[:, :, c], xs, ys)
                assert out[c, v, u] == value / F32(127.5) - F32(1)


def test_crop_range_and_validation(rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = crop_resize_normalize(image, CropBox(-10.0, -10.0, 50.0), 16)
    assert out.min() >= -1 and out.max() <= 1
    with pytest.raises(ValueError, match="uint8"):
        crop_resize_normalize(image.astype(np.float32), CropBox(0.0, 0.0, 10.0))
    with pytest.raises(ValueError, match="size"):
        CropBox(0.0, 0.0, 0.0)


# --- feather_mask ----------------------------------------------------------------------


def test_feather_mask_properties() -> None:
    mask = feather_mask(128)
    assert mask.dtype == np.float32 and mask.shape == (128, 128)
    assert mask.min() == 0 and mask.max() == 1
    np.testing.assert_array_equal(mask, mask.T)
    np.testing.assert_array_equal(mask, mask[::-1, ::-1])
    # Default border 0.03 * 128: the outer 4 pixels are exactly 0, the 5th is not.
    assert not mask[:4].any() and not mask[:, -4:].any()
    assert mask[64, 4] > 0
    # Flat 1 from 13 % of the side inwards; monotone towards the centre.
    assert (mask[17:111, 17:111] == 1).all() and mask[64, 16] < 1
    assert (np.diff(mask[64, :64]) >= 0).all()


def test_feather_mask_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="ramp_frac"):
        feather_mask(64, border_frac=0.3, ramp_frac=0.3)
    with pytest.raises(ValueError, match="ramp_frac"):
        feather_mask(64, ramp_frac=0.0)


# --- compose -----------------------------------------------------------------------


def compose_scalar(
    portrait: np.ndarray, box: CropBox, layers: FaceLayers, feather: np.ndarray, motion: HeadMotion | None = None
) -> np.ndarray:
    """``compose`` pixel by pixel, written from its docstring with float32 scalars."""
    height, width = portrait.shape[:2]
    y_start, y_stop, x_start, x_stop = compose_rect(box, height, width, None if motion is None else motion.box)
    size = layers.size
    inverse = F32(size) / F32(box.size)
    planes = portrait.astype(np.float32)
    out = portrait.copy()
    for y in range(y_start, y_stop):
        for x in range(x_start, x_stop):
            qx, qy = F32(x) + F32(0.5), F32(y) + F32(0.5)
            if motion is not None:
                mb, k = motion.box, motion.matrix
                minv = F32(motion.weight.shape[0]) / F32(mb.size)
                m = bilinear_scalar(
                    motion.weight, ((qx - F32(mb.x0)) * minv) - F32(0.5), ((qy - F32(mb.y0)) * minv) - F32(0.5)
                )
                hx = (k[0, 0] * qx + k[0, 1] * qy) + k[0, 2]
                hy = (k[1, 0] * qx + k[1, 1] * qy) + k[1, 2]
                qx, qy = qx + m * (hx - qx), qy + m * (hy - qy)
            u = ((qx - F32(box.x0)) * inverse) - F32(0.5)
            v = ((qy - F32(box.y0)) * inverse) - F32(0.5)
            alpha = bilinear_scalar(feather, u, v)
            a = bilinear_scalar(layers.mask[0], u, v)
            if layers.shift is not None:
                qx = qx + alpha * bilinear_scalar(layers.shift[0], u, v)
                qy = qy + alpha * bilinear_scalar(layers.shift[1], u, v)
            w = alpha * (F32(1) - a)
            for c in range(3):
                colour = (bilinear_scalar(layers.color[c], u, v) + F32(1)) * F32(127.5)
                photo = cubic_scalar(planes[:, :, c], qx - F32(0.5), qy - F32(0.5))
                out[y, x, c] = min(max(np.rint((F32(1) - w) * photo + w * colour), 0), 255)
    return out


def random_layers(rng: np.random.Generator, size: int, *, shift: bool) -> FaceLayers:
    """Layers as renderers give them: mask with exact 0 and 1, shifts of a few pixels."""
    mask = rng.uniform(0, 1, (1, size, size)).astype(np.float32)
    mask[:, ::5] = 1
    mask[:, 2::5] = 0
    return FaceLayers(
        color=rng.uniform(-1, 1, (3, size, size)).astype(np.float32),
        mask=mask,
        shift=rng.uniform(-4, 4, (2, size, size)).astype(np.float32) if shift else None,
    )


def tilt(centre: tuple[float, float], degrees: float, box: CropBox, size: int = 12) -> HeadMotion:
    """A head rotation about ``centre``, following a raised-cosine bump over ``box``."""
    angle = np.deg2rad(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    offset = np.asarray(centre) - rotation @ np.asarray(centre)
    matrix = np.concatenate([rotation, offset[:, None]], axis=1).astype(np.float32)
    return HeadMotion(matrix=matrix, box=box, weight=feather_mask(size, border_frac=0.1, ramp_frac=0.3))


@pytest.mark.parametrize("box", [CropBox(7.25, -2.5, 30.5), CropBox(20.0, 12.0, 9.0)])
@pytest.mark.parametrize("in_bands", [False, True], ids=["one-band", "8-row-bands"])
@pytest.mark.parametrize("kind", ["layers", "shift", "shift+motion"])
def test_compose_matches_per_pixel_formula_bit_for_bit(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, box: CropBox, in_bands: bool, kind: str
) -> None:
    if in_bands:
        monkeypatch.setattr(reference, "_BAND_ELEMENTS", 1)
    portrait = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    size = 16
    layers = random_layers(rng, size, shift=kind != "layers")
    feather = feather_mask(size, border_frac=0.1, ramp_frac=0.25)
    motion = tilt((24.0, 30.0), 6.0, CropBox(2.5, -4.0, 44.0)) if kind == "shift+motion" else None
    out = compose(portrait, box, layers, feather, motion)
    np.testing.assert_array_equal(out, compose_scalar(portrait, box, layers, feather, motion))


def test_compose_keeps_the_photo_bit_for_bit_where_nothing_changes(rng: np.random.Generator) -> None:
    # A checkerboard a 16-px layer could never carry: full resolution survives wherever A = 1.
    portrait = (np.indices((64, 80)).sum(axis=0) % 2 * 255).astype(np.uint8)[:, :, None].repeat(3, axis=2)
    box = CropBox(10.5, 5.0, 47.25)
    layers = random_layers(rng, 32, shift=True)
    keep = FaceLayers(color=layers.color, mask=np.ones_like(layers.mask), shift=np.zeros_like(layers.shift))
    feather = feather_mask(32)
    np.testing.assert_array_equal(compose(portrait, box, keep, feather), portrait)
    still = tilt((30.0, 30.0), 0.0, CropBox(0.0, 0.0, 64.0))
    np.testing.assert_array_equal(compose(portrait, box, keep, feather, still), portrait)
    changed = compose(portrait, box, layers, feather)
    alpha_zero = np.ones((64, 80), bool)
    y_start, y_stop, x_start, x_stop = paste_rect(box, 64, 80)
    assert (y_start, y_stop, x_start, x_stop) == (5, 53, 10, 58)
    alpha_zero[y_start + 1 : y_stop - 1, x_start + 1 : x_stop - 1] = False  # the rect's border: feather 0
    np.testing.assert_array_equal(changed[alpha_zero], portrait[alpha_zero])
    assert (changed != portrait).any()


def test_compose_without_shift_is_ganimations_blend_at_full_resolution(rng: np.random.Generator) -> None:
    portrait = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    box = CropBox(0.0, 0.0, 32.0)
    layers = random_layers(rng, 32, shift=False)
    out = compose(portrait, box, layers, np.ones((32, 32), np.float32))
    a, c = layers.mask[0][:, :, None], (layers.color.transpose(1, 2, 0) + F32(1)) * F32(127.5)
    expected = np.clip(np.rint((F32(1) - (F32(1) - a)) * portrait + (F32(1) - a) * c), 0, 255)
    assert np.abs(out.astype(int) - expected).max() <= 1  # (1 - w) vs a: one rounding apart


def test_compose_moves_the_head_and_not_the_background(rng: np.random.Generator) -> None:
    portrait = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)
    box = CropBox(20.0, 20.0, 20.0)
    keep = FaceLayers(color=np.zeros((3, 8, 8), np.float32), mask=np.ones((1, 8, 8), np.float32))
    shifted = np.array([[1, 0, -3], [0, 1, 0]], np.float32)  # the head moves 3 px right
    motion = HeadMotion(matrix=shifted, box=CropBox(10.0, 10.0, 40.0), weight=feather_mask(20, ramp_frac=0.2))
    out = compose(portrait, box, keep, feather_mask(8), motion)
    np.testing.assert_array_equal(out[25:35, 25:35], portrait[25:35, 22:32])  # the weight's flat 1
    np.testing.assert_array_equal(out[:10], portrait[:10])
    np.testing.assert_array_equal(out[:, 50:], portrait[:, 50:])


def test_compose_rect_and_bad_shapes(rng: np.random.Generator) -> None:
    assert compose_rect(CropBox(30.0, 0.0, 8.0), 20, 20) == (0, 0, 0, 0)
    assert compose_rect(CropBox(2.0, 3.0, 4.0), 20, 20, CropBox(-5.0, 1.5, 10.0)) == (1, 12, 0, 6)
    portrait = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    layers = FaceLayers(color=np.ones((3, 8, 8), np.float32), mask=np.zeros((1, 8, 8), np.float32))
    np.testing.assert_array_equal(compose(portrait, CropBox(30.0, 0.0, 8.0), layers, np.ones((8, 8))), portrait)
    with pytest.raises(ValueError, match="feather"):
        compose(portrait, CropBox(0.0, 0.0, 8.0), layers, np.ones((7, 7), np.float32))
    with pytest.raises(ValueError, match="mask"):
        FaceLayers(color=np.ones((3, 8, 8), np.float32), mask=np.zeros((1, 7, 7), np.float32))


def test_update_i420_equals_a_whole_conversion(rng: np.random.Generator) -> None:
    portrait = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    box = CropBox(5.5, 3.25, 13.0)  # odd rect bounds: blocks reach past the rect
    frame = compose(portrait, box, random_layers(rng, 8, shift=True), feather_mask(8, ramp_frac=0.3))
    rect = compose_rect(box, 30, 40)
    for got, want in zip(update_i420(rgb_to_i420(portrait), frame, rect), rgb_to_i420(frame), strict=True):
        np.testing.assert_array_equal(got, want)


# --- rgb_to_i420 ----------------------------------------------------------------------


def i420_exact(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited range in float64, chroma from 2x2 block means, unrounded."""
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    h, w = rgb.shape[:2]
    mean = x.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    rm, gm, bm = mean[..., 0], mean[..., 1], mean[..., 2]
    u = 128 + (-37.797 * rm - 74.203 * gm + 112.0 * bm) / 255
    v = 128 + (112.0 * rm - 93.786 * gm - 18.214 * bm) / 255
    return y, u, v


def pyav_i420(rgb: np.ndarray, **reformat: str) -> tuple[np.ndarray, ...]:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    planes = frame.reformat(format="yuv420p", **reformat).to_ndarray()
    h, w = rgb.shape[:2]
    quarter = h // 4
    u = planes[h : h + quarter].reshape(h // 2, w // 2)
    v = planes[h + quarter :].reshape(h // 2, w // 2)
    return planes[:h], u, v


def test_i420_is_the_exact_formula_rounded(rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 256, (38, 54, 3), dtype=np.uint8)
    for ours, exact in zip(rgb_to_i420(rgb), i420_exact(rgb), strict=True):
        assert ours.dtype == np.uint8
        # 16-bit coefficients: at most 0.5 (rounding) + 255 * 3 / 65536 off the exact value.
        assert np.abs(ours - exact).max() <= 0.5 + 1 / 128


def test_i420_known_colours() -> None:
    colours = {(0, 0, 0): (16, 128, 128), (255, 255, 255): (235, 128, 128),
               (128, 128, 128): (126, 128, 128), (0, 0, 255): (41, 240, 110),
               (255, 0, 0): (81, 90, 240)}  # fmt: skip
    for rgb, yuv in colours.items():
        planes = rgb_to_i420(np.full((2, 2, 3), rgb, dtype=np.uint8))
        assert tuple(int(p[0, 0]) for p in planes) == yuv


def test_i420_agrees_with_pyav(rng: np.random.Generator) -> None:
    from skimage import data

    for rgb in (rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), data.astronaut()):
        # swscale's "area" filter averages each 2x2 block for chroma, as we do;
        # it rounds its own (15-bit) fixed point, hence 1 level of slack.
        theirs_area = pyav_i420(rgb, interpolation="AREA")
        for ours, theirs in zip(rgb_to_i420(rgb), theirs_area, strict=True):
            assert np.abs(ours.astype(int) - theirs).max() <= 1
    # With PyAV's default (bilinear) filter, chroma also mixes neighbouring blocks:
    # the planes differ at colour edges but agree on average.
    astronaut = data.astronaut()
    for ours, theirs in zip(rgb_to_i420(astronaut), pyav_i420(astronaut), strict=True):
        assert np.abs(ours.astype(int) - theirs).mean() < 0.5


def test_i420_needs_even_sizes() -> None:
    with pytest.raises(ValueError, match="even"):
        rgb_to_i420(np.zeros((3, 4, 3), np.uint8))
