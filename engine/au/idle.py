"""Idle micro-motion of the face: brows and lids that drift a little, so a silent face is never frozen.

Small, slow, positive AU offsets (a face at rest is never perfectly still:
the brows lift a hair, the lids widen and narrow), from seeded wandering
signals (:mod:`engine.au.wander`), added to whatever the speech drives.
"""

import numpy as np

from engine.au.vocabulary import N_AUS, au_index
from engine.au.wander import Wander

IDLE_AMPLITUDES: dict[str, float] = {"AU01": 0.4, "AU02": 0.3, "AU05": 0.3, "AU07": 0.3}
"""Most each AU is raised by idle motion (intensity, 0..5 scale); the offset wanders in 0..amplitude."""
IDLE_LOW_HZ, IDLE_HIGH_HZ = 0.05, 0.4


class IdleMotion:
    """(17,) AU offsets at any time: a pure function of the time and the seed."""

    def __init__(self, *, seed: int = 0) -> None:
        self._index = np.array([au_index(name) for name in IDLE_AMPLITUDES])
        self._amplitude = np.array(list(IDLE_AMPLITUDES.values()))
        self._wander = Wander(len(IDLE_AMPLITUDES), low_hz=IDLE_LOW_HZ, high_hz=IDLE_HIGH_HZ, seed=seed, stream=0x1D)

    def offsets(self, time_s: float) -> np.ndarray:
        """(17,) float32 intensities to add at ``time_s`` (seconds of the session's audio clock)."""
        offsets = np.zeros(N_AUS, np.float32)
        offsets[self._index] = self._amplitude * 0.5 * (1.0 + self._wander(time_s))
        return offsets
