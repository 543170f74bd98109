"""Head motion from prosody: small nods and turns on stressed syllables, slow sway at all times.

Speakers move their heads with the rhythm of their speech: a nod (chin
down and back) and a small turn or tilt on a stressed syllable, a change of
posture between phrases, and a slow sway when silent. The model:

- each axis (pitch, yaw, roll) is a critically damped spring (natural
  frequency ``RESPONSE_HZ``) pulled towards a *target*: the sway (seeded
  wandering signals, ``SWAY_DEG``) plus a per-phrase posture offset
  (``PHRASE_OFFSET_DEG``, drawn at each phrase start, eased in and out over
  ``POSTURE_TAU_S``, gone after ``POSTURE_HOLD_S`` of silence);
- each syllable nucleus (:mod:`engine.au.prosody`) kicks the spring: a nod
  of ``NOD_PEAK_DEG`` peaking ``1 / (2 pi RESPONSE_HZ)`` s later, a turn and a
  tilt of random side, all scaled by the syllable's prominence
  (0 at ``PROMINENCE_LOW_DB`` or below, full at ``PROMINENCE_HIGH_DB``);
- ``scale`` multiplies everything, and the output is soft-limited to
  ``LIMIT_DEG`` (``limit * tanh(angle / limit)``), so it stays within a few
  degrees whatever the speech.

Angles follow :class:`engine.pipeline.frames.HeadPose`: pitch positive chin
down, yaw positive to the viewer's right, roll positive clockwise.
"""

import math

import numpy as np

from engine.au.wander import Wander

RESPONSE_HZ = 1.6
NOD_PEAK_DEG = 2.5
TURN_PEAK_DEG = 1.2
TILT_PEAK_DEG = 0.6
PROMINENCE_LOW_DB, PROMINENCE_HIGH_DB = -2.0, 3.0
SWAY_DEG = np.array([0.6, 1.2, 0.5])
SWAY_LOW_HZ, SWAY_HIGH_HZ = 0.03, 0.25
PHRASE_OFFSET_DEG = np.array([0.8, 2.0, 0.8])
POSTURE_TAU_S = 0.8
POSTURE_HOLD_S = 1.5
LIMIT_DEG = np.array([6.0, 8.0, 4.0])
"""Pitch, yaw, roll: no output angle reaches these, whatever the scale."""
MAX_SCALE = 3.0


def prominence_weight(prominence_db: float) -> float:
    """How strongly a syllable of this prominence moves the head, 0..1 (smoothstep between the bounds)."""
    x = min(1.0, max(0.0, (prominence_db - PROMINENCE_LOW_DB) / (PROMINENCE_HIGH_DB - PROMINENCE_LOW_DB)))
    return x * x * (3.0 - 2.0 * x)


class HeadMotion:
    """(pitch, yaw, roll) degrees for each video frame, from the syllables heard and a seed."""

    def __init__(self, *, fps: int, seed: int = 0) -> None:
        self._dt_s = 1.0 / fps
        omega = 2.0 * math.pi * RESPONSE_HZ
        self._omega = omega
        self._decay = math.exp(-omega * self._dt_s)
        self._kick_per_deg = omega * math.e  # velocity that makes a peak of 1 degree (x(t) = v t e^(-omega t))
        self._posture_alpha = 1.0 - math.exp(-self._dt_s / POSTURE_TAU_S)
        self._sway = Wander(3, low_hz=SWAY_LOW_HZ, high_hz=SWAY_HIGH_HZ, seed=seed, stream=0x5A)
        self._rng = np.random.default_rng([seed, 0x4E])
        self._angle = np.zeros(3)
        self._velocity = np.zeros(3)
        self._posture = np.zeros(3)
        self._posture_target = np.zeros(3)
        self._frame = 0
        self._silent_s = math.inf
        self._speaking = False

    def step(self, *, prominences_db: list[float], speaking: bool, scale: float = 1.0) -> tuple[float, float, float]:
        """Advance one frame; ``prominences_db``: syllable nuclei heard since the last frame."""
        if not 0.0 <= scale <= MAX_SCALE:
            raise ValueError(f"head motion scale must be in 0..{MAX_SCALE:g}, got {scale}")
        time_s = self._frame * self._dt_s
        self._frame += 1
        if speaking and not self._speaking:
            self._posture_target = PHRASE_OFFSET_DEG * self._rng.uniform(-1.0, 1.0, 3)
        self._speaking = speaking
        self._silent_s = 0.0 if speaking else self._silent_s + self._dt_s
        target_posture = self._posture_target if self._silent_s < POSTURE_HOLD_S else np.zeros(3)
        self._posture += self._posture_alpha * (target_posture - self._posture)
        for prominence_db in prominences_db:
            sides = np.sign(self._rng.uniform(-1.0, 1.0, 2))
            peak_deg = np.array([NOD_PEAK_DEG, TURN_PEAK_DEG * sides[0], TILT_PEAK_DEG * sides[1]])
            self._velocity += self._kick_per_deg * prominence_weight(prominence_db) * peak_deg
        self._spring(SWAY_DEG * self._sway(time_s) + self._posture)
        pitch, yaw, roll = LIMIT_DEG * np.tanh(scale * self._angle / LIMIT_DEG)
        return float(pitch), float(yaw), float(roll)

    def _spring(self, target: np.ndarray) -> None:
        """Exact step of ``x'' + 2 w x' + w^2 x = w^2 target`` over one frame, the target held."""
        omega, dt, decay = self._omega, self._dt_s, self._decay
        offset = self._angle - target
        self._angle = target + decay * (offset * (1.0 + omega * dt) + self._velocity * dt)
        self._velocity = decay * (self._velocity * (1.0 - omega * dt) - offset * omega * omega * dt)
