"""The DeRC denoiser: a classic UNet (Ronneberger et al., 2015) with batch-norm double convolutions.

Widths are ``width * 2**i`` for ``i = 0..depth`` (64-128-256-512-1024 at the defaults), max-pooling on the
way down, transposed 2x2 convolutions on the way up and a 1x1 convolution head with one output channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DoubleConv(nn.Sequential):
    """(3x3 conv without bias -> BatchNorm -> ReLU) twice."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """2x2 max-pool, then :class:`DoubleConv`."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch))


class Up(nn.Module):
    """2x2 stride-2 transposed conv (halving channels), pad to the skip's size, concat the skip, DoubleConv."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_ch // 2 + out_ch, out_ch)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        dy = skip.shape[-2] - x.shape[-2]
        dx = skip.shape[-1] - x.shape[-1]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """UNet returning per-pixel logits of "waveform ink" for an RGB page.

    ``forward`` returns LOGITS, not probabilities: the published model ends in a sigmoid, but we keep the
    sigmoid out of ``forward`` so the loss can use ``binary_cross_entropy_with_logits`` (numerically stable,
    and safe under mixed precision). :meth:`predict` applies the sigmoid and matches the published output.
    Any height and width work: inputs are padded (edge-replicated) to a multiple of ``2**depth`` and the output
    is cropped back.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 1, *, width: int = 64, depth: int = 4) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"UNet width and depth must be >= 1 (got width={width}, depth={depth})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.width = width
        self.depth = depth
        widths = [width * 2**i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h = -height % multiple
        pad_w = -width % multiple
        if pad_h or pad_w:
            x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")
        x = self.inc(x)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)[..., :height, :width]

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Sigmoid probabilities (the published model's output), computed without gradients."""
        return torch.sigmoid(self.forward(x).float())


def unet(*, width: int = 64, depth: int = 4, in_channels: int = 3) -> UNet:
    """Build the DeRC UNet (one output channel)."""
    return UNet(in_channels, 1, width=width, depth=depth)
