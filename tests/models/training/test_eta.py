"""The enrolment ETA: steps and held-out checks timed apart, so the estimate does not jump after a check."""

import math

import numpy as np

from models.training.eta import EtaClock, format_duration


def test_the_estimate_falls_steadily_through_held_out_checks() -> None:
    """200 steps of ~0.2 s, a 3 s check every 25: each estimate is the last one minus the work just done."""
    rng = np.random.default_rng(0)
    clock, estimates, naive, elapsed_s = EtaClock(), [], [], 0.0
    for step in range(1, 201):
        duration_s = 0.2 + 0.02 * rng.normal()
        clock.step_done(duration_s)
        elapsed_s += duration_s
        if step % 25 == 0:
            clock.eval_done(3.0)
            elapsed_s += 3.0
        evals_left = (200 - step) // 25
        estimates.append(clock.remaining_s(200 - step, evals_left))
        naive.append(elapsed_s / step * (200 - step))  # average time per step, checks included
    truth = [0.2 * (200 - s) + 3.0 * ((200 - s) // 25) for s in range(1, 201)]
    after_checks = slice(25, 200)  # once a check has been timed
    error = np.abs(np.array(estimates[after_checks]) - truth[after_checks])
    assert (error <= 0.06 * np.array(truth[after_checks]) + 0.3).all()  # within 6 % (the steps' own noise)

    def largest_rise(series: list[float]) -> float:
        values = np.array(series[after_checks])
        return float(np.max(np.diff(values) / values[:-1]))

    assert largest_rise(estimates) < 0.01  # it never jumps up (step-time noise only)
    assert largest_rise(naive) > 0.05  # as an average over steps and checks together does after each check


def test_before_the_first_check_a_check_counts_as_ten_steps() -> None:
    clock = EtaClock()
    assert math.isnan(clock.remaining_s(10, 1))
    clock.step_done(0.5)
    assert clock.remaining_s(10, 1) == 0.5 * 10 + 5.0


def test_durations_read_as_minutes_and_seconds() -> None:
    assert format_duration(125.4) == "2:05"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(math.nan) == "?"
