"""GANimation networks: reference layout, shapes, value ranges, cost."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.ganimation.net import Discriminator, Generator, GeneratorConfig, blend, generator_macs


def _inputs(batch: int, c_dim: int = 17, size: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=rng) * 2 - 1
    aus = torch.rand(batch, c_dim, generator=rng)
    return images, aus


def test_generator_keys_and_shapes_follow_the_reference() -> None:
    state = Generator().state_dict()
    assert state["main.0.weight"].shape == (64, 3 + 17, 7, 7)
    assert state["main.3.weight"].shape == (128, 64, 4, 4)
    assert state["main.6.weight"].shape == (256, 128, 4, 4)
    for block in range(9, 15):
        assert state[f"main.{block}.main.0.weight"].shape == (256, 256, 3, 3)
        assert state[f"main.{block}.main.4.bias"].shape == (256,)
    assert state["main.15.weight"].shape == (256, 128, 4, 4)  # ConvTranspose2d: (in, out, k, k)
    assert state["main.18.weight"].shape == (128, 64, 4, 4)
    assert state["main.19.weight"].shape == (64,)  # last instance norm, affine
    assert state["img_reg.0.weight"].shape == (3, 64, 7, 7)
    assert state["attetion_reg.0.weight"].shape == (1, 64, 7, 7)
    assert not [k for k in state if "running" in k or k.endswith("num_batches_tracked")]
    convs = [m for m in Generator().modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(conv.bias is None for conv in convs)


def test_generator_output_shapes_and_ranges() -> None:
    torch.manual_seed(0)
    generator = Generator(conv_dim=8, repeat_num=2).eval()
    images, aus = _inputs(batch=2)
    with torch.no_grad():
        color, mask = generator(images, aus)
    assert color.shape == (2, 3, 128, 128) and mask.shape == (2, 1, 128, 128)
    assert color.dtype == mask.dtype == torch.float32
    assert color.min() >= -1 and color.max() <= 1
    assert mask.min() >= 0 and mask.max() <= 1
    assert generator.config == GeneratorConfig(conv_dim=8, repeat_num=2, c_dim=17)


def test_generator_is_conditioned_on_the_aus_and_batch_items_are_independent() -> None:
    torch.manual_seed(0)
    generator = Generator(conv_dim=8, repeat_num=1).eval()
    images, aus = _inputs(batch=3, size=64)
    with torch.no_grad():
        color, mask = generator(images, aus)
        other_color, _ = generator(images, 1 - aus)
        single_color, single_mask = generator(images[1:2], aus[1:2])
    assert (color - other_color).abs().max() > 1e-3
    # Instance norm uses each image's own statistics: batching sessions does not mix them.
    torch.testing.assert_close(single_color, color[1:2], rtol=0, atol=1e-5)
    torch.testing.assert_close(single_mask, mask[1:2], rtol=0, atol=1e-5)


def test_blend_keeps_the_input_where_the_mask_is_one() -> None:
    images, _ = _inputs(batch=1)
    color = torch.full_like(images, -0.5)
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., :64, :] = 1
    out = blend(images, color, mask)
    torch.testing.assert_close(out[..., :64, :], images[..., :64, :])
    torch.testing.assert_close(out[..., 64:, :], color[..., 64:, :])
    half = blend(images, color, torch.full_like(mask, 0.5))
    torch.testing.assert_close(half, (images + color) / 2)


@pytest.mark.parametrize("batch", [1, 2])
def test_discriminator_shapes_keep_the_batch_dimension(batch: int) -> None:
    torch.manual_seed(0)
    discriminator = Discriminator(image_size=128, conv_dim=4, c_dim=17, repeat_num=6)
    images, _ = _inputs(batch=batch)
    critic, aus = discriminator(images)
    assert critic.shape == (batch, 1, 2, 2)
    assert aus.shape == (batch, 17)


def test_discriminator_keys_follow_the_reference() -> None:
    state = Discriminator().state_dict()
    assert state["main.0.weight"].shape == (64, 3, 4, 4)
    assert state["main.0.bias"].shape == (64,)
    assert state["main.10.weight"].shape == (2048, 1024, 4, 4)
    assert state["conv1.weight"].shape == (1, 2048, 3, 3)
    assert state["conv2.weight"].shape == (17, 2048, 2, 2)
    assert set(state) == {f"main.{2 * i}.{p}" for i in range(6) for p in ("weight", "bias")} | {
        "conv1.weight",
        "conv2.weight",
    }


def test_discriminator_refuses_an_image_size_the_strides_do_not_divide() -> None:
    with pytest.raises(ValueError, match="divisible"):
        Discriminator(image_size=100)


def _counted_macs(generator: Generator, image_size: int) -> int:
    """MACs measured from the real layers' input and output sizes during a forward pass."""
    total = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):  # every input pixel scatters a kernel
            total += inputs[0][0].numel() * module.out_channels * kernel
        else:  # every output pixel gathers a kernel
            total += output[0].numel() * module.in_channels * kernel

    for module in generator.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            module.register_forward_hook(count)
    images, aus = _inputs(batch=1, c_dim=generator.config.c_dim, size=image_size)
    with torch.no_grad():
        generator(images, aus)
    return total


def test_generator_macs_of_the_reference_width() -> None:
    macs = generator_macs(GeneratorConfig(conv_dim=64, repeat_num=6, c_dim=17))
    assert macs == _counted_macs(Generator(), 128)
    assert macs == pytest.approx(10.6e9, rel=0.005)


@pytest.mark.parametrize(("config", "image_size"), [(GeneratorConfig(16, 3, 5), 128), (GeneratorConfig(8, 0, 17), 64)])
def test_generator_macs_match_the_layers(config: GeneratorConfig, image_size: int) -> None:
    assert generator_macs(config, image_size) == _counted_macs(Generator.from_config(config), image_size)


@pytest.mark.parametrize(("image_size", "batch"), [(16, 1), (24, 3)])
def test_the_serving_graph_computes_what_the_generator_computes(image_size: int, batch: int) -> None:
    """AU share of the first convolution from tables and the heads as one convolution: same colour and mask."""
    from models.ganimation.export import ServingGraph

    torch.manual_seed(0)
    generator = Generator(conv_dim=8, repeat_num=1).eval()
    with torch.no_grad():
        images = torch.rand(batch, 3, image_size, image_size) * 2 - 1
        aus = torch.rand(batch, generator.config.c_dim)
        color, mask = generator(images, aus)
        served_color, served_mask = ServingGraph(generator, image_size).eval()(images, aus)
    assert torch.allclose(served_color, color, atol=1e-5)
    assert torch.allclose(served_mask, mask, atol=1e-5)
    assert mask.std() > 0.05 and color.std() > 0.05  # not saturated: the comparison means something
