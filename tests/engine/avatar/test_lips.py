"""The upper lip found above the teeth a smile shows; nothing moves where no teeth show."""

import numpy as np

from engine.avatar import load_default_avatar
from engine.avatar.landmarks import detect_landmarks
from engine.avatar.lips import refine_upper_lip


def test_the_astronauts_upper_lip_rises_above_her_teeth() -> None:
    avatar = load_default_avatar()
    raw = detect_landmarks(avatar.portrait, avatar.face_box)
    refined = refine_upper_lip(avatar.portrait, raw)
    assert refined[62, 1] < raw[62, 1] - 4  # pixels: her upper teeth are ~5 px tall here
    x, y = np.rint(refined[62]).astype(int)
    below = avatar.portrait[y + 1 : y + 3, x].astype(int)
    above = avatar.portrait[y - 3 : y, x].astype(int)
    assert np.ptp(below, axis=1).max() < 50 < np.ptp(above, axis=1).max()  # teeth below, lip above
    assert (refined[[50, 51, 52], 1] < refined[[61, 62, 63], 1]).all()  # the outer lip stays above the inner
    np.testing.assert_array_equal(
        np.delete(refined, [50, 51, 52, 61, 62, 63], axis=0), np.delete(raw, [50, 51, 52, 61, 62, 63], axis=0)
    )


def test_a_mouth_without_teeth_is_left_alone() -> None:
    avatar = load_default_avatar()
    raw = detect_landmarks(avatar.portrait, avatar.face_box)
    skin = np.full_like(avatar.portrait, (210, 170, 150))  # no tooth-coloured pixel anywhere
    np.testing.assert_array_equal(refine_upper_lip(skin, raw), raw)
