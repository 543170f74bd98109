"""The prepared avatar: a portrait, where its face is, and how frames are composed."""

from dataclasses import dataclass

import numpy as np

from engine.au.vocabulary import N_AUS
from engine.avatar.crop_geometry import CROP_MARGIN, crop_box_for_face
from engine.avatar.errors import PortraitError
from engine.avatar.face68 import FaceFrame
from engine.avatar.face_box import FaceBox
from engine.avatar.face_detection import detect_face
from engine.avatar.framing import Framing, frame_portrait
from engine.avatar.head_motion import HeadRig
from engine.avatar.landmarks import detect_landmarks
from engine.avatar.lips import refine_upper_lip
from engine.avatar.photo_aus import estimate_photo_aus
from kernels.compose import ComposedFrame, I420Planes, compose_frame
from kernels.geometry import CropBox
from kernels.layers import FaceLayers, HeadMotion
from kernels.reference import crop_resize_normalize, rgb_to_i420

CROP_SIZE = 128
"""The generator's input side in pixels (GANimation's 128x128)."""
MIN_EYE_DISTANCE = 0.25
"""Landmarks whose eyes are closer than this fraction of the face box's width are not a face's
(the predictor always answers, even on a box with no face in it)."""


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
        landmarks: float32 (68, 2) dlib landmarks ``(x, y)`` in portrait
            pixels, or None when the predictor's points are not a face's (a
            face box given by hand on a picture without one).
        photo_aus: float32 (17,) the photo's own expression
            (:func:`engine.avatar.photo_aus.estimate_photo_aus`; 0 without landmarks).
        head: where the head is and how it moves (:class:`engine.avatar.head_motion.HeadRig`).
    """

    portrait: np.ndarray
    portrait_i420: I420Planes
    face_box: FaceBox
    crop_box: CropBox
    crop: np.ndarray
    landmarks: np.ndarray | None
    photo_aus: np.ndarray
    head: HeadRig

    def head_motion(self, pitch_deg: float, yaw_deg: float, roll_deg: float) -> HeadMotion | None:
        """The compositor's head motion for a pose in degrees (``HeadPose``'s), None if nothing moves."""
        return self.head.motion(pitch_deg, yaw_deg, roll_deg)

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
    framing: Framing = "portrait",
    crop_size: int = CROP_SIZE,
    margin: float = CROP_MARGIN,
) -> Avatar:
    """Prepare a portrait for animation: find the face, frame the picture, fix the crop, read the expression.

    Args:
        portrait: uint8 (H, W, 3) RGB (``load_portrait``), H and W >= 2. An odd
            height or width loses its last row or column (the encoder's I420
            needs even sizes); the caller's array is not modified.
        face_box: the face in portrait pixels; None runs the face detector.
        framing: which part of the photo the video shows
            (:mod:`engine.avatar.framing`); the avatar's portrait is that part.
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
    even = portrait[:height, :width]
    if face_box is None:
        face_box = detect_face(np.ascontiguousarray(even))
    elif face_box.x >= width or face_box.y >= height:
        raise PortraitError(f"face box at ({face_box.x:g}, {face_box.y:g}) lies outside the {width}x{height} portrait")
    framed, face_box = frame_portrait(even, face_box, framing)
    framed = np.array(framed, dtype=np.uint8, order="C")
    height, width = framed.shape[:2]
    crop_box = crop_box_for_face(face_box, height, width, margin=margin)
    crop = crop_resize_normalize(framed, crop_box, crop_size)
    landmarks = _face_landmarks(framed, face_box)
    photo_aus = np.zeros(N_AUS, np.float32) if landmarks is None else estimate_photo_aus(landmarks)
    iod_px = 0.5 * face_box.width if landmarks is None else FaceFrame.from_landmarks(landmarks).iod_px
    i420 = rgb_to_i420(framed)
    for array in (framed, crop, photo_aus, *i420, *(() if landmarks is None else (landmarks,))):
        array.setflags(write=False)
    return Avatar(
        portrait=framed,
        portrait_i420=i420,
        face_box=face_box,
        crop_box=crop_box,
        crop=crop,
        landmarks=landmarks,
        photo_aus=photo_aus,
        head=HeadRig.for_face(face_box, iod_px),
    )


def _face_landmarks(portrait: np.ndarray, face_box: FaceBox) -> np.ndarray | None:
    """dlib's 68 points in the face box (the upper lip's edge found above any teeth shown), or None
    when they are not a face's (eyes too close, or apart)."""
    landmarks = detect_landmarks(portrait, face_box)
    try:
        iod_px = FaceFrame.from_landmarks(landmarks).iod_px
    except ValueError:
        return None
    return refine_upper_lip(portrait, landmarks) if iod_px >= MIN_EYE_DISTANCE * face_box.width else None
