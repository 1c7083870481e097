"""``resnet``: a small residual 2-D CNN on log-mel with masked mean+std pooling; takes any length.

A stride-2 stem (3x3 conv, batch norm, ReLU), then stages of basic residual blocks (two 3x3
convolutions with batch norm, an identity or 1x1 strided shortcut, ReLU after the sum); every
stage after the first halves frequency and time. The map is averaged over frequency and pooled over
the valid frames as mean and standard deviation, then dropout and a linear classifier. About
0.31 M parameters and about the training compute of ``cnn``.
"""

from __future__ import annotations

import torch
from torch import nn

from emovox.models.base import EmbeddingModel
from emovox.models.layers import (
    check_dropout,
    check_positive,
    conv_out_length,
    length_mask,
    masked_mean_std,
    stem_frames,
    zero_padding,
)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (1x1 conv when the shape changes).

    ``forward(x, lengths)`` zeroes the frames past each item's length after every activation, so
    that the next convolution sees the zeros an item on its own is padded with.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if lengths is not None and self.stride != 1:
            lengths = conv_out_length(lengths, 3, self.stride, 1)
        h = zero_padding(torch.relu(self.bn1(self.conv1(x))), lengths)
        h = self.bn2(self.conv2(h)) + self.shortcut(x)
        return zero_padding(torch.relu(h), lengths), lengths


class ResNet(EmbeddingModel):
    """Residual CNN; ``channels`` per stage, ``blocks`` basic blocks per stage."""

    name = "resnet"

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        channels: tuple[int, ...] = (16, 32, 64, 128),
        blocks: tuple[int, ...] = (1, 1, 1, 1),
        dropout: float = 0.3,
    ) -> None:
        channels, blocks = tuple(channels), tuple(blocks)
        if not channels or len(channels) != len(blocks):
            raise ValueError(
                f"channels {list(channels)} and blocks {list(blocks)} must be non-empty and "
                "of the same length (one entry per stage)"
            )
        check_positive(**{f"channels[{i}]": c for i, c in enumerate(channels)})
        check_positive(**{f"blocks[{i}]": b for i, b in enumerate(blocks)})
        check_dropout(dropout)
        super().__init__(
            n_classes, in_shape, channels=list(channels), blocks=list(blocks), dropout=dropout
        )
        self.stem = nn.Sequential(
            nn.Conv2d(in_shape[0], channels[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[BasicBlock] = []
        c_in = channels[0]
        for stage, (c, n) in enumerate(zip(channels, blocks, strict=True)):
            for i in range(n):
                layers.append(BasicBlock(c_in, c, stride=2 if (stage > 0 and i == 0) else 1))
                c_in = c
        self.layers = nn.ModuleList(layers)
        self.make_head(2 * channels[-1], dropout)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled utterance embedding ``[B, embed_dim]`` (mean and std over valid frames)."""
        h, lengths = stem_frames(self.stem, x, mask)
        for block in self.layers:
            h, lengths = block(h, lengths)
        h = h.mean(dim=2)  # [B, C, T']
        return masked_mean_std(h, None if lengths is None else length_mask(lengths, h.shape[-1]))

