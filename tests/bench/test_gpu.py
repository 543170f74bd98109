"""The GPU scenario's rule for sessions per GPU (the scenario itself: test_scenarios.py, skipping without a GPU)."""

from bench.gpu import sessions_within


def test_sessions_per_gpu_is_the_largest_batch_whose_tick_fits_twice_in_a_frame() -> None:
    rows = [
        {"batch": 1, "tick_ms": 2.5},
        {"batch": 8, "tick_ms": 10.0},  # 2 x 10 ms <= 40 ms
        {"batch": 16, "tick_ms": 21.0},  # 2 x 21 ms > 40 ms
    ]
    assert sessions_within(rows, fps=25) == 8
    assert sessions_within(rows[2:], fps=25) == 0
