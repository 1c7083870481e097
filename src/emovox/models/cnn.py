"""``cnn``: a compact 2-D CNN on log-mel with masked global pooling; takes any length.

A stride-2 stem, then convolution blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool), a mean over
frequency and a masked mean+max over time, dropout, and a linear classifier. Sized to train the
six EmoBox folds of RAVDESS in minutes on two CPU cores.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
from torch import nn

from emovox.models.base import SERModel, downsample_mask, masked_mean_max


def conv_block(c_in: int, c_out: int, stride: int = 1, pool: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    return nn.Sequential(*layers)


class CNN(SERModel):
    name = "cnn"
    default_feature: ClassVar[dict] = {
        "name": "logmel",
        "n_mels": 64,
        "normalize": "utterance",
        "trim_db": 40.0,
    }
    default_training: ClassVar[dict] = {
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 1e-2,
        "schedule": "onecycle",
        "batch_size": 32,
        "epochs": 40,
        "patience": 40,
        "crop_seconds": 2.0,
        "specaugment": True,
        "mixup": 0.2,
        "label_smoothing": 0.05,
    }

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        channels: tuple[int, ...] = (16, 32, 64, 128),
        dropout: float = 0.3,
    ) -> None:
        channels = tuple(channels)
        super().__init__(n_classes, in_shape, channels=list(channels), dropout=dropout)
        streams = in_shape[0]
        blocks = [conv_block(streams, channels[0], stride=2, pool=False)]
        blocks += [conv_block(a, b) for a, b in itertools.pairwise(channels)]
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * channels[-1], n_classes)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled utterance embedding ``[B, 2 * channels[-1]]``."""
        h = self.blocks(x).mean(dim=2)  # [B, C, T']
        return masked_mean_max(h, downsample_mask(mask, h.shape[-1]))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(x, mask)))
