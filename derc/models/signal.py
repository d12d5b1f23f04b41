"""The signal classifier: a 1D CNN on a digitized 12-lead signal and the mask of what the page showed.

Its input is ``(N, 2 * leads, samples)``: each lead's values in mV (0 where not shown), then each lead's
shown mask (1 where the page showed it), built by :func:`derc.signals.classifier_input`. A 3x4 page shows
every lead for 2.5 s and lead II for 10 s; the mask tells the network which zeros are signal and which are
gaps.
"""

from __future__ import annotations

import torch
from torch import nn

from derc.labels import LABELS, LEADS


class ConvBlock1d(nn.Sequential):
    """(Conv1d -> BatchNorm1d -> ReLU) x 2, then max-pooling by 2."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 7) -> None:
        layers: list[nn.Module] = []
        for source in (in_channels, out_channels):
            layers += [
                nn.Conv1d(source, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(out_channels),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.MaxPool1d(2))
        super().__init__(*layers)


class SignalClassifier(nn.Module):
    """Conv blocks at each width, global average pooling over time, one linear layer to the label logits."""

    def __init__(
        self,
        *,
        leads: int = len(LEADS),
        num_classes: int = len(LABELS),
        widths: tuple[int, ...] = (32, 64, 128, 128, 128),
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        if not widths:
            raise ValueError("widths must name at least one block")
        self.in_channels = 2 * leads
        blocks, channels = [], self.in_channels
        for width in widths:
            blocks.append(ConvBlock1d(channels, width, kernel_size))
            channels = width
        self.features = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, samples) input, got {tuple(x.shape)}")
        return self.fc(self.features(x).mean(dim=2))


def signal_classifier(
    *, num_classes: int = len(LABELS), widths: tuple[int, ...] = (32, 64, 128, 128, 128)
) -> SignalClassifier:
    """The signal classifier for the 12 standard leads."""
    return SignalClassifier(leads=len(LEADS), num_classes=num_classes, widths=widths)
