"""Head motion: nods follow stressed syllables, a slow sway in silence, always within a few degrees."""

import numpy as np
import pytest

from engine.au.head_motion import LIMIT_DEG, NOD_PEAK_DEG, HeadMotion

FPS = 25


def drive(nuclei: dict[int, float], n_frames: int, *, speaking: bool = True, scale: float = 1.0, seed: int = 0):
    """Poses (n_frames, 3) for syllable nuclei {frame: prominence dB}."""
    head = HeadMotion(fps=FPS, seed=seed)
    return np.array(
        [head.step(prominences_db=[nuclei[i]] if i in nuclei else [], speaking=speaking, scale=scale)
         for i in range(n_frames)]
    )  # fmt: skip


def syllables(seed: int = 0) -> tuple[dict[int, float], list[int], list[int]]:
    """A syllable every 5-8 frames (200-320 ms); about one in three stressed (+4 dB), the rest -3 dB."""
    rng = np.random.default_rng(seed)
    nuclei, stressed, unstressed, frame = {}, [], [], 10
    while frame < 60 * FPS:
        is_stressed = rng.random() < 0.33
        nuclei[frame] = 4.0 if is_stressed else -3.0
        (stressed if is_stressed else unstressed).append(frame)
        frame += int(rng.integers(5, 9))
    return nuclei, stressed, unstressed


def nod_rise_deg(pitch: np.ndarray, frames: list[int]) -> float:
    """Mean rise of pitch (chin down) from the frame before a syllable's to its largest in the next 300 ms."""
    return float(np.mean([pitch[f : f + 8].max() - pitch[f - 1] for f in frames if f + 8 < len(pitch)]))


def test_stressed_syllables_nod_and_unstressed_ones_barely_move() -> None:
    nuclei, stressed, unstressed = syllables()
    pitch = drive(nuclei, 60 * FPS)[:, 0]
    assert nod_rise_deg(pitch, stressed) > 1.5
    assert nod_rise_deg(pitch, stressed) > 3 * nod_rise_deg(pitch, unstressed)


def test_pitch_correlates_with_the_stressed_syllables() -> None:
    nuclei, stressed, _ = syllables()
    pitch = drive(nuclei, 60 * FPS)[:, 0]
    train = np.zeros(60 * FPS)
    train[stressed] = 1.0
    kernel = np.array([0.0, 0.8, 1.0, 0.8, 0.5, 0.25, 0.1])  # a nod peaks ~100 ms after its syllable
    expected = np.convolve(train, kernel)[: len(train)]
    assert np.corrcoef(expected, pitch)[0, 1] > 0.5


def test_silence_sways_slowly_within_a_degree_or_two_and_never_stops() -> None:
    poses = drive({}, 120 * FPS, speaking=False)
    assert np.abs(poses).max() < 2.0
    assert poses.std(axis=0).min() > 0.1
    per_second = poses.reshape(120, FPS, 3)
    assert (np.abs(per_second[:, -1] - per_second[:, 0]).max(axis=1) > 1e-3).all()  # moves in every second
    assert np.abs(np.diff(poses, axis=0)).max() < 0.2  # slowly: under 5 degrees a second


def test_amplitude_stays_bounded_whatever_the_speech() -> None:
    loud = {frame: 30.0 for frame in range(30 * FPS)}  # a syllable every frame, all hugely prominent
    for scale in (1.0, 3.0):
        poses = drive(loud, 30 * FPS, scale=scale)
        assert (np.abs(poses) < LIMIT_DEG).all()
    single = drive({5: 10.0}, 40)[:, 0]
    assert single.max() == pytest.approx(NOD_PEAK_DEG, abs=0.6)  # one nod: its stated peak, plus sway


def test_scale_multiplies_the_motion_and_zero_stills_it() -> None:
    nuclei, _, _ = syllables()
    base, double = drive(nuclei, 600, scale=1.0), drive(nuclei, 600, scale=2.0)
    assert 1.7 < double.std() / base.std() < 2.05
    assert not drive(nuclei, 600, scale=0.0).any()
    with pytest.raises(ValueError, match="0..3"):
        HeadMotion(fps=FPS).step(prominences_db=[], speaking=False, scale=3.5)


def test_a_seed_gives_the_same_motion() -> None:
    nuclei, _, _ = syllables()
    np.testing.assert_array_equal(drive(nuclei, 300, seed=4), drive(nuclei, 300, seed=4))
    assert not np.array_equal(drive(nuclei, 300, seed=4), drive(nuclei, 300, seed=5))
