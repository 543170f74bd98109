"""Checkpoint loaders: every supported format gives the numbers its own architecture gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine.avatar.identity import PortraitIdentity
from engine.backends.generator_card import GeneratorCard, read_card
from engine.backends.model_files import ModelSource, onnx_file
from models.errors import CheckpointError
from models.export import export_networks
from models.ganimation.export import export_generator_onnx, write_onnx_card
from models.ganimation.io import (
    NATIVE_FORMAT,
    REFERENCE_FORMAT,
    REPLICATE_FORMAT,
    load_generator,
    read_generator_card,
    save_generator,
)
from models.ganimation.net import Generator, GeneratorConfig


def _inputs(batch: int, c_dim: int = 17, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, 128, 128, generator=rng) * 2 - 1, torch.rand(batch, c_dim, generator=rng)


def _randomize(module: nn.Module, seed: int) -> None:
    """Random vectors (conv biases, norm scales and shifts) on top of PyTorch's random conv kernels.

    The init would leave norms at exactly 1 and 0; biases of order 0.5 make a
    dropped bias impossible to miss.
    """
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn(parameter.shape, generator=rng) * 0.5)


# --- donydchen/ganimation_replicate, re-implemented from model/model_utils.py ---------------------
# SplitGenerator built by define_splitG with its defaults: norm 'instance' means
# InstanceNorm2d(affine=False, track_running_stats=False) and biased convolutions
# (use_bias = norm is InstanceNorm2d); ResnetBlock padding_type 'zero'; an
# optional Dropout(0.5) after the first ReLU of each block; heads without bias.


class _ReplicaResnetBlock(nn.Module):
    def __init__(self, dim: int, use_dropout: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=True),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=True), nn.InstanceNorm2d(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class _ReplicaSplitGenerator(nn.Module):
    def __init__(self, img_nc: int = 3, aus_nc: int = 17, ngf: int = 8, n_blocks: int = 2, use_dropout: bool = False):
        super().__init__()
        model: list[nn.Module] = [
            nn.Conv2d(img_nc + aus_nc, ngf, kernel_size=7, stride=1, padding=3, bias=True),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=4, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(ngf * mult * 2),
                nn.ReLU(True),
            ]
        model += [_ReplicaResnetBlock(ngf * 4, use_dropout) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=4, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
        self.model = nn.Sequential(*model)
        self.color_top = nn.Sequential(
            nn.Conv2d(ngf, img_nc, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()
        )
        self.au_top = nn.Sequential(nn.Conv2d(ngf, 1, kernel_size=7, stride=1, padding=3, bias=False), nn.Sigmoid())

    def forward(self, img: torch.Tensor, au: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sparse_au = au.unsqueeze(2).unsqueeze(3).expand(au.size(0), au.size(1), img.size(2), img.size(3))
        embed = self.model(torch.cat([img, sparse_au], dim=1))
        return self.color_top(embed), self.au_top(embed), embed


def _replica(tmp_path: Path, *, use_dropout: bool = False) -> tuple[_ReplicaSplitGenerator, Path]:
    torch.manual_seed(0)
    replica = _ReplicaSplitGenerator(ngf=8, n_blocks=2, use_dropout=use_dropout)
    _randomize(replica, seed=1)
    path = tmp_path / "30_net_gen.pth"
    torch.save(replica.state_dict(), path)
    return replica.eval(), path


@pytest.mark.parametrize("variant", ["default", "dropout", "stale running stats"])
def test_replicate_checkpoint_gives_the_replicate_outputs(tmp_path: Path, variant: str) -> None:
    replica, path = _replica(tmp_path, use_dropout=variant == "dropout")
    assert any(k.endswith(".bias") and k.startswith("model.0") for k in replica.state_dict())
    if variant == "stale running stats":  # its older get_norm_layer tracked them; its loader ignores them
        state = torch.load(path, weights_only=True)
        state["model.1.running_mean"] = torch.randn(8)
        state["model.9.conv_block.1.running_var"] = torch.rand(32)
        torch.save(state, path)

    generator, config, fmt = load_generator(path)

    assert fmt == REPLICATE_FORMAT
    assert config == GeneratorConfig(conv_dim=8, repeat_num=2, c_dim=17)
    images, aus = _inputs(batch=2)
    with torch.no_grad():
        want_color, want_mask, _ = replica(images, aus)
        color, mask = generator(images, aus)
    assert (color - want_color).abs().max() <= 1e-5
    assert (mask - want_mask).abs().max() <= 1e-5
    # In float64 the two agree to rounding: the conversion is exact, not approximate.
    with torch.no_grad():
        want_color, want_mask, _ = replica.double()(images.double(), aus.double())
        color, mask = generator.double()(images.double(), aus.double())
    assert (color - want_color).abs().max() <= 1e-10
    assert (mask - want_mask).abs().max() <= 1e-10


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        ({"model.9.conv_block.1.weight": torch.ones(32)}, "--norm batch"),
        ({"color_top.0.bias": torch.zeros(3)}, "img_reg.0.bias"),
    ],
)
def test_replicate_checkpoint_that_cannot_convert_exactly_is_refused(
    tmp_path: Path, edit: dict[str, torch.Tensor], complaint: str
) -> None:
    _, path = _replica(tmp_path)
    state = torch.load(path, weights_only=True)
    torch.save({**state, **edit}, path)
    with pytest.raises(CheckpointError, match="30_net_gen.pth") as caught:
        load_generator(path)
    assert complaint in str(caught.value)


def test_replicate_checkpoint_with_padding_layers_is_refused(tmp_path: Path) -> None:
    _, path = _replica(tmp_path)
    state = torch.load(path, weights_only=True)
    # Reflection padding shifts the block to [pad, conv, norm, ReLU, pad, conv, norm].
    shifted = {
        k.replace("conv_block.3.", "conv_block.5.").replace("conv_block.0.", "conv_block.1."): v
        for k, v in state.items()
    }
    torch.save(shifted, path)
    with pytest.raises(CheckpointError, match=r"30_net_gen\.pth.*indices \[1, 5\].*padding"):
        load_generator(path)


# --- albertpumarola/GANimation ----------------------------------------------------------------------


def _reference_file(tmp_path: Path, *, c_dim: int = 17, name: str = "net_epoch_5_id_G.pth") -> tuple[Generator, Path]:
    """A reference-format file as saved from DataParallel by an old PyTorch (running stats included)."""
    torch.manual_seed(0)
    generator = Generator(conv_dim=8, repeat_num=2, c_dim=c_dim).eval()
    _randomize(generator, seed=2)
    state = {f"module.{k}": v for k, v in generator.state_dict().items()}
    for key in list(state):
        if key.endswith(".weight") and state[key].dim() == 1:  # an instance norm
            norm = key.removesuffix(".weight")
            state[f"{norm}.running_mean"] = torch.zeros_like(state[key])
            state[f"{norm}.running_var"] = torch.ones_like(state[key])
            state[f"{norm}.num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / name
    torch.save(state, path)
    return generator, path


def test_reference_checkpoint_with_data_parallel_prefix_and_running_stats(tmp_path: Path) -> None:
    original, path = _reference_file(tmp_path)
    generator, config, fmt = load_generator(path)
    assert fmt == REFERENCE_FORMAT
    assert config == GeneratorConfig(conv_dim=8, repeat_num=2, c_dim=17)
    images, aus = _inputs(batch=2)
    with torch.no_grad():
        want_color, want_mask = original(images, aus)
        color, mask = generator(images, aus)
    assert (color - want_color).abs().max() <= 1e-5
    assert (mask - want_mask).abs().max() <= 1e-5


def test_reference_checkpoint_in_the_legacy_serialization(tmp_path: Path) -> None:
    original, _ = _reference_file(tmp_path)
    path = tmp_path / "net_epoch_1_id_G.pth"  # PyTorch < 1.6 wrote this non-zip format
    torch.save(original.state_dict(), path, _use_new_zipfile_serialization=False)
    generator, _, fmt = load_generator(path)
    assert fmt == REFERENCE_FORMAT
    torch.testing.assert_close(generator.state_dict(), original.state_dict(), rtol=0, atol=0)


def test_au_count_mismatch_says_what_was_found(tmp_path: Path) -> None:
    _, path = _reference_file(tmp_path, c_dim=5)
    with pytest.raises(CheckpointError, match=r"net_epoch_5_id_G\.pth.* 5 values.*17 AUs.*CelebA.*c_dim=5"):
        load_generator(path)
    _, config, _ = load_generator(path, c_dim=5)
    assert config.c_dim == 5


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    _, path = _reference_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"net_epoch_5_id_G\.pth.*truncated"):
        load_generator(path)


def test_state_dict_with_keys_cut_off_lists_them(tmp_path: Path) -> None:
    _, path = _reference_file(tmp_path)
    state = torch.load(path, weights_only=True)
    del state["module.main.10.main.3.weight"], state["module.attetion_reg.0.weight"]
    state["module.extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "net_epoch_5_id_G.pth" in message
    assert "missing keys [attetion_reg.0.weight, main.10.main.3.weight]" in message
    assert "unexpected keys [extra.weight]" in message


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    _, path = _reference_file(tmp_path)
    state = torch.load(path, weights_only=True)
    state["module.main.3.weight"] = torch.zeros(16, 8, 3, 3)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "net_epoch_5_id_G.pth" in message
    assert "main.3.weight: expected (16, 8, 4, 4), got (16, 8, 3, 3)" in message


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"main.0.weight": torch.zeros(8, 3, 4, 4), "conv1.weight": torch.zeros(1, 8, 3, 3)}, "discriminator"),
        ({"encoder.weight": torch.zeros(2)}, "not a GANimation generator"),
        ([torch.zeros(2)], "expected a state dict"),
        ({"format": NATIVE_FORMAT, "version": 2}, "version 2"),
    ],
)
def test_files_that_are_not_generator_checkpoints(tmp_path: Path, payload: object, complaint: str) -> None:
    path = tmp_path / "other.pth"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="other.pth") as caught:
        load_generator(path)
    assert complaint in str(caught.value)


class _NotData:
    pass


def test_pickled_objects_are_refused_not_run(tmp_path: Path) -> None:
    path = tmp_path / "code.pth"
    torch.save({"main.0.weight": _NotData()}, path)
    with pytest.raises(CheckpointError, match="code.pth"):
        load_generator(path)


def test_missing_file_stays_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "absent.pth")


# --- our own format ----------------------------------------------------------------------------------


def test_native_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = GeneratorConfig(conv_dim=8, repeat_num=3, c_dim=17)
    original = Generator.from_config(config)
    _randomize(original, seed=3)
    path = tmp_path / "generator.pt"
    save_generator(original, config, path)
    assert [p.name for p in tmp_path.iterdir()] == ["generator.pt"]

    generator, loaded_config, fmt = load_generator(path)

    assert (loaded_config, fmt) == (config, NATIVE_FORMAT)
    torch.testing.assert_close(generator.state_dict(), original.state_dict(), rtol=0, atol=0)
    assert not generator.training


def test_native_save_refuses_a_config_that_does_not_describe_the_generator(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not describe"):
        save_generator(Generator(conv_dim=8, repeat_num=1), GeneratorConfig(8, 2, 17), tmp_path / "g.pt")


def test_native_file_whose_tensors_contradict_its_config(tmp_path: Path) -> None:
    path = tmp_path / "generator.pt"
    save_generator(Generator(conv_dim=8, repeat_num=1), GeneratorConfig(8, 1, 17), path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["conv_dim"] = 16
    torch.save(payload, path)
    with pytest.raises(
        CheckpointError, match=r"generator\.pt.*main\.0\.weight: expected \(16, 20, 7, 7\), got \(8, 20, 7, 7\)"
    ):
        load_generator(path)


# --- ONNX ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings(  # torch 2.13 exporter internals, harmless
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning",
    "ignore:# The axis name. batch will not be used:UserWarning",
)
def test_onnx_export_matches_torch_at_batch_1_and_3(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript", reason="the torch.export-based ONNX exporter needs the train extra")
    torch.manual_seed(0)
    generator = Generator(conv_dim=8, repeat_num=2).eval()
    _randomize(generator, seed=4)
    path = tmp_path / "generator.onnx"
    export_generator_onnx(generator, path)
    assert [p.name for p in tmp_path.iterdir()] == ["generator.onnx"]  # weights embedded
    # The exporter keeps opset 18 without a word when down-conversion fails.
    assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""] == 17

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images", "aus"]
    assert [o.name for o in session.get_outputs()] == ["color", "mask"]
    for batch in (1, 3):
        images, aus = _inputs(batch=batch, seed=batch)
        color, mask = session.run(None, {"images": images.numpy(), "aus": aus.numpy()})
        with torch.no_grad():
            want_color, want_mask = generator(images, aus)
        assert color.shape == (batch, 3, 128, 128) and mask.shape == (batch, 1, 128, 128)
        assert abs(color - want_color.numpy()).max() <= 1e-4
        assert abs(mask - want_mask.numpy()).max() <= 1e-4


def _card_json(card: GeneratorCard | None) -> str | None:
    return None if card is None else card.to_json()


def test_cards_travel_in_the_checkpoint_and_the_onnx_export(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript", reason="the torch.export-based ONNX exporter needs the train extra")
    identity = PortraitIdentity("ab" * 32, np.linspace(-0.2, 0.2, 128, dtype=np.float32))
    card = GeneratorCard.enrolled(identity)
    generator = Generator(conv_dim=8, repeat_num=1).eval()
    save_generator(generator, generator.config, tmp_path / "g.pth", card=card)
    export_generator_onnx(generator, tmp_path / "g.onnx", card=card)
    for path in (tmp_path / "g.pth", tmp_path / "g.onnx"):
        read = read_card(ModelSource("generator", path))
        assert read is not None and read.subject == "one-portrait" and read.portrait is not None
        assert read.portrait.crop_sha256 == identity.crop_sha256
        np.testing.assert_allclose(read.portrait.descriptor, identity.descriptor, atol=1e-6)
    load_generator(tmp_path / "g.pth")  # the card does not disturb loading
    write_onnx_card(tmp_path / "g.onnx", GeneratorCard("any-face"))  # replaced, not added
    assert read_card(ModelSource("generator", tmp_path / "g.onnx")) == GeneratorCard("any-face")
    save_generator(generator, generator.config, tmp_path / "bare.pth")
    assert read_generator_card(tmp_path / "bare.pth") is None
    # The engine's export of the checkpoint (cached for the runtimes, and what `avatar export` writes) keeps it:
    # a deployed generator.onnx still tells --renderer auto whose face it animates.
    exported = onnx_file(ModelSource("generator", tmp_path / "g.pth"))
    assert exported.suffix == ".onnx" and _card_json(read_card(ModelSource("generator", exported))) == card.to_json()
    checkpoint = ModelSource("generator", tmp_path / "g.pth")
    manifest = export_networks(checkpoint, ModelSource("cause", None), tmp_path / "out")
    deployed = tmp_path / "out" / manifest["networks"]["generator"]["file"]
    assert _card_json(read_card(ModelSource("generator", deployed))) == card.to_json()


def test_upstream_checkpoints_are_person_agnostic(tmp_path: Path) -> None:
    _, path = _reference_file(tmp_path)
    assert read_generator_card(path) == GeneratorCard("any-face")
