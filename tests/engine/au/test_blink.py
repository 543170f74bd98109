"""Blinks: 10-20 a minute in conversation, 100-300 ms each, more in pauses, never periodic, seeded."""

import numpy as np
import pytest

from engine.au.blink import MAX_DURATION_S, MIN_DURATION_S, REFRACTORY_S, BlinkModel

FPS = 25


def conversation(minutes: float, seed: int) -> np.ndarray:
    """Per-frame "speaking" flags: phrases of 1-5 s and pauses of 0.3-2.5 s, as in a conversation."""
    rng = np.random.default_rng([seed, 99])
    flags: list[bool] = []
    while len(flags) < minutes * 60 * FPS:
        flags += [True] * int(rng.uniform(1.0, 5.0) * FPS) + [False] * int(rng.uniform(0.3, 2.5) * FPS)
    return np.array(flags[: int(minutes * 60 * FPS)])


def run(flags: np.ndarray, seed: int = 0, rate_per_min: float = 15.0) -> tuple[BlinkModel, np.ndarray]:
    model = BlinkModel(fps=FPS, seed=seed)
    return model, np.array([model.step(speaking=bool(flag), rate_per_min=rate_per_min) for flag in flags])


@pytest.fixture(scope="module")
def ten_minutes() -> tuple[np.ndarray, BlinkModel, np.ndarray]:
    flags = conversation(10, seed=0)
    model, au45 = run(flags)
    return flags, model, au45


def test_rate_is_10_to_20_a_minute_in_conversation(ten_minutes) -> None:
    flags, model, _ = ten_minutes
    assert 10 <= model.count / 10 <= 20
    for seed in (1, 2):
        assert 10 <= run(conversation(10, seed), seed=seed)[0].count / 10 <= 20


def test_each_blink_lasts_100_to_300_ms_and_closes_the_lid_fully(ten_minutes) -> None:
    _, model, au45 = ten_minutes
    events = list(model.recent)
    assert len(events) == model.count
    durations = np.array([event.duration_s for event in events])
    assert durations.min() >= MIN_DURATION_S and durations.max() <= MAX_DURATION_S
    assert 0.15 <= durations.mean() <= 0.22
    assert all(au45[event.closed_frame] == 5.0 for event in events)
    # Frames showing a (partly) closed lid match the blink's duration within a frame.
    for event in events:
        shown = np.count_nonzero(au45[event.decided_frame : event.decided_frame + 10]) / FPS
        assert abs(shown - event.duration_s) <= 1.0 / FPS + 1e-9


def test_more_blinks_in_pauses_and_at_phrase_ends_than_in_speech(ten_minutes) -> None:
    flags, model, _ = ten_minutes
    starts = np.array([event.decided_frame for event in model.recent])
    per_min_speaking = flags[starts].sum() / (flags.sum() / FPS / 60)
    per_min_paused = (~flags[starts]).sum() / ((~flags).sum() / FPS / 60)
    assert per_min_paused > 1.8 * per_min_speaking


def test_intervals_respect_the_refractory_period_and_are_not_periodic(ten_minutes) -> None:
    _, model, _ = ten_minutes
    intervals = np.diff([event.decided_frame for event in model.recent]) / FPS
    assert intervals.min() >= REFRACTORY_S - 1e-9
    assert intervals.std() / intervals.mean() > 0.4  # a fixed period would give 0


def test_the_rate_setting_is_the_mean_rate_in_a_long_pause() -> None:
    silence = np.zeros(30 * 60 * FPS, bool)
    assert 13 <= run(silence, rate_per_min=15.0)[0].count / 30 <= 17
    assert 27 <= run(silence, rate_per_min=30.0)[0].count / 30 <= 33
    assert run(silence[: 60 * FPS], rate_per_min=0.0)[0].count == 0
    with pytest.raises(ValueError, match="0..40"):
        BlinkModel(fps=FPS).step(speaking=False, rate_per_min=41.0)


def test_a_seed_gives_the_same_blinks_and_another_seed_others() -> None:
    flags = conversation(2, seed=3)
    np.testing.assert_array_equal(run(flags, seed=7)[1], run(flags, seed=7)[1])
    assert not np.array_equal(run(flags, seed=7)[1], run(flags, seed=8)[1])
