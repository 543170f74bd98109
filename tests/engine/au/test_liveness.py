"""Liveness in a session: each part switchable, exactly the old stream when off, alive in silence."""

import dataclasses

import numpy as np
import pytest

from engine.au import AU_NAMES, ExpressionControl, au_index
from engine.au.liveness import Liveness, LivenessSettings
from engine.audio import MelConfig, log_mel
from engine.audio.mel import hop_count
from engine.pipeline import SAMPLE_RATE_HZ, AUEstimator, Session
from engine.pipeline.au_estimator import frame_hop
from tests.engine.au.speech import StressedSpeech, stressed_speech
from tests.engine.nets import au_step_backends, small_cause

FPS = 25
IDLE_AUS = [au_index(name) for name in ("AU01", "AU02", "AU05", "AU07")]


@pytest.fixture(scope="module")
def torch_step(tmp_path_factory: pytest.TempPathFactory):
    return au_step_backends(small_cause(2), tmp_path_factory.mktemp("cause"))["torch"]


@pytest.fixture(scope="module")
def speech() -> StressedSpeech:
    return stressed_speech()


def session_frames(backend, audio: np.ndarray, settings: LivenessSettings | None, **kwargs) -> list:
    session = Session(backend, fps=FPS, liveness=settings, **kwargs)
    return session.push_audio(audio) + session.finish()


def estimated(backend, audio: np.ndarray) -> np.ndarray:
    """What a session showed before liveness: the estimator's AUs for each frame, pushed in the same chunks."""
    estimator = AUEstimator(backend, fps=FPS)
    n_frames = -(-audio.size * FPS // SAMPLE_RATE_HZ)
    hops = log_mel(np.concatenate([audio, np.zeros(4000, np.float32)]))
    in_audio, needed = hop_count(audio.size, MelConfig()), estimator.raw_hops_needed(n_frames - 1)
    frames = estimator.push(hops[:in_audio]) + estimator.push(hops[in_audio:needed])
    return np.stack([aus for _, aus in frames[:n_frames]])


def test_all_off_is_exactly_the_stream_without_liveness(torch_step, speech: StressedSpeech) -> None:
    expression = ExpressionControl()
    expression.set("AU12", bias=1.0)
    frames = session_frames(torch_step, speech.audio, LivenessSettings.off(), expression=expression)
    expected = expression.apply(estimated(torch_step, speech.audio))
    np.testing.assert_array_equal(np.stack([f.aus for f in frames]), expected)
    assert all(f.head is None for f in frames)


def test_each_part_changes_only_what_it_owns(torch_step, speech: StressedSpeech) -> None:
    raw = estimated(torch_step, speech.audio)
    off = LivenessSettings.off()
    others = [i for i in range(len(AU_NAMES)) if i not in IDLE_AUS]

    blink = np.stack([f.aus for f in session_frames(torch_step, speech.audio, dataclasses.replace(off, blink=True))])
    np.testing.assert_array_equal(np.delete(blink, au_index("AU45"), axis=1), np.delete(raw, au_index("AU45"), axis=1))
    assert blink[:, au_index("AU45")].max() == 5.0

    idle = np.stack([f.aus for f in session_frames(torch_step, speech.audio, dataclasses.replace(off, idle=True))])
    np.testing.assert_array_equal(idle[:, others], raw[:, others])
    assert (idle[:, IDLE_AUS] >= raw[:, IDLE_AUS]).all() and (idle[:, IDLE_AUS] > raw[:, IDLE_AUS]).any()

    smoothing = dataclasses.replace(off, smoothing=True)
    smooth = np.stack([f.aus for f in session_frames(torch_step, speech.audio, smoothing)])
    assert np.abs(np.diff(smooth, 2, axis=0)).mean() < 0.7 * np.abs(np.diff(raw, 2, axis=0)).mean()

    heads = session_frames(torch_step, speech.audio, dataclasses.replace(off, head_motion=True))
    np.testing.assert_array_equal(np.stack([f.aus for f in heads]), raw)
    assert all(f.head is not None for f in heads)


def test_settings_change_mid_stream_from_the_next_frame(torch_step, speech: StressedSpeech) -> None:
    session = Session(torch_step, fps=FPS)
    first = session.push_audio(speech.audio[:32_000])
    session.liveness = LivenessSettings.off()
    rest = session.push_audio(speech.audio[32_000:]) + session.finish()
    assert all(f.head is not None for f in first) and all(f.head is None for f in rest)
    np.testing.assert_array_equal(np.stack([f.aus for f in rest]), estimated(torch_step, speech.audio)[len(first) :])


def test_the_face_never_freezes_in_silence(torch_step) -> None:
    frames = session_frames(torch_step, np.zeros(30 * SAMPLE_RATE_HZ, np.float32), None)
    aus = np.stack([f.aus for f in frames])
    heads = np.array([[f.head.pitch_deg, f.head.yaw_deg, f.head.roll_deg] for f in frames])
    for second in range(30):
        window = slice(second * FPS, (second + 1) * FPS)
        moved_aus = np.abs(np.diff(aus[window], axis=0)).max()
        moved_head = np.abs(np.diff(heads[window], axis=0)).max()
        assert moved_aus > 1e-3 and moved_head > 1e-3, f"frozen in second {second}"
    assert aus[:, au_index("AU45")].max() == 5.0  # and it blinks


def test_nods_follow_the_stressed_syllables_of_real_speech(speech: StressedSpeech) -> None:
    liveness = Liveness(LivenessSettings(), fps=FPS)
    liveness.push_hops(log_mel(np.concatenate([speech.audio, np.zeros(8000, np.float32)])))
    n_frames = speech.audio.size * FPS // SAMPLE_RATE_HZ
    pitch = np.array(
        [liveness.frame(n, np.zeros(17, np.float32), hops_through=frame_hop(n, FPS) + 3)[1][0] for n in range(n_frames)]
    )

    # Stressed and unstressed vowels follow each other closely, so their nods overlap: fit the pitch
    # with one nod-shaped response per kind of vowel (least squares) and compare the two amplitudes.
    nod = np.array([0.0, 0.6, 1.0, 0.9, 0.7, 0.45, 0.25, 0.1])  # a nod: peaks ~100 ms after its cue

    def responses(starts_s: list[float]) -> np.ndarray:
        train = np.zeros(n_frames)
        train[[int(t * FPS) for t in starts_s if int(t * FPS) < n_frames]] = 1.0
        return np.convolve(train, nod)[:n_frames]

    design = np.stack([responses(speech.stressed_s), responses(speech.unstressed_s), np.ones(n_frames)], axis=1)
    (stressed_deg, unstressed_deg, _), *_ = np.linalg.lstsq(design, pitch, rcond=None)
    assert stressed_deg > 0.5 and stressed_deg > 2 * unstressed_deg
    assert np.abs(pitch).max() < 6.0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="blink_rate_per_min"):
        LivenessSettings(blink_rate_per_min=60)
    with pytest.raises(ValueError, match="head_motion_scale"):
        LivenessSettings(head_motion_scale=-1)
    with pytest.raises(ValueError, match="blink must be true or false"):
        LivenessSettings(blink=1)  # type: ignore[arg-type]
    assert LivenessSettings().describe() == "liveness: blink 15/min, smoothing, head motion x1, idle (seed 0)"
    assert LivenessSettings.off().describe() == "liveness: off (seed 0)"
