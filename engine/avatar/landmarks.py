"""68-point facial landmarks and the identity descriptor of a face, with dlib.

The shape predictor and the face-recognition network ship inside the
``face_recognition_models`` package. We locate its ``models/`` folder with
:func:`importlib.util.find_spec` rather than importing the package, whose
``__init__`` needs ``pkg_resources``. Models load on first use (the predictor
is ~100 MB, ~1 s), never at import.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import dlib
import numpy as np

from engine.avatar.face68 import N_LANDMARKS
from engine.avatar.face_box import FaceBox
from engine.avatar.face_detection import detect_face

PREDICTOR_FILENAME = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_FILENAME = "dlib_face_recognition_resnet_model_v1.dat"
"""dlib's face-recognition ResNet: a 128-d descriptor per face; two photos of one person are closer than 0.6."""


def model_path(filename: str) -> Path:
    """Path of one of dlib's models inside ``face_recognition_models``.

    Raises FileNotFoundError naming the package to install if it is missing.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "dlib's landmark and face-recognition models come with the face-recognition-models package: "
            "pip install face-recognition-models"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / filename
        if path.is_file():
            return path
    raise FileNotFoundError(f"{filename} not found in {list(spec.submodule_search_locations)}")


def predictor_path() -> Path:
    """Path of dlib's 68-point shape predictor (:func:`model_path`)."""
    return model_path(PREDICTOR_FILENAME)


@lru_cache(maxsize=1)
def _predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(predictor_path()))


@lru_cache(maxsize=1)
def _descriptor_model() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(model_path(DESCRIPTOR_FILENAME)))


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def _shape(image: np.ndarray, face_box: FaceBox | None) -> dlib.full_object_detection:
    """dlib's 68-point shape of the face in ``image`` (contiguous uint8 RGB), detected when no box is given."""
    if face_box is None:
        face_box = detect_face(image)
    rectangle = dlib.rectangle(
        round(face_box.x), round(face_box.y), round(face_box.x + face_box.width), round(face_box.y + face_box.height)
    )
    return _predictor()(image, rectangle)


def detect_landmarks(image: np.ndarray, face_box: FaceBox | None = None) -> np.ndarray:
    """The 68 landmarks of the face in ``image`` (uint8 RGB, (H, W, 3)).

    face_box: the face in ``image`` pixels; found with the engine's own
        detector (:func:`engine.avatar.detect_face`) when None.

    Returns (68, 2) float32 ``(x, y)`` pixel coordinates in ``image``.
    Raises NoFaceError when no box is given and none is found.
    """
    shape = _shape(_as_rgb_uint8(image), face_box)
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    if points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"the predictor returned {points.shape[0]} points, expected {N_LANDMARKS}")
    return points


def face_descriptor(image: np.ndarray, face_box: FaceBox | None = None) -> np.ndarray:
    """dlib's 128-d identity descriptor of the face in ``image`` (uint8 RGB), float32 (128,).

    Euclidean distance between two descriptors below 0.6 means the same person
    (dlib's threshold). The ResNet loads on first use (~0.1 s); each call
    costs about 0.1 s on one core here. face_box as in :func:`detect_landmarks`.
    """
    image = _as_rgb_uint8(image)
    descriptor = _descriptor_model().compute_face_descriptor(image, _shape(image, face_box))
    return np.asarray(descriptor, dtype=np.float32)
