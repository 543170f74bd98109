"""A session's audio clock: frames appear exactly when their audio has arrived."""

import math

import numpy as np
import pytest

from engine.au import ExpressionControl, au_index
from engine.pipeline import SAMPLE_RATE_HZ, Session
from engine.pipeline.session import lookahead_samples
from tests.engine.nets import au_step_backends, small_cause


@pytest.fixture(scope="module")
def torch_step(tmp_path_factory: pytest.TempPathFactory):
    return au_step_backends(small_cause(2), tmp_path_factory.mktemp("cause"))["torch"]


def speechlike(n_samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SAMPLE_RATE_HZ
    return (
        0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + 0.01 * rng.normal(size=n_samples)
    ).astype(np.float32)


def test_each_frame_is_emitted_when_its_due_sample_arrives(torch_step) -> None:
    session = Session(torch_step, fps=25)
    audio = speechlike(SAMPLE_RATE_HZ)
    for count in range(1, audio.size + 1, 80):
        for frame in session.push_audio(audio[count - 1 : count - 1 + 80]):
            assert frame.trace.due_sample <= session.samples_received < frame.trace.due_sample + 80
            assert frame.trace.shown_sample == frame.index * SAMPLE_RATE_HZ // 25
    # frame n shows hop 4n; with 2 hops of lookahead it needs hop 4n+2, whose window ends at (4n+2)*160+400
    assert session.due_sample(3) == (4 * 3 + 2) * 160 + 400
    assert session.due_sample(3) - session.shown_sample(3) == lookahead_samples(2) == 720


@pytest.mark.parametrize("n_samples", [1, 399, 400, 16_000, 16_001, 23_456])
def test_finish_completes_the_video_to_the_audio_length(torch_step, n_samples: int) -> None:
    session = Session(torch_step, fps=25)
    frames = session.push_audio(speechlike(n_samples)) + session.finish()
    assert [f.index for f in frames] == list(range(math.ceil(n_samples * 25 / SAMPLE_RATE_HZ)))


def test_chunking_does_not_change_the_frames(torch_step) -> None:
    audio = speechlike(20_000)
    runs = []
    for chunk in (160, 320, 777, 20_000):
        session = Session(torch_step, fps=25)
        frames = []
        for start in range(0, audio.size, chunk):
            frames += session.push_audio(audio[start : start + chunk])
        frames += session.finish()
        runs.append(np.stack([f.aus for f in frames]))
    for other in runs[1:]:
        np.testing.assert_allclose(other, runs[0], atol=1e-5)


def test_resampled_stereo_input_drives_the_same_clock(torch_step) -> None:
    session = Session(torch_step, fps=25, input_rate_hz=48_000, channels=2)
    stereo = np.repeat(speechlike(48_000)[:, None], 2, axis=1)
    frames = session.push_audio(stereo) + session.finish()
    assert abs(session.samples_received - SAMPLE_RATE_HZ) <= 16
    assert len(frames) == math.ceil(session.samples_received * 25 / SAMPLE_RATE_HZ)


def test_expression_bias_reaches_every_frame(torch_step) -> None:
    expression = ExpressionControl()
    expression.set("AU12", bias=5.0)
    frames = Session(torch_step, fps=25, expression=expression).push_audio(speechlike(8000))
    assert frames and all(f.aus[au_index("AU12")] == 5.0 for f in frames)
    assert all(0.0 <= f.aus.min() and f.aus.max() <= 5.0 for f in frames)
