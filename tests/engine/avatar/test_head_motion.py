"""Head motion in 2D: the weight map, the pose's direction, its inverse, and no motion for a still pose."""

import numpy as np
import pytest

from engine.avatar import FaceBox
from engine.avatar.head_motion import HeadRig, head_weight

FACE = FaceBox(100.0, 80.0, 60.0, 60.0)


@pytest.fixture(scope="module")
def rig() -> HeadRig:
    return HeadRig.for_face(FACE, iod_px=30.0)


def test_weight_is_one_on_the_head_and_zero_at_its_border(rig: HeadRig) -> None:
    weight = rig.weight
    assert weight.dtype == np.float32 and weight.max() == 1 and weight.min() == 0
    assert not (weight[0].any() or weight[-1].any() or weight[:, 0].any() or weight[:, -1].any())
    centre = int((FACE.x + 30 - rig.box.x0) / rig.box.size * weight.shape[0])
    assert weight[weight.shape[0] // 2, centre] == 1
    with pytest.raises(ValueError, match="fit inside"):
        head_weight(16, 0.45, 0.45, 0.5)


def test_pose_directions(rig: HeadRig) -> None:
    forehead = np.array([130.0, 70.0, 1.0])
    dx, dy = rig.forward(0.0, 0.0, 5.0) @ forehead - forehead[:2]
    assert dx > 1 and abs(dy) < abs(dx)  # clockwise on screen: the top of the head goes right
    dx, dy = rig.forward(0.0, 4.0, 0.0) @ forehead - forehead[:2]
    assert dx == pytest.approx(1.4 * 30 * np.sin(np.radians(4)), rel=0.05) and abs(dy) < 0.01
    dx, dy = rig.forward(4.0, 0.0, 0.0) @ forehead - forehead[:2]
    assert dy > 2 and abs(dx) < 0.01  # chin down: the face moves down


def test_motion_is_the_inverse_and_still_poses_are_none(rig: HeadRig) -> None:
    motion = rig.motion(2.0, -3.0, 4.0)
    assert motion is not None and motion.matrix.dtype == np.float32
    point = np.array([120.0, 95.0, 1.0])
    moved = rig.forward(2.0, -3.0, 4.0) @ point
    np.testing.assert_allclose(motion.matrix @ np.append(moved, 1.0), point[:2], atol=1e-3)
    assert rig.motion(0.0, 0.0, 0.0) is None and rig.motion(0.0, 0.0, 1e-5) is None
