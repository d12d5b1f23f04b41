"""The DeRC denoiser loss: Dice + beta * Focal, computed from logits in float32.

The paper gives the formula (Focal = alpha * (1 - exp(-BCE))**gamma * BCE, plus a smoothed Dice term) but
not the constants. Our defaults: ``alpha=0.25, gamma=2`` are the focal-loss authors' recommended values
(Lin et al., 2017, RetinaNet); ``eta=1`` is the usual additive (Laplace) smoothing of Dice; ``beta=10``
is our choice (not published) so the focal term is not negligible: at initialisation (p = 0.5 everywhere)
the mean focal term is 0.25 * 0.5**2 * ln 2 = 0.043 against a Dice term near 1 on sparse waveform masks.
They match :class:`derc.config.LossConfig`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _float32(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    return logits.float(), target.to(dtype=torch.float32)


def focal_loss(logits: Tensor, target: Tensor, *, alpha: float, gamma: float) -> Tensor:
    """Mean over all pixels of ``alpha * (1 - exp(-BCE))**gamma * BCE`` with BCE from logits."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits, target = _float32(logits, target)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (alpha * (1.0 - torch.exp(-bce)) ** gamma * bce).mean()


def dice_loss(logits: Tensor, target: Tensor, *, eta: float) -> Tensor:
    """``1 - (2*sum(p*t) + eta) / (sum(p) + sum(t) + eta)`` per image (first dim), averaged over the batch."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits, target = _float32(logits, target)
        probs = torch.sigmoid(logits).flatten(1)
        target = target.flatten(1)
        overlap = (probs * target).sum(dim=1)
        total = probs.sum(dim=1) + target.sum(dim=1)
        return (1.0 - (2.0 * overlap + eta) / (total + eta)).mean()


class DiceFocalLoss(nn.Module):
    """``dice_loss + beta * focal_loss`` (defaults: see the module docstring)."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, beta: float = 10.0, eta: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma
        self.beta = beta
        self.eta = eta

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        dice = dice_loss(logits, target, eta=self.eta)
        focal = focal_loss(logits, target, alpha=self.alpha, gamma=self.gamma)
        return dice + self.beta * focal

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, beta={self.beta}, eta={self.eta}"
