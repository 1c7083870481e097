"""``cnn``: a compact 2-D CNN on log-mel with masked global pooling; takes any length.

A stride-2 stem, then convolution blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool), a mean over
frequency and a masked mean+max over time, dropout, and a linear classifier. Sized to train the
six EmoBox folds of RAVDESS in minutes on two CPU cores.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from emovox.models.base import EmbeddingModel, masked_mean_max
from emovox.models.layers import max_pool_nonnegative


class NonNegativeMaxPool2d(nn.MaxPool2d):
    """``MaxPool2d(2, ceil_mode=True)`` for maps after a ReLU. In eval mode it is computed by
    :func:`~emovox.models.layers.max_pool_nonnegative` (same values, faster inference on CPU); in
    training torch's own kernel is used, whose backward pass is the faster one. No weights, so
    bundles are unchanged."""

    def __init__(self) -> None:
        super().__init__(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        return max_pool_nonnegative(x, 2, 2)


def conv_block(c_in: int, c_out: int, stride: int = 1, pool: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(NonNegativeMaxPool2d())
    return nn.Sequential(*layers)


class CNN(EmbeddingModel):
    name = "cnn"

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        channels: tuple[int, ...] = (16, 32, 64, 128),
        dropout: float = 0.3,
        freq_pool: str = "mean",
    ) -> None:
        channels = tuple(channels)
        if freq_pool not in ("mean", "flatten"):
            raise ValueError("freq_pool must be 'mean' or 'flatten'")
        super().__init__(
            n_classes, in_shape, channels=list(channels), dropout=dropout, freq_pool=freq_pool
        )
        streams = in_shape[0]
        blocks = [conv_block(streams, channels[0], stride=2, pool=False)]
        blocks += [conv_block(a, b) for a, b in itertools.pairwise(channels)]
        self.blocks = nn.Sequential(*blocks)
        self.freq_pool = freq_pool
        bins = in_shape[1]
        for _ in channels:  # the stem halves the bins, every pooling block halves them again
            bins = -(-bins // 2)
        width = channels[-1] * (bins if freq_pool == "flatten" else 1)
        self.make_head(2 * width, dropout)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled utterance embedding ``[B, 2 * width]``.

        With a mask, every item's valid length is followed through each layer and the frames past
        it are zeroed after each activation, so a padded item gets exactly the embedding it gets
        on its own.
        """
        if mask is None or bool(mask.all()):
            return masked_mean_max(self._pool_freq(self.blocks(x)), None)
        lengths = mask.sum(dim=1)
        h = x * mask[:, None, None, :].to(x.dtype)
        for block in self.blocks:
            for layer in block:
                h = layer(h)
                if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                    lengths = _out_length(lengths, layer)
                elif isinstance(layer, nn.ReLU):
                    h = h * _length_mask(lengths, h.shape[-1])[:, None, None, :].to(h.dtype)
        h = self._pool_freq(h)  # [B, C or C * F', T']
        return masked_mean_max(h, _length_mask(lengths, h.shape[-1]))

    def _pool_freq(self, h: torch.Tensor) -> torch.Tensor:
        return h.mean(dim=2) if self.freq_pool == "mean" else h.flatten(1, 2)



def _length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def _out_length(n: torch.Tensor, layer: nn.Conv2d | nn.MaxPool2d) -> torch.Tensor:
    """Output frames (last axis) of ``layer`` for inputs of ``n`` frames, as torch computes them."""

    def last(v):
        return v[-1] if isinstance(v, tuple) else v

    k, s, p, d = (last(getattr(layer, a)) for a in ("kernel_size", "stride", "padding", "dilation"))
    span = n + 2 * p - d * (k - 1) - 1
    if not getattr(layer, "ceil_mode", False):
        return span // s + 1
    out = -(-span // s) + 1
    return out - ((out - 1) * s >= n + p).long()  # the last window must start inside the input
