"""detect_face with dlib on the real astronaut portrait and on images without a face."""

import numpy as np
import pytest

from engine.avatar import NoFaceError, default_portrait_path, detect_face, load_portrait


def test_finds_the_astronauts_face() -> None:
    face = detect_face(load_portrait(default_portrait_path()))
    # Her face spans about x 179..272, y 87..178 (brows to chin) in the 512 px image.
    assert 200 < face.x + face.width / 2 < 250
    assert 105 < face.y + face.height / 2 < 145
    assert 70 < face.width < 110 and 70 < face.height < 110
    assert face.score is not None and face.score > 0.5


@pytest.mark.parametrize(
    "image",
    [
        np.full((256, 320, 3), 128, np.uint8),
        np.random.default_rng(0).integers(0, 256, (256, 320, 3), dtype=np.uint8),
    ],
    ids=["flat-gray", "noise"],
)
def test_no_face_says_so_and_how_to_give_the_box(image: np.ndarray) -> None:
    with pytest.raises(NoFaceError, match=r"no face found") as error:
        detect_face(image)
    message = str(error.value)
    assert "--face-box x,y,w,h" in message and "320x256" in message
