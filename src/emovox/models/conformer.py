"""``conformer``: a small Conformer encoder on log-mel with attentive statistics pooling.

Two stride-2 3x3 convolutions subsample frequency and time 4-fold; the frequency bins of each
frame are projected to ``d_model``. Each Conformer block (Gulati et al., 2020) is macaron-style:
half a feed-forward module, multi-head self-attention (padded frames masked out as keys), a
convolution module (pointwise conv, GLU, depthwise conv, batch norm, SiLU, pointwise conv), half a
feed-forward module and a final layer norm, each with a residual connection. There is no
positional encoding: the depthwise convolutions give the attention its sense of order, and the
model stays shift-invariant on utterances longer than its training crops. Attentive statistics
pooling over the valid frames gives the utterance embedding; dropout and a linear classifier
follow.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from emovox.models.base import TRAINING_RECIPE, EmbeddingModel, constructor_args
from emovox.models.layers import (
    AttentiveStatsPool,
    check_dropout,
    check_positive,
    conv_out_length,
    length_mask,
    mask_lengths,
    zero_padding,
)


class FeedForward(nn.Module):
    """Layer norm, linear, SiLU, dropout, linear, dropout (a pre-norm macaron half)."""

    def __init__(self, d: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d),
            nn.Linear(d, expansion * d),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(expansion * d, d),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over ``[B, T, d]``; ``keep`` masks out padded keys."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads
        q, k, v = (
            self.qkv(self.norm(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
        )
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d // h))  # [B, H, T, T]
        if keep is not None:
            scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
        attn = self.drop(torch.softmax(scores, dim=-1))
        y = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, d)
        return self.drop(self.out(y))


class ConvModule(nn.Module):
    """Pre-norm Conformer convolution module over ``[B, T, d]`` (zeroing padded frames first)."""

    def __init__(self, d: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pointwise_in = nn.Linear(d, 2 * d)  # pointwise convolutions as (faster) linears
        self.depthwise = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d, bias=False)
        self.bn = nn.BatchNorm1d(d)
        self.pointwise_out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        h = nn.functional.glu(self.pointwise_in(self.norm(x)), dim=-1).transpose(1, 2)
        h = nn.functional.silu(self.bn(self.depthwise(zero_padding(h, lengths))))
        return self.drop(self.pointwise_out(h.transpose(1, 2)))


class ConformerBlock(nn.Module):
    """FFN/2, self-attention, convolution module, FFN/2, layer norm; all residual."""

    def __init__(self, d: int, heads: int, expansion: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.ff1 = FeedForward(d, expansion, dropout)
        self.attn = SelfAttention(d, heads, dropout)
        self.conv = ConvModule(d, kernel, dropout)
        self.ff2 = FeedForward(d, expansion, dropout)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        keep = None if lengths is None else length_mask(lengths, x.shape[1])
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(x, keep)
        x = x + self.conv(x, lengths)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class Conformer(EmbeddingModel):
    """Conv subsampling x4, ``n_blocks`` Conformer blocks (``d_model`` wide), attentive pooling."""

    name = "conformer"
    # attention wants a gentler peak; one-cycle warms up over 30 % of the steps
    default_training: ClassVar[dict] = {**TRAINING_RECIPE, "lr": 1e-3}

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        d_model: int = 96,
        n_blocks: int = 3,
        heads: int = 4,
        ff_expansion: int = 4,
        kernel: int = 15,
        subsample_channels: int = 32,
        attention: int = 64,
        block_dropout: float = 0.1,
        dropout: float = 0.3,
    ) -> None:
        hparams = constructor_args(locals())
        check_positive(**{k: v for k, v in hparams.items() if not k.endswith("dropout")})
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of heads ({heads})")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (a centred depthwise convolution), not {kernel}")
        check_dropout(dropout)
        check_dropout(block_dropout)
        super().__init__(n_classes, in_shape, **hparams)
        c = subsample_channels
        self.subsample = nn.ModuleList(
            [
                nn.Conv2d(in_shape[0], c, 3, stride=2, padding=1),
                nn.Conv2d(c, c, 3, stride=2, padding=1),
            ]
        )
        bins = in_shape[1]
        for _ in self.subsample:
            bins = (bins + 1) // 2  # a 3x3 convolution with stride 2 and padding 1
        self.input_proj = nn.Sequential(nn.Linear(c * bins, d_model), nn.Dropout(block_dropout))
        self.blocks = nn.ModuleList(
            ConformerBlock(d_model, heads, ff_expansion, kernel, block_dropout)
            for _ in range(n_blocks)
        )
        self.pool = AttentiveStatsPool(d_model, attention)
        self.make_head(2 * d_model, dropout)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled utterance embedding ``[B, embed_dim]`` (attentive mean and std)."""
        lengths = mask_lengths(mask)
        h = zero_padding(x, lengths)
        for conv in self.subsample:
            h = torch.relu(conv(h))
            if lengths is not None:
                lengths = conv_out_length(lengths, 3, 2, 1)
            h = zero_padding(h, lengths)
        b, c, f, t = h.shape
        h = self.input_proj(h.reshape(b, c * f, t).transpose(1, 2))  # [B, T', d]
        for block in self.blocks:
            h = block(h, lengths)
        return self.pool(h.transpose(1, 2), None if lengths is None else length_mask(lengths, t))

