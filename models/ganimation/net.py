"""GANimation networks (Pumarola et al., ECCV 2018).

The generator takes a face crop and a target action-unit (AU) vector and
returns a colour map C and an attention mask A; the animated face is
``A * input + (1 - A) * C`` (see :func:`blend`). The discriminator is a WGAN-GP
critic with an AU regression head.

Module and parameter names follow albertpumarola/GANimation
(``networks/generator_wasserstein_gan.py``, ``discriminator_wasserstein_gan.py``),
including its misspelt ``attetion_reg``, so that a reference state dict loads by
key without renaming; :mod:`models.ganimation.io` converts the other formats.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.au import N_AUS

IMAGE_CHANNELS = 3
"""RGB input and colour output."""

N_SAMPLINGS = 2
"""Stride-2 down-sampling convolutions (and as many up-sampling ones) in the generator."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a :class:`Generator`; everything needed to rebuild it before loading weights.

    conv_dim: channels after the first convolution; the bottleneck has 4x as
        many. 64 in both upstream codebases (~10.6 GMAC per 128x128 image);
        32 or less is what runs in real time on a 2-core CPU.
    repeat_num: residual blocks in the bottleneck (6 upstream).
    c_dim: length of the AU vector (17 OpenFace intensities; 5 for CelebA
        attribute checkpoints).
    """

    conv_dim: int = 64
    repeat_num: int = 6
    c_dim: int = N_AUS


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    # Affine as in the reference; no running statistics, so train and eval
    # normalise alike with each image's own statistics.
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """Two 3x3 same-size convolutions with instance norm, added to the input.

    ``main`` indices: 0 conv, 1 norm, 2 ReLU, 3 conv, 4 norm (the reference
    layout; zero padding).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False),
            _instance_norm(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False),
            _instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        return x + self.main(x)


class Generator(nn.Module):
    """GANimation generator: encoder, residual bottleneck, decoder, two heads.

    ``main`` indices (n = repeat_num): 0-2 7x7 conv / norm / ReLU; 3-5 and 6-8
    stride-2 4x4 down convs / norm / ReLU; 9..8+n residual blocks; then two
    stride-2 4x4 transposed convs / norm / ReLU. Convolutions carry no bias:
    each is followed by an instance norm that would cancel it.
    ``img_reg``: 7x7 conv to 3 channels, tanh. ``attetion_reg`` (sic, the
    reference name): 7x7 conv to 1 channel, sigmoid.
    """

    def __init__(self, conv_dim: int = 64, c_dim: int = N_AUS, repeat_num: int = 6) -> None:
        super().__init__()
        self.config = GeneratorConfig(conv_dim=conv_dim, repeat_num=repeat_num, c_dim=c_dim)

        layers: list[nn.Module] = [
            nn.Conv2d(IMAGE_CHANNELS + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
            _instance_norm(conv_dim),
            nn.ReLU(),
        ]
        dim = conv_dim
        for _ in range(N_SAMPLINGS):
            layers += [
                nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1, bias=False),
                _instance_norm(dim * 2),
                nn.ReLU(),
            ]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(repeat_num)]
        for _ in range(N_SAMPLINGS):
            layers += [
                nn.ConvTranspose2d(dim, dim // 2, kernel_size=4, stride=2, padding=1, bias=False),
                _instance_norm(dim // 2),
                nn.ReLU(),
            ]
            dim //= 2
        self.main = nn.Sequential(*layers)
        self.img_reg = nn.Sequential(
            nn.Conv2d(dim, IMAGE_CHANNELS, kernel_size=7, stride=1, padding=3, bias=False),
            nn.Tanh(),
        )
        self.attetion_reg = nn.Sequential(
            nn.Conv2d(dim, 1, kernel_size=7, stride=1, padding=3, bias=False),
            nn.Sigmoid(),
        )

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> Generator:
        """A freshly initialised generator of the given shape."""
        return cls(conv_dim=config.conv_dim, c_dim=config.c_dim, repeat_num=config.repeat_num)

    def forward(self, images: torch.Tensor, aus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Colour map and attention mask for animating ``images`` towards ``aus``.

        images: (B, 3, H, W) float, RGB in [-1, 1]; H and W divisible by 4
            (128x128 upstream).
        aus: (B, c_dim) float, target AU intensities / 5, in [0, 1].
        Returns color (B, 3, H, W) in [-1, 1] and mask (B, 1, H, W) in [0, 1];
        combine them with :func:`blend`.
        """
        # The AU vector is tiled over the image: each AU becomes a constant plane.
        planes = aus[:, :, None, None].expand(-1, -1, images.shape[2], images.shape[3])
        features = self.main(torch.cat([images, planes], dim=1))
        return self.img_reg(features), self.attetion_reg(features)


def blend(images: torch.Tensor, color: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The animated face: ``mask * images + (1 - mask) * color``.

    Where the mask is 1 the input pixel is kept; where it is 0 the colour map
    replaces it (both upstream codebases multiply the *input* by the mask).
    images, color: (B, 3, H, W) in [-1, 1]; mask: (B, 1, H, W) in [0, 1].
    Returns (B, 3, H, W) in [-1, 1].
    """
    return mask * images + (1 - mask) * color


class Discriminator(nn.Module):
    """GANimation critic: a PatchGAN WGAN-GP score map plus an AU regressor.

    ``main`` indices: 2i conv (4x4, stride 2, with bias), 2i+1 LeakyReLU(0.01),
    for i in 0..repeat_num-1, doubling the channels after the first. ``conv1``:
    3x3 conv to one critic channel; ``conv2``: a kxk conv (k = image_size /
    2**repeat_num) covering the whole final map, to c_dim AU values.
    """

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = N_AUS, repeat_num: int = 6) -> None:
        super().__init__()
        if image_size % 2**repeat_num:
            raise ValueError(f"image_size {image_size} is not divisible by 2**repeat_num = {2**repeat_num}")
        layers: list[nn.Module] = [
            nn.Conv2d(IMAGE_CHANNELS, conv_dim, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.01),
        ]
        dim = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(dim, c_dim, kernel_size=image_size // 2**repeat_num, bias=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Critic scores and AU estimates.

        images: (B, 3, image_size, image_size) in [-1, 1].
        Returns critic (B, 1, k, k), unbounded WGAN scores per patch, with
        k = image_size / 2**repeat_num; and aus (B, c_dim), regressed AU
        intensities / 5. Unlike the reference's ``squeeze()``, the batch
        dimension survives B = 1.
        """
        features = self.main(images)
        return self.conv1(features), self.conv2(features).flatten(start_dim=1)


def generator_macs(config: GeneratorConfig, image_size: int = 128) -> int:
    """Multiply-accumulates of one :class:`Generator` forward pass on one image.

    Counts convolutions only (norms and activations are a rounding error); a
    conv costs out_channels * in_channels * kernel_area per output pixel, a
    transposed conv the same per input pixel. The reference width 64 at
    128x128 is about 10.6 GMAC, which is why real time on a 2-core CPU needs
    a narrower network.
    """
    if image_size % 2**N_SAMPLINGS:
        raise ValueError(f"image_size {image_size} is not divisible by {2**N_SAMPLINGS}")
    d, pixels = config.conv_dim, image_size * image_size
    macs = (IMAGE_CHANNELS + config.c_dim) * d * 7 * 7 * pixels  # first 7x7 conv
    for _ in range(N_SAMPLINGS):  # stride-2 4x4 down convs
        pixels //= 4
        macs += d * (2 * d) * 4 * 4 * pixels
        d *= 2
    macs += config.repeat_num * 2 * d * d * 3 * 3 * pixels  # residual bottleneck
    for _ in range(N_SAMPLINGS):  # stride-2 4x4 transposed convs, per input pixel
        macs += d * (d // 2) * 4 * 4 * pixels
        pixels *= 4
        d //= 2
    macs += d * (IMAGE_CHANNELS + 1) * 7 * 7 * pixels  # colour and attention heads
    return macs
