"""Tests of models/cause: streaming equals offline, causality, range, ONNX export, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.au import AU_MAX_INTENSITY, N_AUS
from models.cause.export import export_step_onnx
from models.cause.io import load_cause, save_cause
from models.cause.net import (
    CauseConfig,
    CauseNet,
    algorithmic_latency_ms,
    fold_weight_norm,
    parameter_count,
    receptive_field_hops,
)
from models.errors import CheckpointError

N_HOPS = 90  # longer than the default receptive field (61 hops)


def make_net(lookahead_hops: int = 2, seed: int = 0) -> CauseNet:
    """A default-width net with random weights and non-default input normalisation."""
    torch.manual_seed(seed)
    net = CauseNet(CauseConfig(lookahead_hops=lookahead_hops)).eval()
    net.set_mel_normalization(torch.linspace(-6.0, -2.0, 80), torch.linspace(2.0, 5.0, 80))
    return net


def make_mel(batch_size: int, n_hops: int = N_HOPS, seed: int = 1) -> torch.Tensor:
    """Log-mel-like input (B, T, 80)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, n_hops, 80), generator=generator) * 3.0 - 4.0


def chunk_sizes(name: str, n_hops: int) -> list[int]:
    """Chunk lengths summing to n_hops; "random" includes empty chunks."""
    if name == "whole":
        return [n_hops]
    if name == "random":
        rng = np.random.default_rng(1234)
        sizes: list[int] = []
        while sum(sizes) < n_hops:
            sizes.append(int(min(rng.integers(0, 10), n_hops - sum(sizes))))
        return [0, *sizes, 0]
    size = int(name)
    return [size] * (n_hops // size) + ([n_hops % size] if n_hops % size else [])


@pytest.fixture(scope="module", params=[0, 1, 2, 5], ids=lambda lookahead: f"L{lookahead}")
def net(request: pytest.FixtureRequest) -> CauseNet:
    return make_net(request.param)


def streamed(net: CauseNet, mel: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """``net.step`` over consecutive chunks of ``mel`` (B, T, n_mels) of these sizes (empty ones included),
    concatenated, the first ``lookahead_hops`` outputs dropped: what a streaming caller shows."""
    state = net.initial_state(mel.shape[0])
    outputs, start = [], 0
    with torch.no_grad():
        for size in sizes:
            if size:
                au, *state = net.step(mel[:, start : start + size], *state)
                outputs.append(au)
            start += size
    return torch.cat(outputs, dim=1)[:, net.config.lookahead_hops :]


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("chunking", ["1", "2", "3", "7", "random", "whole"])
def test_stream_equals_offline(net: CauseNet, chunking: str, batch_size: int) -> None:
    mel = make_mel(batch_size)
    with torch.no_grad():
        offline = net(mel)
    sizes = chunk_sizes(chunking, N_HOPS)
    assert offline.shape == (batch_size, N_HOPS - net.config.lookahead_hops, N_AUS)
    for stepped in (net, fold_weight_norm(net)):  # as trained, and with plain weights as exported
        assert (streamed(stepped, mel, sizes) - offline).abs().max().item() <= 1e-5


def test_folding_leaves_the_net_and_the_random_generator_alone() -> None:
    net = make_net(lookahead_hops=0)
    rng_state = torch.get_rng_state()
    folded = fold_weight_norm(net)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert not folded.training and not hasattr(folded.input_conv, "parametrizations")
    assert net.input_conv.parametrizations.weight.original0.shape == (net.config.channels, 1)
    mel = make_mel(1, n_hops=4)
    with torch.no_grad():
        assert torch.allclose(folded(mel), net(mel), atol=1e-6)


@pytest.mark.parametrize("lookahead_hops", [0, 2, 5])
def test_causal_with_lookahead_and_receptive_field(lookahead_hops: int) -> None:
    net = make_net(lookahead_hops)
    receptive_field = receptive_field_hops(net.config)
    mel = make_mel(2)
    t = 70
    with torch.no_grad():
        base = net(mel)
        future = mel.clone()
        future[:, t + lookahead_hops + 1 :] += 10.0
        changed_future = net(future)
        oldest = mel.clone()
        oldest[:, t + lookahead_hops - receptive_field + 1] += 10.0
        changed_oldest = net(oldest)
        too_old = mel.clone()
        too_old[:, : t + lookahead_hops - receptive_field + 1] += 10.0
        changed_too_old = net(too_old)
    assert torch.equal(changed_future[:, : t + 1], base[:, : t + 1])
    assert not torch.allclose(changed_future[:, t + 1], base[:, t + 1])
    assert not torch.equal(changed_oldest[:, t], base[:, t])  # the oldest hop weighs little at random init
    assert torch.equal(changed_too_old[:, t], base[:, t])


def test_output_range_and_short_inputs() -> None:
    net = make_net(lookahead_hops=2)
    mel = torch.cat([make_mel(1, 40) * 100.0, torch.full((1, 20, 80), -1e4), torch.full((1, 20, 80), 1e4)], dim=1)
    with torch.no_grad():
        au = net(mel)
        assert au.shape == (1, 78, N_AUS)
        assert au.min().item() >= 0.0 and au.max().item() <= AU_MAX_INTENSITY
        assert net(mel[:, :2]).shape == (1, 0, N_AUS)
        assert net(mel[:, :0]).shape == (1, 0, N_AUS)


def test_mel_normalization_is_applied() -> None:
    net = make_net(lookahead_hops=1)
    mel = make_mel(1, 30)
    plain = make_net(lookahead_hops=1)
    plain.set_mel_normalization(0.0, 1.0)
    with torch.no_grad():
        expected = plain((mel - net.mel_mean) / net.mel_std)
        assert torch.allclose(net(mel), expected, atol=1e-5)
    with pytest.raises(ValueError, match="std must be > 0"):
        net.set_mel_normalization(-4.0, 0.0)


def test_reporting_and_config() -> None:
    config = CauseConfig()
    assert receptive_field_hops(config) == 61
    assert algorithmic_latency_ms(config) == 45.0
    assert algorithmic_latency_ms(CauseConfig(lookahead_hops=0)) == 25.0
    net = CauseNet(config)
    assert parameter_count(net) == sum(p.numel() for p in net.parameters())
    assert 100_000 < parameter_count(net) < 1_000_000
    assert CauseConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="lookahead_hops"):
        CauseConfig(lookahead_hops=61)
    with pytest.raises(ValueError, match="kernel_size"):
        CauseConfig(kernel_size=1)
    with pytest.raises(ValueError, match="unknown config fields"):
        CauseConfig.from_dict({**config.to_dict(), "width": 3})


@pytest.mark.slow  # the export alone takes 5-8 s here
def test_onnx_step_matches_torch_streaming(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    net = make_net(lookahead_hops=2)
    path = export_step_onnx(net, tmp_path / "cause_step.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    n_state = len(net.config.dilations)
    assert [i.name for i in session.get_inputs()] == ["mel", *(f"state_{i}" for i in range(n_state))]
    assert [o.name for o in session.get_outputs()] == ["au", *(f"new_state_{i}" for i in range(n_state))]
    assert session.get_modelmeta().custom_metadata_map["lookahead_hops"] == "2"

    def run_onnx(mel: torch.Tensor, chunk: int) -> np.ndarray:
        state = [s.numpy() for s in net.initial_state(mel.shape[0])]
        outputs = []
        for start in range(0, mel.shape[1], chunk):
            feeds = {"mel": mel[:, start : start + chunk].numpy(), **{f"state_{i}": s for i, s in enumerate(state)}}
            au, *state = session.run(None, feeds)
            outputs.append(au)
        return np.concatenate(outputs, axis=1)

    mel = make_mel(1, 70)
    expected = streamed(net, mel, [1] * 70)[0].numpy()
    lookahead = net.config.lookahead_hops
    assert np.abs(run_onnx(mel, 1)[0, lookahead:] - expected).max() <= 1e-4

    mel3 = make_mel(3, 24, seed=5)  # other batch size and chunk length: dynamic axes
    with torch.no_grad():
        assert np.abs(run_onnx(mel3, 4)[:, lookahead:] - net(mel3).numpy()).max() <= 1e-4
        net(mel3)  # the source net still works (export must not strip its weight norm)
    assert net.input_conv.parametrizations.weight.original0.shape == (net.config.channels, 1)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    net = make_net(lookahead_hops=1)
    path = tmp_path / "cause.pt"
    save_cause(net, path)
    loaded = load_cause(path)
    assert loaded.config == net.config
    assert not loaded.training
    mel = make_mel(2, 40)
    with torch.no_grad():
        assert torch.equal(loaded(mel), net(mel))
    assert torch.equal(loaded.mel_std, net.mel_std)


def test_truncated_checkpoint_names_file(tmp_path: Path) -> None:
    path = tmp_path / "cause.pt"
    save_cause(make_net(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated") as error:
        load_cause(path)
    assert str(path) in str(error.value)


def test_wrong_checkpoints_say_what_is_wrong(tmp_path: Path) -> None:
    net = make_net()
    payload = {"format": "avatar-engine/cause", "version": 1, "config": net.config.to_dict()}

    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(CheckpointError, match="not a CAUSE checkpoint") as error:
        load_cause(other)
    assert str(other) in str(error.value)

    state_dict = dict(net.state_dict())
    state_dict.pop("mel_mean")
    state_dict["extra.weight"] = torch.zeros(1)
    keys = tmp_path / "keys.pt"
    torch.save({**payload, "state_dict": state_dict}, keys)
    with pytest.raises(CheckpointError, match=r"missing keys \['mel_mean'\].*unexpected keys \['extra.weight'\]"):
        load_cause(keys)

    narrow = tmp_path / "narrow.pt"
    torch.save({**payload, "config": {**net.config.to_dict(), "channels": 64}, "state_dict": net.state_dict()}, narrow)
    with pytest.raises(CheckpointError, match="shape mismatches") as error:
        load_cause(narrow)
    assert str(narrow) in str(error.value)

    version = tmp_path / "version.pt"
    torch.save({**payload, "version": 2, "state_dict": net.state_dict()}, version)
    with pytest.raises(CheckpointError, match="version 2"):
        load_cause(version)
