"""The canvas the fills paint on: colour over the shifted photo, the photo shown in place, finished layers."""

import numpy as np

from engine.avatar.warp.canvas import Canvas


def canvas() -> Canvas:
    shift = np.zeros((4, 4, 2), np.float32)
    shift[..., 0] = 2.0
    return Canvas.of_shift(shift)


def test_paint_composes_over_what_is_there() -> None:
    c = canvas()
    window = (slice(0, 2), slice(0, 4))
    c.paint(*window, np.array([200.0, 0.0, 0.0]), np.full((2, 4), 0.5, np.float32))
    c.paint(*window, np.array([0.0, 0.0, 100.0]), np.full((2, 4), 0.5, np.float32))
    # Two half-covering coats: 75 % colour, of which the later coat is two thirds.
    np.testing.assert_allclose(c.alpha[:2], 0.75)
    np.testing.assert_allclose(c.colour[0, 0], [200.0 / 3, 0.0, 200.0 / 3], rtol=1e-5)
    assert not c.alpha[2:].any()


def test_show_photo_in_place_undoes_the_shift_and_the_paint() -> None:
    c = canvas()
    c.paint(slice(0, 4), slice(0, 4), np.array([10.0, 20.0, 30.0]), np.ones((4, 4), np.float32))
    weight = np.zeros((4, 4), np.float32)
    weight[1, 1], weight[2, 2] = 1.0, 0.25
    c.show_photo_in_place(slice(0, 4), slice(0, 4), weight)
    assert c.alpha[1, 1] == 0 and not c.shift[1, 1].any()
    assert c.alpha[2, 2] == 0.75 and c.shift[2, 2, 0] == 1.5
    assert c.alpha[0, 0] == 1 and c.shift[0, 0, 0] == 2


def test_layers_scale_the_shift_to_portrait_pixels() -> None:
    c = canvas()
    c.paint(slice(0, 1), slice(0, 1), np.array([255.0, 0.0, 127.5]), np.ones((1, 1), np.float32))
    layers = c.layers(portrait_px_per_crop_px=3.0)
    assert layers.size == 4 and layers.shift is not None
    np.testing.assert_array_equal(layers.shift[0], np.full((4, 4), 6.0))
    np.testing.assert_array_equal(layers.color[:, 0, 0], [1.0, -1.0, 0.0])
    assert layers.mask[0, 0, 0] == 0 and layers.mask[0, 3, 3] == 1
