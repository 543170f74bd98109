"""Who is in a portrait: the exact crop a generator was enrolled on, and the person's dlib descriptor.

An enrolled generator learnt one crop of one photo. It records that crop's
hash (the same photo prepared the same way gives the same bytes, framing
included: a framing only cuts the photo) and the face's descriptor (another
crop or photo of the same person is close, another person is not), so a
renderer can be chosen that fits the face in front of it.
"""

import hashlib
from dataclasses import dataclass

import numpy as np

from engine.avatar.avatar import Avatar
from engine.avatar.landmarks import face_descriptor

SAME_PERSON_DISTANCE = 0.6
"""dlib's own threshold: descriptors of one person's photos are closer than this."""


@dataclass(frozen=True)
class PortraitIdentity:
    """A portrait's crop hash and face descriptor.

    crop_sha256: hex SHA-256 of the generator's crop as uint8 RGB (128, 128, 3) bytes.
    descriptor: float32 (128,), dlib's face descriptor of the portrait's face.
    """

    crop_sha256: str
    descriptor: np.ndarray

    def to_json(self) -> dict[str, object]:
        return {"crop_sha256": self.crop_sha256, "descriptor": [round(float(v), 6) for v in self.descriptor]}

    @classmethod
    def from_json(cls, data: object) -> "PortraitIdentity":
        """The inverse of :meth:`to_json`; ValueError for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("crop_sha256"), str):
            raise ValueError(f"a portrait identity needs a crop_sha256 string, got {data!r:.80}")
        descriptor = np.asarray(data.get("descriptor"), dtype=np.float32)
        if descriptor.shape != (128,):
            raise ValueError(f"a portrait identity needs a 128-d descriptor, got shape {descriptor.shape}")
        return cls(data["crop_sha256"], descriptor)


def crop_sha256(avatar: Avatar) -> str:
    """The hash of the avatar's generator crop, quantised to uint8 (cheap: no network)."""
    crop = np.clip(np.rint((avatar.crop.transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return hashlib.sha256(np.ascontiguousarray(crop).tobytes()).hexdigest()


def portrait_identity(avatar: Avatar) -> PortraitIdentity:
    """The avatar's identity (~0.1 s for the descriptor, plus ~0.1 s the first time to load the network)."""
    return PortraitIdentity(crop_sha256(avatar), face_descriptor(avatar.portrait, avatar.face_box))


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two face descriptors (< ``SAME_PERSON_DISTANCE``: the same person)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))
