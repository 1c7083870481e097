"""``timnet``: a bidirectional temporal CNN on MFCC in the style of TIM-Net (Ye et al., 2023).

The MFCC frames (streams and coefficients as channels) are read twice, forward and time-reversed,
each by its own stack of temporal-aware blocks: two causal dilated convolutions (kernel 2, batch
norm, ReLU, channel dropout) whose sigmoid gates the block's input. The dilation doubles from
block to block (1, 2, 4, ...), so the blocks see ever longer contexts. After every block, the
forward and backward outputs are added and averaged over the valid frames; the per-block vectors
are fused by learned softmax weights (dynamic multi-scale fusion) into the utterance embedding,
followed by dropout and a linear classifier. The defaults follow the paper's scale: 40 channels
(as many as MFCCs, the paper used 39) and 8 blocks, whose receptive field spans 5 seconds.

Both directions run as one grouped convolution (forward channels, then backward ones). Causal
convolutions never look ahead, and the backward direction reverses each item within its own length,
so padded frames never reach a valid one.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from emovox.models.base import TRAINING_RECIPE, EmbeddingModel
from emovox.models.layers import (
    check_dropout,
    check_positive,
    length_mask,
    mask_lengths,
    reverse_time,
)


class TemporalAwareBlock(nn.Module):
    """Two causal dilated convolutions of both directions at once; their sigmoid gates the input.

    Works on ``[B, 2C, T]`` (forward channels, then backward ones) with grouped convolutions, so
    the two directions keep separate weights.
    """

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.left = (kernel - 1) * dilation
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [
                nn.ConstantPad1d((self.left, 0), 0.0),
                nn.Conv1d(2 * channels, 2 * channels, kernel, dilation=dilation, groups=2),
                nn.BatchNorm1d(2 * channels),
                nn.ReLU(inplace=True),
                nn.Dropout1d(dropout),
            ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.net(x))


class TIMNet(EmbeddingModel):
    """Temporal-aware blocks with dilations 1, 2, 4, ... in both directions; weighted fusion."""

    name = "timnet"
    default_feature: ClassVar[dict] = {
        "name": "mfcc",
        "n_mfcc": 40,
        "normalize": "cmvn",
        "trim_db": 40.0,
        "amin": 1e-20,  # the gain-invariant log floor of cnn
    }
    default_training: ClassVar[dict] = {**TRAINING_RECIPE, "lr": 2e-3}

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        channels: int = 40,
        n_blocks: int = 8,
        kernel: int = 2,
        block_dropout: float = 0.1,
        dropout: float = 0.3,
    ) -> None:
        check_positive(channels=channels, n_blocks=n_blocks, kernel=kernel)
        check_dropout(block_dropout)
        check_dropout(dropout)
        super().__init__(
            n_classes,
            in_shape,
            channels=channels,
            n_blocks=n_blocks,
            kernel=kernel,
            block_dropout=block_dropout,
            dropout=dropout,
        )
        self.channels = channels
        self.input_conv = nn.Conv1d(2 * in_shape[0] * in_shape[1], 2 * channels, 1, groups=2)
        self.blocks = nn.ModuleList(
            TemporalAwareBlock(channels, kernel, 2**i, block_dropout) for i in range(n_blocks)
        )
        self.fusion = nn.Parameter(torch.zeros(n_blocks))
        self.make_head(channels, dropout)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The fused multi-scale embedding ``[B, embed_dim]``."""
        b, s, f, t = x.shape
        lengths = mask_lengths(mask)
        seq = x.reshape(b, s * f, t)
        h = self.input_conv(torch.cat([seq, reverse_time(seq, lengths)], dim=1))
        keep = None if lengths is None else length_mask(lengths, t)[:, None, :].to(x.dtype)
        count = None if lengths is None else lengths[:, None].to(x.dtype)
        scales = []
        for block in self.blocks:
            h = block(h)
            both = h[:, : self.channels] + h[:, self.channels :]  # forward + backward
            if keep is None:
                scales.append(both.mean(dim=-1))
            else:
                scales.append((both * keep).sum(dim=-1) / count)
        weights = torch.softmax(self.fusion, dim=0)
        return (torch.stack(scales, dim=-1) * weights).sum(dim=-1)

