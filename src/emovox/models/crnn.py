"""``crnn``: convolutions, a bidirectional LSTM and attentive statistics pooling on log-mel.

A stride-2 stem and convolution blocks (3x3 conv, batch norm, ReLU, max-pool) shrink frequency
16-fold and time 4-fold; the frequency bins of each frame are flattened and projected, a
bidirectional LSTM reads the frames (an LSTM rather than a GRU: torch's CPU LSTM kernel is about
four times faster), and attentive statistics pooling (attention-weighted mean and
standard deviation over the valid frames) gives the utterance embedding, followed by dropout and a
linear classifier.

The backward LSTM reads each item reversed within its own length (two one-way LSTMs instead of
packed sequences), so padding never reaches a valid frame and the graph exports to ONNX.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
from torch import nn

from emovox.models.base import TRAINING_RECIPE, EmbeddingModel
from emovox.models.layers import (
    AttentiveStatsPool,
    check_dropout,
    check_positive,
    length_mask,
    max_pool_nonnegative,
    pool_out_length,
    reverse_time,
    stem_frames,
    zero_padding,
)

POOLS = ((2, 2), (4, 1))
"""(frequency, time) max-pool factors of the convolution blocks after the stem (then repeated
``(2, 1)``): with the stride-2 stem, 16-fold in frequency and 4-fold in time."""


class CRNN(EmbeddingModel):
    """CNN front, BiLSTM, attentive statistics pooling."""

    name = "crnn"
    default_training: ClassVar[dict] = {**TRAINING_RECIPE, "lr": 2e-3}

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        channels: tuple[int, ...] = (16, 32, 64),
        hidden: int = 64,
        proj: int = 96,
        attention: int = 64,
        dropout: float = 0.3,
    ) -> None:
        channels = tuple(channels)
        if len(channels) < 2:
            raise ValueError(f"channels needs at least 2 entries (stem + 1 block), not {channels}")
        check_positive(hidden=hidden, proj=proj, attention=attention)
        check_positive(**{f"channels[{i}]": c for i, c in enumerate(channels)})
        check_dropout(dropout)
        super().__init__(
            n_classes,
            in_shape,
            channels=list(channels),
            hidden=hidden,
            proj=proj,
            attention=attention,
            dropout=dropout,
        )
        self.stem = nn.Sequential(
            nn.Conv2d(in_shape[0], channels[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        )
        self.pools = [POOLS[i] if i < len(POOLS) else (2, 1) for i in range(len(channels) - 1)]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)
            )
            for a, b in itertools.pairwise(channels)
        )
        bins = -(-in_shape[1] // 2)
        for pf, _ in self.pools:
            bins = -(-bins // pf)
        self.proj = nn.Sequential(nn.Linear(channels[-1] * bins, proj), nn.Dropout(dropout / 2))
        self.rnn_fwd = nn.LSTM(proj, hidden, batch_first=True)
        self.rnn_bwd = nn.LSTM(proj, hidden, batch_first=True)
        self.pool = AttentiveStatsPool(2 * hidden, attention)
        self.make_head(4 * hidden, dropout)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled utterance embedding ``[B, embed_dim]`` (attentive mean and std)."""
        h, lengths = stem_frames(self.stem, x, mask)
        for block, (pf, pt) in zip(self.blocks, self.pools, strict=True):
            # Zeroed after the ReLU, the padding never wins a max that also covers valid frames.
            h = max_pool_nonnegative(zero_padding(block(h), lengths), pf, pt)
            if lengths is not None:
                lengths = pool_out_length(lengths, pt, pt, ceil_mode=True)
        b, c, f, t = h.shape
        seq = self.proj(h.reshape(b, c * f, t).transpose(1, 2))  # [B, T', proj]
        fwd, _ = self.rnn_fwd(seq)
        rev = reverse_time(seq.transpose(1, 2), lengths).transpose(1, 2)
        bwd, _ = self.rnn_bwd(rev)
        bwd = reverse_time(bwd.transpose(1, 2), lengths)
        out = torch.cat([fwd.transpose(1, 2), bwd], dim=1)  # [B, 2 * hidden, T']
        return self.pool(out, None if lengths is None else length_mask(lengths, t))

