"""Streaming AU estimation equals the offline forward, in every runtime and chunking."""

import numpy as np
import pytest
import torch

from engine.pipeline.au_estimator import AUEstimator, frame_hop
from tests.engine.nets import au_step_backends, random_mel, small_cause

N_HOPS = 203


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory):
    """Backends for a given lookahead, exported once per module (an ONNX export takes seconds)."""
    cache: dict[int, tuple] = {}

    def get(lookahead: int):
        if lookahead not in cache:
            net = small_cause(lookahead)
            cache[lookahead] = (net, au_step_backends(net, tmp_path_factory.mktemp(f"cause{lookahead}")))
        return cache[lookahead]

    return get


def offline_frames(net, mel: np.ndarray, fps: int) -> np.ndarray:
    """Frame n's AUs from one offline forward over the whole sequence."""
    with torch.inference_mode():
        hop_aus = net(torch.from_numpy(mel)[None])[0].numpy()
    n_frames = sum(1 for n in range(N_HOPS) if frame_hop(n, fps) < hop_aus.shape[0])
    return np.stack([hop_aus[frame_hop(n, fps)] for n in range(n_frames)])


def test_frame_hop_is_the_hop_starting_at_or_before_the_frame() -> None:
    assert [frame_hop(n, 25) for n in range(5)] == [0, 4, 8, 12, 16]
    assert [frame_hop(n, 30) for n in range(5)] == [0, 3, 6, 10, 13]


def stream(estimator: AUEstimator, mel: np.ndarray, chunk_sizes: list[int]) -> np.ndarray:
    estimator.reset()
    frames, start, i = [], 0, 0
    while start < mel.shape[0]:
        size = chunk_sizes[i % len(chunk_sizes)]
        frames += estimator.push(mel[start : start + size])
        start += size
        i += 1
    assert [index for index, _ in frames] == list(range(len(frames)))
    return np.stack([aus for _, aus in frames])


@pytest.mark.parametrize("lookahead", [0, 2, 5])
@pytest.mark.parametrize("chunks", [[1], [3], [7, 0, 2], [N_HOPS]])
def test_streaming_equals_offline_torch(runtimes, lookahead: int, chunks: list[int]) -> None:
    net, backends = runtimes(lookahead)
    mel = random_mel(N_HOPS)
    expected = offline_frames(net, mel, fps=25)
    got = stream(AUEstimator(backends["torch"], fps=25), mel, chunks)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_onnx_runtime_streams_one_hop_at_a_time(runtimes) -> None:
    net, backends = runtimes(2)
    mel = random_mel(N_HOPS)
    backend = backends["onnxruntime"]
    assert backend.lookahead_hops == 2
    got = stream(AUEstimator(backend, fps=25), mel, [1])
    np.testing.assert_allclose(got, offline_frames(net, mel, fps=25), atol=1e-4)


@pytest.mark.parametrize("fps", [25, 30, 50])
def test_frame_rate_selects_the_hop_at_each_frame_time(runtimes, fps: int) -> None:
    net, backends = runtimes(1)
    mel = random_mel(N_HOPS)
    got = stream(AUEstimator(backends["torch"], fps=fps), mel, [4])
    np.testing.assert_allclose(got, offline_frames(net, mel, fps=fps), atol=1e-5)
    assert got.shape[0] == sum(1 for n in range(N_HOPS) if frame_hop(n, fps) + 1 < N_HOPS)


def test_frames_are_released_as_soon_as_their_hops_arrive(runtimes) -> None:
    estimator = AUEstimator(runtimes(2)[1]["torch"], fps=25)
    mel = random_mel(20)
    released_after = {}
    for hop in range(20):
        for index, _ in estimator.push(mel[hop : hop + 1]):
            released_after[index] = hop + 1
    # frame n shows hop 4n and needs 2 hops of lookahead: it is final after hop 4n+2
    assert released_after == {n: 4 * n + 3 for n in range(5)}


def test_rejects_an_impossible_frame_rate(runtimes) -> None:
    with pytest.raises(ValueError, match="fps"):
        AUEstimator(runtimes(2)[1]["torch"], fps=0)
