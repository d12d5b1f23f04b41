"""Models assembled from a Config: the UNet, the classifier and what feeds the classifier its input."""

from __future__ import annotations

import torch
from torch import nn

from derc.config import Config
from derc.labels import LABELS
from derc.models.classifier import build_classifier
from derc.models.unet import UNet


def build_unet(config: Config) -> UNet:
    return UNet(in_channels=3, out_channels=1, width=config.unet_width, depth=config.unet_depth)


def build_classifier_for(config: Config, *, weights_path: str | None = None) -> nn.Module:
    return build_classifier(
        config.classifier,
        num_classes=len(LABELS),
        in_channels=1,
        weights_path=weights_path,
        image_size=(config.image_height, config.image_width),
    )


class Denoiser(nn.Module):
    """A frozen UNet used as the classifier's input transform: noisy RGB -> ink probability map."""

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self.unet = unet.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.unet.predict(images)


class InkFromGrey(nn.Module):
    """The ``denoiser="none"`` ablation: the image's darkness (1 - grey level) as its ink map."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return 1.0 - images.float().mean(dim=1, keepdim=True)


def build_denoiser(config: Config, unet: UNet) -> nn.Module:
    """What turns a noisy RGB batch into the classifier's 1-channel input, per ``config.denoiser``."""
    return Denoiser(unet) if config.denoiser == "unet" else InkFromGrey()
