"""The avatar: portrait loading, face detection, the crop the generator sees, paste-back.

Prepared once per session (``prepare_avatar`` or ``load_default_avatar``);
``Avatar.compose`` turns each generated crop into a full video frame.
"""

from engine.avatar.avatar import CROP_SIZE, Avatar, prepare_avatar
from engine.avatar.crop_geometry import CROP_MARGIN, CROP_SHIFT_DOWN, crop_box_for_face
from engine.avatar.default import default_portrait_path, load_avatar, load_default_avatar
from engine.avatar.errors import NoFaceError, PortraitError
from engine.avatar.face_box import FaceBox, parse_face_box
from engine.avatar.face_detection import detect_face
from engine.avatar.framing import FRAMINGS, Framing
from engine.avatar.portrait import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE_PX, load_portrait

__all__ = [
    "Avatar",
    "CROP_MARGIN",
    "CROP_SHIFT_DOWN",
    "CROP_SIZE",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE_PX",
    "FRAMINGS",
    "FaceBox",
    "Framing",
    "NoFaceError",
    "PortraitError",
    "crop_box_for_face",
    "default_portrait_path",
    "detect_face",
    "load_avatar",
    "load_default_avatar",
    "load_portrait",
    "parse_face_box",
    "prepare_avatar",
]
