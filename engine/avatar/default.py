"""The default avatar: the public-domain NASA portrait of astronaut Eileen Collins."""

from functools import cache
from pathlib import Path

from engine.avatar.avatar import Avatar, prepare_avatar
from engine.avatar.face_box import FaceBox
from engine.avatar.framing import Framing
from engine.avatar.portrait import load_portrait

_ASSETS = Path(__file__).parent / "assets"


def default_portrait_path() -> Path:
    """The bundled portrait: 512x512 RGB PNG (source and licence in assets/README.md)."""
    return _ASSETS / "astronaut.png"


@cache
def load_default_avatar() -> Avatar:
    """The default portrait, prepared (face and landmarks found; ~1 s the first time, loading dlib's models).

    Cached: an Avatar is immutable (read-only arrays), so every session can share it.
    """
    return prepare_avatar(load_portrait(default_portrait_path()))


def load_avatar(
    portrait_path: str | Path | None = None, face_box: FaceBox | None = None, framing: Framing = "portrait"
) -> Avatar:
    """The avatar a user asked for: their portrait or the default, detected or with their face box, framed.

    The shared entry point of ``avatar render`` and ``avatar serve`` so both
    treat ``--avatar``, ``--face-box`` and ``--framing`` alike.
    """
    if portrait_path is None and face_box is None and framing == "portrait":
        return load_default_avatar()
    portrait = load_portrait(portrait_path if portrait_path is not None else default_portrait_path())
    return prepare_avatar(portrait, face_box=face_box, framing=framing)
