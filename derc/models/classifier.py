"""Classifier backbones from torchvision, adapted to 1-channel (denoised) images and 11 labels.

Weights are never downloaded: pass ``weights_path`` to a local torchvision ImageNet ``state_dict`` file, or
get a randomly initialised network (logged). With weights, the first convolution's RGB kernel is averaged
over its three input channels (so a grey image sees the mean colour filter) and the 1000-class head is
replaced by a fresh ``num_classes`` linear layer. Models return logits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from derc.checkpoints import apply_state_dict, load_torch_file

logger = logging.getLogger("derc")

# ViT-B/16's ImageNet position embeddings cover a 14x14 grid of 16-pixel patches.
VIT_IMAGE_SIZE = 224

# name -> (constructor, dotted path of the first conv, dotted path of the classification head)
_ARCHS: dict[str, tuple[Callable[..., nn.Module], str, str]] = {
    "resnet18": (torchvision.models.resnet18, "conv1", "fc"),
    "resnet50": (torchvision.models.resnet50, "conv1", "fc"),
    "resnet152": (torchvision.models.resnet152, "conv1", "fc"),
    "vgg11": (torchvision.models.vgg11, "features.0", "classifier.6"),
    "vit_b_16": (torchvision.models.vit_b_16, "conv_proj", "heads.head"),
}
CLASSIFIERS: tuple[str, ...] = tuple(_ARCHS)


class ResizeTo(nn.Module):
    """Resize inputs (bilinear, antialiased) to a fixed size before ``model``; used for the ViT.

    Non-square pages are squashed to the square grid the ViT's position embeddings were trained on; this
    keeps every lead on the page (cropping would drop some) at the price of a changed aspect ratio.
    """

    def __init__(self, model: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return self.model(x)


def _get(model: nn.Module, dotted: str) -> nn.Module:
    return model.get_submodule(dotted)


def _set(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent, _, child = dotted.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_channels``: each new input channel gets the mean of the old kernels."""
    if conv.in_channels == in_channels:
        return conv
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        mean_kernel = conv.weight.mean(dim=1, keepdim=True)
        new.weight.copy_(mean_kernel.expand(-1, in_channels, -1, -1))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _new_head(head: nn.Linear, num_classes: int) -> nn.Linear:
    return nn.Linear(head.in_features, num_classes, bias=head.bias is not None)


def build_classifier(
    name: str = "resnet18",
    *,
    num_classes: int = 11,
    in_channels: int = 1,
    weights_path: str | None = None,
    image_size: tuple[int, int] | None = None,
) -> nn.Module:
    """Build a torchvision backbone returning ``num_classes`` logits for ``in_channels``-channel images.

    ``image_size`` (height, width of the images it will be given) is required for ``vit_b_16``: the ViT is
    built for 224x224 (ImageNet position embeddings) and wrapped in :class:`ResizeTo`, which resizes every
    input to 224x224. The CNNs accept any size (adaptive pooling) and ignore it.
    """
    if name not in _ARCHS:
        raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")
    if name == "vit_b_16" and image_size is None:
        raise ValueError("vit_b_16 needs image_size=(height, width) of its inputs")
    constructor, conv_path, head_path = _ARCHS[name]
    model = constructor(weights=None)  # never download; the 1000-class head matches torchvision files
    if weights_path is not None:
        what = f"{name} weights"
        state = load_torch_file(weights_path, what=what)
        apply_state_dict(model, state, path=weights_path, what=what)
        logger.info("classifier %s: ImageNet weights loaded from %s", name, weights_path)
    else:
        logger.info("classifier %s: no weights file given, weights are random", name)
    _set(model, conv_path, adapt_first_conv(_get(model, conv_path), in_channels))
    _set(model, head_path, _new_head(_get(model, head_path), num_classes))
    if name == "vit_b_16":
        assert image_size is not None
        if tuple(image_size) != (VIT_IMAGE_SIZE, VIT_IMAGE_SIZE):
            side = VIT_IMAGE_SIZE
            logger.info("classifier vit_b_16: %s inputs are resized to %d x %d", image_size, side, side)
        model = ResizeTo(model, (VIT_IMAGE_SIZE, VIT_IMAGE_SIZE))
    return model
