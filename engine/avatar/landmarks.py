"""68-point facial landmarks with dlib, for the one photo an avatar is enrolled from.

The shape predictor ships inside the ``face_recognition_models`` package. We
locate its ``models/`` folder with :func:`importlib.util.find_spec` rather than
importing the package, whose ``__init__`` needs ``pkg_resources``. Detector and
predictor are loaded on first use (the predictor is ~100 MB), never at import.
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


def predictor_path() -> Path:
    """Path of dlib's 68-point shape predictor inside ``face_recognition_models``.

    Raises FileNotFoundError naming the package to install if it is missing.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the 68-point landmark model comes with the face-recognition-models package: "
            "pip install face-recognition-models"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / PREDICTOR_FILENAME
        if path.is_file():
            return path
    raise FileNotFoundError(f"{PREDICTOR_FILENAME} not found in {list(spec.submodule_search_locations)}")


@lru_cache(maxsize=1)
def _predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(predictor_path()))


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def detect_landmarks(image: np.ndarray, face_box: FaceBox | None = None) -> np.ndarray:
    """The 68 landmarks of the face in ``image`` (uint8 RGB, (H, W, 3)).

    face_box: the face in ``image`` pixels; found with the engine's own
        detector (:func:`engine.avatar.detect_face`) when None.

    Returns (68, 2) float32 ``(x, y)`` pixel coordinates in ``image``.
    Raises NoFaceError when no box is given and none is found.
    """
    image = _as_rgb_uint8(image)
    if face_box is None:
        face_box = detect_face(image)
    rectangle = dlib.rectangle(
        round(face_box.x), round(face_box.y), round(face_box.x + face_box.width), round(face_box.y + face_box.height)
    )
    shape = _predictor()(image, rectangle)
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    if points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"the predictor returned {points.shape[0]} points, expected {N_LANDMARKS}")
    return points
