"""Liveness: what makes a talking face look alive besides its lips, switchable part by part.

Four parts, each with its own switch in :class:`LivenessSettings`:

- **blink**: AU45 from a seeded stochastic blink model (:mod:`engine.au.blink`),
  more likely at phrase ends and in pauses; merged as ``max(AU45, blink)``;
- **smoothing**: a one-euro filter on all 17 AUs (:mod:`engine.au.smoothing`),
  which adds at most ``SMOOTHING_MAX_LAG_S`` of delay (on slow movements);
- **head motion**: nods and turns on stressed syllables, posture changes
  between phrases and a slow sway (:mod:`engine.au.head_motion`), as
  (pitch, yaw, roll) degrees for the renderer;
- **idle**: small wandering brow and lid movements (:mod:`engine.au.idle`),
  so that the face never freezes in silence.

Everything runs on the session's audio clock: the speech features come from
the log-mel hops the session computes anyway (:mod:`engine.au.prosody`),
frame ``n`` sees exactly the hops that frame ``n``'s AUs were estimated from
(so no added latency, and the same frames for any chunking of the audio),
and randomness comes from ``seed``. No wall clock anywhere: the same audio
and seed give the same frames.

Every part runs whether it is switched on or not, so switching one on at run
time continues from a state that has followed the speech all along; with
every part off, :meth:`Liveness.frame` returns its input AUs untouched and no
head pose, exactly what a session did before liveness existed.
"""

import math
from collections import deque
from dataclasses import dataclass, fields

import numpy as np

from engine.au.blink import DEFAULT_RATE_PER_MIN, MAX_RATE_PER_MIN, BlinkModel
from engine.au.head_motion import MAX_SCALE, HeadMotion
from engine.au.idle import IdleMotion
from engine.au.prosody import HopProsody, ProsodyTracker
from engine.au.smoothing import OneEuroFilter
from engine.au.vocabulary import AU_MAX_INTENSITY, au_index
from engine.audio import MelConfig

SPEAKING_HANGOVER_S = 0.25
"""A speaker counts as mid-phrase until this long after the last voiced hop (gaps between words)."""
_AU45 = au_index("AU45")


@dataclass(frozen=True)
class LivenessSettings:
    """The liveness switches and their settings; the defaults are what ``avatar serve`` and ``render`` use.

    blink: add spontaneous blinks (AU45); blink_rate_per_min: their mean rate
        in a pause, 0..40 (about half of it while speaking, plus a likely
        blink at each phrase end).
    smoothing: one-euro filter on the AU stream.
    head_motion: nods, turns and sway (``AUFrame.head``); head_motion_scale:
        multiplies their amplitude, 0..3 (1: nods of about 2.5 degrees).
    idle: small brow and lid movements at all times.
    seed: the random stream of blinks, sway and idle motion (read when the
        session starts; changing it later has no effect).
    """

    blink: bool = True
    blink_rate_per_min: float = DEFAULT_RATE_PER_MIN
    smoothing: bool = True
    head_motion: bool = True
    head_motion_scale: float = 1.0
    idle: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for flag in ("blink", "smoothing", "head_motion", "idle"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        _check_range("blink_rate_per_min", self.blink_rate_per_min, MAX_RATE_PER_MIN)
        _check_range("head_motion_scale", self.head_motion_scale, MAX_SCALE)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    @classmethod
    def off(cls) -> "LivenessSettings":
        """Every part switched off: the AU stream exactly as estimated, no head motion."""
        return cls(blink=False, smoothing=False, head_motion=False, idle=False)

    @property
    def any_on(self) -> bool:
        return self.blink or self.smoothing or self.head_motion or self.idle

    def describe(self) -> str:
        """One line for logs: which parts are on, with their settings."""
        parts = [
            f"blink {self.blink_rate_per_min:g}/min" if self.blink else "",
            "smoothing" if self.smoothing else "",
            f"head motion x{self.head_motion_scale:g}" if self.head_motion else "",
            "idle" if self.idle else "",
        ]
        on = ", ".join(part for part in parts if part)
        return f"liveness: {on or 'off'} (seed {self.seed})"


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(LivenessSettings))


def _check_range(name: str, value: float, highest: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= highest:
        raise ValueError(f"{name} must be a number in 0..{highest:g}, got {value!r}")


class Liveness:
    """One session's liveness state: feed it the session's hops, ask it for each frame in order.

    ``settings`` may be replaced at any time (one reference swap; each frame
    reads it once), from another thread too.
    """

    def __init__(self, settings: LivenessSettings, *, fps: int, mel_config: MelConfig | None = None) -> None:
        """``mel_config``: the session's log-mel analysis (default: the engine's)."""
        mel_config = mel_config or MelConfig()
        self.settings = settings
        self._fps = fps
        self._prosody = ProsodyTracker(mel_config)
        self._hops: deque[HopProsody] = deque()
        self._hops_taken = 0
        self._last_voiced_hop = -math.inf
        self._hop_s = mel_config.hop_samples / mel_config.sample_rate_hz
        self._smoother = OneEuroFilter(rate_hz=fps)
        self._blink = BlinkModel(fps=fps, seed=settings.seed)
        self._head = HeadMotion(fps=fps, seed=settings.seed)
        self._idle = IdleMotion(seed=settings.seed)
        self._next_frame = 0

    @property
    def blinks(self) -> BlinkModel:
        """The blink model (its ``count`` and ``recent`` events say what it did)."""
        return self._blink

    def push_hops(self, log_mel_hops: np.ndarray) -> None:
        """The session's next (k, n_mels) log-mel hops, in order, as computed."""
        self._hops.extend(self._prosody.push(log_mel_hops))

    def frame(
        self, index: int, aus: np.ndarray, *, hops_through: int
    ) -> tuple[np.ndarray, tuple[float, float, float] | None]:
        """Frame ``index``'s AUs with liveness applied, and its head pose (None with head motion off).

        aus: (17,) intensities 0..5, as the session would show them without liveness.
        hops_through: how many hops the frame's AUs were estimated from; the
            speech features of exactly those hops are used.

        Frames come in order, each once. With every part off, ``aus`` is
        returned as given (the same array) and the pose is None.
        """
        if index != self._next_frame:
            raise ValueError(f"liveness expects frame {self._next_frame} next, got {index}")
        self._next_frame += 1
        settings = self.settings
        prominences = self._take_hops(hops_through)
        speaking = (hops_through - 1 - self._last_voiced_hop) * self._hop_s < SPEAKING_HANGOVER_S
        smoothed = self._smoother(aus)
        blink = self._blink.step(speaking=speaking, rate_per_min=settings.blink_rate_per_min)
        pose = self._head.step(prominences_db=prominences, speaking=speaking, scale=settings.head_motion_scale)
        idle = self._idle.offsets(index / self._fps)
        if not (settings.blink or settings.smoothing or settings.idle):
            return aus, pose if settings.head_motion else None
        result = smoothed if settings.smoothing else np.array(aus, dtype=np.float32)
        if settings.idle:
            result = result + idle
        if settings.blink:
            result[_AU45] = max(result[_AU45], blink)
        return np.clip(result, 0.0, AU_MAX_INTENSITY).astype(np.float32), pose if settings.head_motion else None

    def _take_hops(self, hops_through: int) -> list[float]:
        """Consume the queued hops before ``hops_through``; return the prominences of the nuclei among them."""
        prominences = []
        while self._hops_taken < hops_through and self._hops:
            hop = self._hops.popleft()
            if hop.voiced:
                self._last_voiced_hop = self._hops_taken
            if hop.prominence_db is not None:
                prominences.append(hop.prominence_db)
            self._hops_taken += 1
        return prominences
