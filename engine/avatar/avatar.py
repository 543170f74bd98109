"""The prepared avatar: a portrait, where its face is, and how frames are composed."""

from dataclasses import dataclass

import numpy as np

from engine.avatar.crop_geometry import CROP_MARGIN, crop_box_for_face
from engine.avatar.errors import PortraitError
from engine.avatar.face_box import FaceBox
from engine.avatar.face_detection import detect_face
from kernels.compose import ComposedFrame, I420Planes, compose_frame
from kernels.geometry import CropBox
from kernels.layers import FaceLayers, HeadMotion
from kernels.reference import crop_resize_normalize, rgb_to_i420

CROP_SIZE = 128
"""The generator's input side in pixels (GANimation's 128x128)."""


@dataclass(frozen=True, eq=False)
class Avatar:
    """A portrait prepared once per session and reused for every frame.

    All arrays are read-only, so one Avatar can be shared across frames,
    threads and sessions.

    Attributes:
        portrait: uint8 (H, W, 3) RGB, H and W even (I420 needs it).
        portrait_i420: the portrait's I420 planes (``rgb_to_i420``): every
            frame's I420 starts from them.
        face_box: the face in portrait pixels (detected, or given by hand).
        crop_box: the square region the generator sees (``crop_box_for_face``).
        crop: float32 (3, S, S) RGB in [-1, 1], S = ``CROP_SIZE`` by default:
            the generator's input image, the same every frame.
    """

    portrait: np.ndarray
    portrait_i420: I420Planes
    face_box: FaceBox
    crop_box: CropBox
    crop: np.ndarray

    def compose(self, layers: FaceLayers, motion: HeadMotion | None = None) -> ComposedFrame:
        """A video frame: the face ``layers`` (over ``crop_box``) composed into the portrait.

        At the portrait's resolution (``kernels.compose.compose_frame``): pixels
        the layers leave alone, and all pixels outside the crop box and the
        motion's box, equal the portrait's. Returns new arrays (RGB and I420).
        """
        return compose_frame(self.portrait, self.portrait_i420, self.crop_box, layers, motion)


def prepare_avatar(
    portrait: np.ndarray,
    *,
    face_box: FaceBox | None = None,
    crop_size: int = CROP_SIZE,
    margin: float = CROP_MARGIN,
) -> Avatar:
    """Prepare a portrait for animation: find the face, fix the crop, cut it.

    Args:
        portrait: uint8 (H, W, 3) RGB (``load_portrait``), H and W >= 2. An odd
            height or width loses its last row or column (the encoder's I420
            needs even sizes); the caller's array is not modified.
        face_box: the face in portrait pixels; None runs the face detector.
        crop_size: the generator's input side in pixels.
        margin: crop side / the face box's longer side (``CROP_MARGIN``).

    Raises:
        NoFaceError: no face_box was given and none was detected.
        PortraitError: the portrait is not uint8 (H, W, 3) of at least 2x2, or
            face_box lies outside it.
    """
    if portrait.dtype != np.uint8 or portrait.ndim != 3 or portrait.shape[2] != 3:
        raise PortraitError(f"portrait must be uint8 (H, W, 3), got {portrait.dtype} {portrait.shape}")
    height, width = (portrait.shape[0] // 2) * 2, (portrait.shape[1] // 2) * 2
    if height == 0 or width == 0:
        raise PortraitError(f"portrait is too small: {portrait.shape[1]}x{portrait.shape[0]}")
    even = np.array(portrait[:height, :width], dtype=np.uint8, order="C")
    if face_box is None:
        face_box = detect_face(even)
    elif face_box.x >= width or face_box.y >= height:
        raise PortraitError(f"face box at ({face_box.x:g}, {face_box.y:g}) lies outside the {width}x{height} portrait")
    crop_box = crop_box_for_face(face_box, height, width, margin=margin)
    crop = crop_resize_normalize(even, crop_box, crop_size)
    i420 = rgb_to_i420(even)
    for array in (even, crop, *i420):
        array.setflags(write=False)
    return Avatar(portrait=even, portrait_i420=i420, face_box=face_box, crop_box=crop_box, crop=crop)
