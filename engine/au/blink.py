"""Spontaneous blinks: AU45 from a seeded stochastic process, one video frame at a time.

People blink about 10-20 times a minute, each blink 100-300 ms, and mostly
at the ends of phrases and in pauses rather than in mid-sentence. The model:

- a *hazard* (blinks per second) that depends on what the speaker does: in a
  pause, the rate that gives ``rate_per_min`` blinks a minute on average;
  while speaking, ``SPEECH_RATE_FACTOR`` of it; for ``PHRASE_END_WINDOW_S``
  after a phrase of at least ``MIN_PHRASE_S`` ends, an extra hazard that
  alone would blink with probability ``PHRASE_END_BLINK_PROBABILITY``;
- a *refractory period*: no blink starts within ``REFRACTORY_S`` of the last
  one's start, so blinks never come in bursts, and their intervals are
  ``REFRACTORY_S`` plus an exponential wait: never a fixed period;
- a *profile* per blink: duration ``d`` drawn in 100..300 ms (mean ~180 ms),
  the lid closes over 30 % of it, stays shut 10 %, opens over 60 % (opening
  is slower than closing), smoothstep ramps. The closed instant falls on a
  frame, so every blink shows a fully closed lid (AU45 = 5) on some frame.

One call per frame, in order; the random numbers drawn per frame are the same
whatever the state, so a seed gives the same blinks for the same speech.
"""

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY

REFRACTORY_S = 0.8
SPEECH_RATE_FACTOR = 0.5
MIN_PHRASE_S = 1.0
PHRASE_END_WINDOW_S = 0.6
PHRASE_END_BLINK_PROBABILITY = 0.35
MIN_DURATION_S = 0.1
MAX_DURATION_S = 0.3
CLOSING_SHARE, CLOSED_SHARE = 0.3, 0.1
MAX_RATE_PER_MIN = 40.0
"""Above this the refractory period would dominate (60 s / 40 = 1.5 s between blinks on average)."""
DEFAULT_RATE_PER_MIN = 15.0
RECENT_EVENTS = 256


@dataclass(frozen=True)
class BlinkEvent:
    """One blink: the frame it was decided at, its duration (s) and the frame its lid is fully closed."""

    decided_frame: int
    duration_s: float
    closed_frame: int


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


class BlinkModel:
    """AU45 intensity (0..5) for each video frame, from the speech state and a seed."""

    def __init__(self, *, fps: int, seed: int = 0) -> None:
        self._fps = fps
        self._dt_s = 1.0 / fps
        self._rng = np.random.default_rng([seed, 0xB1])
        self._frame = 0
        self._last_start_s = -math.inf
        self._blink: BlinkEvent | None = None
        self._phrase_s = 0.0
        self._phrase_end_s = -math.inf
        self.count = 0
        """Blinks started so far."""
        self.recent: deque[BlinkEvent] = deque(maxlen=RECENT_EVENTS)
        """The last RECENT_EVENTS blinks, oldest first (for measurement)."""

    def step(self, *, speaking: bool, rate_per_min: float = DEFAULT_RATE_PER_MIN) -> float:
        """Advance one frame; ``speaking``: the speaker is mid-phrase at this frame. Returns AU45 (0..5)."""
        if not 0.0 <= rate_per_min <= MAX_RATE_PER_MIN:
            raise ValueError(f"blink rate must be in 0..{MAX_RATE_PER_MIN:g} per minute, got {rate_per_min}")
        frame, now_s = self._frame, self._frame * self._dt_s
        self._frame += 1
        chance, shape = self._rng.random(2)  # always two draws: the stream never depends on the state
        if speaking:
            self._phrase_s += self._dt_s
        elif self._phrase_s > 0.0:
            if self._phrase_s >= MIN_PHRASE_S:
                self._phrase_end_s = now_s
            self._phrase_s = 0.0
        if now_s - self._last_start_s >= REFRACTORY_S and chance < 1.0 - math.exp(
            -self._hazard_per_s(speaking, now_s, rate_per_min) * self._dt_s
        ):
            self._start(frame, now_s, shape)
        return AU_MAX_INTENSITY * self._closure(now_s)

    def _hazard_per_s(self, speaking: bool, now_s: float, rate_per_min: float) -> float:
        if rate_per_min == 0.0:
            return 0.0
        pause_hazard = 1.0 / (60.0 / rate_per_min - REFRACTORY_S)
        hazard = pause_hazard * (SPEECH_RATE_FACTOR if speaking else 1.0)
        if now_s - self._phrase_end_s < PHRASE_END_WINDOW_S:
            extra = -math.log(1.0 - PHRASE_END_BLINK_PROBABILITY) / PHRASE_END_WINDOW_S
            hazard += extra * rate_per_min / DEFAULT_RATE_PER_MIN
        return hazard

    def _start(self, frame: int, now_s: float, shape: float) -> None:
        duration_s = MIN_DURATION_S + (MAX_DURATION_S - MIN_DURATION_S) * shape**1.5
        closed_frame = frame + max(1, math.ceil(CLOSING_SHARE * duration_s * self._fps))
        self._blink = BlinkEvent(decided_frame=frame, duration_s=duration_s, closed_frame=closed_frame)
        self._last_start_s = now_s
        self.count += 1
        self.recent.append(self._blink)

    def _closure(self, now_s: float) -> float:
        """How far the lid is closed at ``now_s``, 0 (open) .. 1 (shut)."""
        if self._blink is None:
            return 0.0
        duration = self._blink.duration_s
        closing, closed = CLOSING_SHARE * duration, CLOSED_SHARE * duration
        opening = duration - closing - closed
        since_closed = now_s - self._blink.closed_frame * self._dt_s
        if since_closed < 0.0:
            return _smoothstep(1.0 + since_closed / closing)
        if since_closed <= closed:
            return 1.0
        if since_closed - closed >= opening:
            self._blink = None
            return 0.0
        return 1.0 - _smoothstep((since_closed - closed) / opening)
