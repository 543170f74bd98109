"""parse_face_box: the --face-box x,y,w,h option's parser."""

import pytest

from engine.avatar import FaceBox, parse_face_box


def test_parses_integers_and_fractions() -> None:
    assert parse_face_box("120,80,200,210") == FaceBox(120.0, 80.0, 200.0, 210.0)
    assert parse_face_box(" 1.5, 2 ,3.25,4 ") == FaceBox(1.5, 2.0, 3.25, 4.0)
    assert parse_face_box("0,0,1,1").score is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("120,80,200", "four comma-separated numbers"),
        ("120 80 200 200", "four comma-separated numbers"),
        ("a,80,200,200", "must be numbers"),
        ("1,2,nan,4", "finite"),
        ("-1,2,3,4", "must be >= 0"),
        ("1,2,0,4", "must be > 0"),
    ],
)
def test_rejects_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        parse_face_box(text)
    assert repr(text) in str(error.value)
