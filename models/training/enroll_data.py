"""Training data for enrolling one portrait: synthesized (AU vector, face crop) pairs, made on the fly.

The generator is trained to reproduce what :class:`~models.enroll.ExpressionSynthesizer`
renders from the portrait's own crop. Batches are a pure function of (seed,
step), so a resumed run sees exactly the batches an uninterrupted one would,
with no random state to save; the held-out AU vectors come from a stream of
their own and never appear in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.au import AU_MAX_INTENSITY
from engine.avatar import Avatar, FaceBox, NoFaceError
from engine.avatar.landmarks import detect_landmarks
from models.enroll import ExpressionSynthesizer
from models.enroll.au_sampler import sample_aus

_TRAIN_STREAM = 0
_HELDOUT_STREAM = 1


@dataclass(frozen=True, eq=False)
class Enrollment:
    """One portrait, ready to make training pairs from.

    avatar: the prepared portrait, exactly as the engine prepares it at run time.
    crop: (128, 128, 3) uint8 RGB, ``avatar.crop`` quantised: what the synthesizer warps.
    landmarks: (68, 2) float32 dlib landmarks of ``crop``, ``(x, y)`` crop pixels.
    synthesizer: renders ``crop`` with any AU vector.
    """

    avatar: Avatar
    crop: np.ndarray
    landmarks: np.ndarray
    synthesizer: ExpressionSynthesizer

    @classmethod
    def from_avatar(cls, avatar: Avatar) -> Enrollment:
        """Quantise the avatar's crop and find its landmarks (~0.5 s, mostly loading dlib's predictor).

        Landmarks are found on the 128x128 crop itself, the image the
        synthesizer moves. The face is detected again in the crop; where the
        detector misses it there (small crops lose detail), the portrait's
        face box, mapped into the crop, guides the landmark predictor instead.
        """
        crop = crop_to_uint8(avatar.crop)
        try:
            landmarks = detect_landmarks(crop)
        except NoFaceError:
            landmarks = detect_landmarks(crop, _face_box_in_crop(avatar))
        return cls(avatar=avatar, crop=crop, landmarks=landmarks, synthesizer=ExpressionSynthesizer(crop, landmarks))

    def input_image(self) -> torch.Tensor:
        """(1, 3, 128, 128) float32 in [-1, 1]: the generator's input, the engine's own crop (not quantised)."""
        return torch.from_numpy(np.array(self.avatar.crop, dtype=np.float32))[None]

    def render(self, aus: np.ndarray) -> np.ndarray:
        """Synthesizer targets for aus (N, 17) intensities 0..5: (N, 128, 128, 3) uint8."""
        return np.stack([self.synthesizer.render(vector) for vector in aus])


def _face_box_in_crop(avatar: Avatar) -> FaceBox:
    """The avatar's face box (portrait pixels) in the pixels of its crop."""
    box, scale = avatar.crop_box, avatar.crop.shape[-1] / avatar.crop_box.size
    face = avatar.face_box
    return FaceBox((face.x - box.x0) * scale, (face.y - box.y0) * scale, face.width * scale, face.height * scale)


def training_aus(seed: int, step: int, batch_size: int) -> np.ndarray:
    """The AU vectors of training step ``step``: (batch_size, 17) float32 intensities 0..5."""
    return sample_aus(np.random.default_rng([seed, _TRAIN_STREAM, step]), batch_size)


def heldout_aus(seed: int, n: int) -> np.ndarray:
    """``n`` evaluation AU vectors (n, 17) float32 0..5, from a stream training never draws from."""
    return sample_aus(np.random.default_rng([seed, _HELDOUT_STREAM]), n)


def crop_to_uint8(crop: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [-1, 1] -> (H, W, 3) uint8 RGB, rounded."""
    return np.rint((np.asarray(crop, dtype=np.float32).transpose(1, 2, 0) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_images(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [-1, 1] -> (N, H, W, 3) uint8 RGB, rounded and clipped."""
    return ((images.detach().permute(0, 2, 3, 1) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def aus_to_condition(aus: np.ndarray) -> torch.Tensor:
    """(N, 17) intensities 0..5 -> (N, 17) float32 in [0, 1], the generator's conditioning."""
    return torch.from_numpy(np.asarray(aus, dtype=np.float32) / AU_MAX_INTENSITY)
