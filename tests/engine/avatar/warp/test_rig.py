"""The warp rig on the astronaut: the photo at its own AUs, resolution-free geometry, closed lids, an open mouth."""

import numpy as np
import pytest

from engine.au import AU_NAMES
from engine.avatar import load_default_avatar
from engine.avatar.face68 import EYE_LEFT, EYE_RIGHT, LIPS_INNER
from engine.avatar.warp.masks import polygon_coverage
from engine.avatar.warp.rig import WarpRig


def rig_at(size: int) -> WarpRig:
    """The astronaut rigged at ``size`` px over the default crop box, landmarks from the full portrait."""
    avatar = load_default_avatar()
    assert avatar.landmarks is not None
    return WarpRig.of_portrait(avatar.portrait, avatar.crop_box, size, avatar.landmarks, avatar.photo_aus)


@pytest.fixture(scope="module")
def rig() -> WarpRig:
    return rig_at(128)


def with_au(rig: WarpRig, name: str, value: float) -> np.ndarray:
    aus = rig.photo_aus.copy()
    aus[AU_NAMES.index(name)] = value
    return aus


def test_the_photos_own_aus_change_nothing(rig: WarpRig) -> None:
    layers = rig.layers(rig.photo_aus)
    assert layers.shift is not None and not layers.shift.any()
    assert (layers.mask == 1).all()


def test_shifts_are_in_portrait_pixels_whatever_the_resolution(rig: WarpRig) -> None:
    fine = rig_at(256)
    aus = with_au(rig, "AU26", 5.0)
    coarse_shift = rig.layers(aus).shift
    fine_shift = fine.layers(aus).shift
    assert coarse_shift is not None and fine_shift is not None
    chin = rig.moved_points(aus)[8].astype(int)  # where the chin goes, in 128-px crop pixels
    coarse = coarse_shift[:, chin[1] - 3, chin[0]]
    fine_value = fine_shift[:, 2 * chin[1] - 6, 2 * chin[0]]
    assert coarse[1] < -5  # reads the photo's chin from above: the chin moved down
    np.testing.assert_allclose(coarse, fine_value, atol=1.5)


def test_a_full_blink_covers_both_eyes(rig: WarpRig) -> None:
    canvas = rig.canvas(with_au(rig, "AU45", 5.0))
    for eye in (EYE_LEFT, EYE_RIGHT):
        inside = polygon_coverage(rig.landmarks[eye], (128, 128)) > 0.99
        assert inside.sum() > 10 and canvas.alpha[inside].min() > 0.95  # lid skin over the whole eye
    half = rig.canvas(with_au(rig, "AU45", 2.0))
    opening = polygon_coverage(rig.landmarks[EYE_LEFT], (128, 128)) > 0.5
    assert half.alpha[opening].mean() < 0.9


def test_an_open_jaw_shows_a_dark_cavity_and_teeth(rig: WarpRig) -> None:
    aus = with_au(rig, "AU26", 5.0)
    canvas = rig.canvas(aus)
    opening = polygon_coverage(rig.moved_points(aus)[LIPS_INNER], (128, 128)) > 0.9
    luma = canvas.colour @ np.array([0.299, 0.587, 0.114], np.float32)
    painted = opening & (canvas.alpha > 0.9)
    assert painted.sum() > 40
    assert np.percentile(luma[painted], 20) < 70  # the cavity (dark red: luma ~30 at its darkest)
    in_place = opening & (canvas.alpha < 0.1) & ~np.any(canvas.shift, axis=-1)
    assert in_place.sum() > 20  # the photo's own upper teeth, shown where they were
