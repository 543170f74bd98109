"""Streaming AU estimation: mel hops in, AU frames at the video rate out.

The CAUSE step backend runs at the hop rate (100 Hz) with its left context in
explicit state. Its raw output ``r`` lags by the lookahead ``L``: the estimate
for hop ``h`` is ``r[h + L]``. Video frame ``n`` at ``fps`` shows hop
``n * 100 // fps``, so it is final as soon as raw output ``n * 100 // fps + L``
exists. Pushing hops in any chunking yields the same frames as one push of all.
"""

import numpy as np

from engine.au import N_AUS
from engine.audio import HOP_RATE_HZ
from engine.backends.base import AUStepBackend


def frame_hop(frame_index: int, fps: int) -> int:
    """The mel hop whose AUs video frame ``frame_index`` shows (the hop starting at the frame's time)."""
    return frame_index * HOP_RATE_HZ // fps


class AUEstimator:
    """One stream's CAUSE state and the mapping from hops to video frames."""

    def __init__(self, backend: AUStepBackend, *, fps: int = 25) -> None:
        if not 1 <= fps <= HOP_RATE_HZ:
            raise ValueError(f"fps must be in 1..{HOP_RATE_HZ}, got {fps}")
        self._backend = backend
        self.fps = fps
        self.lookahead_hops = backend.lookahead_hops
        self.reset()

    def reset(self) -> None:
        """Start a new stream: zero left context, frame 0 next."""
        self._state = self._backend.initial_state(1)
        self._raw_count = 0
        self._next_frame = 0

    @property
    def next_frame_index(self) -> int:
        return self._next_frame

    def raw_hops_needed(self, frame_index: int) -> int:
        """How many mel hops must have been pushed before frame ``frame_index`` is final."""
        return frame_hop(frame_index, self.fps) + self.lookahead_hops + 1

    def push(self, mel_hops: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Consume (k, 80) log-mel hops; return the (frame index, (17,) AUs in 0..5) now final."""
        if mel_hops.shape[0] == 0:
            return []
        raw, self._state = self._backend.step(mel_hops[None], self._state)
        first_raw = self._raw_count
        self._raw_count += mel_hops.shape[0]
        frames = []
        while self.raw_hops_needed(self._next_frame) <= self._raw_count:
            raw_index = self.raw_hops_needed(self._next_frame) - 1
            aus = np.asarray(raw[0, raw_index - first_raw], dtype=np.float32).reshape(N_AUS)
            frames.append((self._next_frame, aus))
            self._next_frame += 1
        return frames
