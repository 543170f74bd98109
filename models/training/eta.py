"""An honest time-remaining estimate for a training run: steps and held-out checks timed apart.

A run alternates many training steps with occasional evaluations that take
far longer than a step. An estimate from the average time per step jumps
after every evaluation; one from the last step alone ignores the
evaluations still to come. This one keeps a running mean of each kind of
work and adds up what remains of each.
"""

import math

SMOOTHING = 0.1
"""Weight of the newest duration in each running mean (about the last 10-20 measured)."""


class EtaClock:
    """Running means of a step's and an evaluation's duration, and the time the rest will take."""

    def __init__(self) -> None:
        self.step_s: float | None = None
        self.eval_s: float | None = None

    def step_done(self, duration_s: float) -> None:
        self.step_s = _update(self.step_s, duration_s)

    def eval_done(self, duration_s: float) -> None:
        self.eval_s = _update(self.eval_s, duration_s)

    def remaining_s(self, steps_left: int, evals_left: int) -> float:
        """Seconds until ``steps_left`` steps and ``evals_left`` evaluations are done; NaN before any step.

        An evaluation not yet measured counts as 10 steps (a held-out check
        is about that on the default sizes).
        """
        if self.step_s is None:
            return math.nan
        eval_s = self.eval_s if self.eval_s is not None else 10.0 * self.step_s
        return steps_left * self.step_s + evals_left * eval_s


def format_duration(seconds: float) -> str:
    """``"2:05"`` (minutes:seconds), ``"1:02:05"`` past an hour, ``"?"`` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _update(mean: float | None, value: float) -> float:
    return value if mean is None else mean + SMOOTHING * (value - mean)
