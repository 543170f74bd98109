"""GANimation's loss terms, shared by the paired enrolment trainer and the unpaired trainer.

Definitions and weights follow albertpumarola/GANimation
(``models/ganimation.py``, ``options/train_options.py``), including two of its
quirks that change what a weight means, kept so that the reference weights
carry over: the mask smoothness term is a *sum* over the batch and all pixels
(not a mean), and the AU regression term is a mean squared error divided by
the batch size once more.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.ganimation.net import Discriminator


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms; the defaults are the reference's.

    image: L1 between images in [-1, 1]. The reference's ``lambda_cyc`` (the
        cycle reconstruction); in paired enrolment the L1 to the synthesized
        target plays that role, so it keeps that weight and the mask terms
        keep their balance against it.
    mask: mean attention mask (``lambda_mask``). Without it the mask drifts
        to 1, where the output is the input and nothing is learnt.
    mask_smooth: total variation of the mask (``lambda_mask_smooth``).
    critic: WGAN real/fake score (``lambda_D_prob``).
    au: AU regression of the critic's second head (``lambda_D_cond``).
    gradient_penalty: WGAN-GP penalty (``lambda_D_gp``).
    """

    image: float = 10.0
    mask: float = 0.1
    mask_smooth: float = 1e-5
    critic: float = 1.0
    au: float = 4000.0
    gradient_penalty: float = 10.0


def mask_total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Sum of absolute differences between horizontally and vertically adjacent mask values.

    mask: (B, 1, H, W) in [0, 1]. A sum, as in the reference, so the term
    grows with the batch size and the image area (its weight 1e-5 was set for
    batches of 4 or so at 128x128).
    """
    return (mask[..., :, 1:] - mask[..., :, :-1]).abs().sum() + (mask[..., 1:, :] - mask[..., :-1, :]).abs().sum()


def attention_loss(mask: torch.Tensor, weights: LossWeights) -> torch.Tensor:
    """The mask regularizers: weighted mean (keeps the mask from saturating at 1) plus weighted smoothness."""
    return weights.mask * mask.mean() + weights.mask_smooth * mask_total_variation(mask)


def au_regression_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reference's AU term: mean squared error of (B, c_dim) AU / 5 values, divided by B once more."""
    return F.mse_loss(predicted, target) / predicted.shape[0]


def gradient_penalty(critic: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): mean of (||d critic / d x|| - 1)^2 on random real-fake mixes.

    real, fake: (B, 3, H, W); one mixing weight per image. The gradient norm
    is taken over each whole image, the critic's patch scores summed.
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores, _ = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(start_dim=1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(
    critic: Discriminator,
    real: torch.Tensor,
    real_aus: torch.Tensor,
    fake: torch.Tensor,
    weights: LossWeights,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The critic's objective: WGAN scores, AU regression on real images, gradient penalty.

    real: (B, 3, H, W) in [-1, 1] with real_aus (B, c_dim) AU / 5; fake:
    generated images (detached here). The reference takes a separate Adam
    step for the gradient penalty; here it is one loss and one step, as in
    the WGAN-GP paper. Returns the loss and its parts for logging.
    """
    real_scores, real_au_estimates = critic(real)
    fake_scores, _ = critic(fake.detach())
    wasserstein = fake_scores.mean() - real_scores.mean()
    au = au_regression_loss(real_au_estimates, real_aus)
    penalty = gradient_penalty(critic, real, fake)
    loss = weights.critic * wasserstein + weights.au * au + weights.gradient_penalty * penalty
    return loss, {"d_wasserstein": wasserstein.item(), "d_au": au.item(), "d_gp": penalty.item()}


def generator_adversarial_loss(
    critic: Discriminator, fake: torch.Tensor, desired_aus: torch.Tensor, weights: LossWeights
) -> tuple[torch.Tensor, dict[str, float]]:
    """What the generator gets from the critic: look real, and show ``desired_aus`` (B, c_dim) AU / 5."""
    scores, au_estimates = critic(fake)
    realism = -scores.mean()
    au = au_regression_loss(au_estimates, desired_aus)
    return weights.critic * realism + weights.au * au, {"g_critic": realism.item(), "g_au": au.item()}
