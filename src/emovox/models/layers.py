"""Building blocks shared by the models: frame lengths through strided layers, masked pooling.

Every model takes a frame mask ``[B, T]`` (True = a real frame; the valid frames of an item are a
prefix). To make a padded item give exactly what it gives on its own, the models follow each item's
valid length through every strided layer (:func:`conv_out_length`, :func:`pool_out_length`) and
zero the frames past it (:func:`length_mask`) wherever a later layer would look at them.
"""

from __future__ import annotations

import torch
from torch import nn


def mask_lengths(mask: torch.Tensor | None) -> torch.Tensor | None:
    """The number of valid frames ``[B]`` of a prefix mask ``[B, T]``.

    ``None`` when there is no mask or every frame is valid: the models then skip the masking.
    """
    if mask is None or bool(mask.all()):
        return None
    return mask.sum(dim=1)


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """A ``[B, size]`` mask that is True on the first ``lengths[b]`` frames of each row."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def conv_out_length(
    n: torch.Tensor, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> torch.Tensor:
    """Output frames of a convolution (or floor-mode pooling) for inputs of ``n`` frames."""
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out_length(n: torch.Tensor, kernel: int, stride: int, ceil_mode: bool) -> torch.Tensor:
    """Output frames of an unpadded max/avg pooling for ``n`` input frames, as torch counts them."""
    span = n - kernel
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    return out - ((out - 1) * stride >= n).long()  # the last window must start inside the input


def max_pool_nonnegative(x: torch.Tensor, k_freq: int, k_time: int) -> torch.Tensor:
    """Non-overlapping max pooling of a non-negative ``[B, C, F, T]`` map (e.g. after a ReLU).

    Equals ``nn.MaxPool2d((k_freq, k_time), ceil_mode=True)`` there (zero padding never wins a
    max), but runs several times faster on CPU than torch's NCHW kernel. Exported to ONNX it is
    ONNX's own ``MaxPool`` (ceil mode, dynamic time axis).
    """
    if torch.onnx.is_in_onnx_export():
        # ONNX's MaxPool is one fused operator, and in an int8 graph it pools the quantised map
        # directly (no dequantise/quantise around it): 1.6x faster end to end than slices.
        return nn.functional.max_pool2d(x, (k_freq, k_time), ceil_mode=True)
    # Always pad (by a length-dependent amount, maybe 0): a branch on it would freeze the
    # example's length into an exported graph.
    x = nn.functional.pad(x, (0, (-x.shape[-1]) % k_time, 0, (-x.shape[-2]) % k_freq))
    out = None
    for i in range(k_freq):
        for j in range(k_time):
            part = x[..., i::k_freq, j::k_time]
            out = part if out is None else torch.maximum(out, part)
    assert out is not None
    return out


def zero_padding(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``x`` (time last) with the frames at and after ``lengths`` set to zero."""
    if lengths is None:
        return x
    keep = length_mask(lengths, x.shape[-1]).to(x.dtype)
    return x * keep.view(keep.shape[0], *([1] * (x.dim() - 2)), keep.shape[1])


def reverse_time(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``[B, C, T]`` reversed in time within each item's length; the padding stays at the end.

    Applying it twice gives ``x`` back on the valid frames.
    """
    if lengths is None:
        return torch.flip(x, dims=(-1,))
    t = torch.arange(x.shape[-1], device=x.device)[None, :]
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return x.gather(-1, idx[:, None, :].expand(-1, x.shape[1], -1))


def masked_mean_std(x: torch.Tensor, mask: torch.Tensor | None, eps: float = 1e-5) -> torch.Tensor:
    """Mean and standard deviation over the last axis of ``[B, C, T]`` -> ``[B, 2C]``."""
    if mask is None:
        mean = x.mean(dim=-1)
        var = (x - mean[..., None]).pow(2).mean(dim=-1)
    else:
        m = mask[:, None, :].to(x.dtype)
        count = m.sum(-1).clamp(min=1.0)
        mean = (x * m).sum(-1) / count
        var = ((x - mean[..., None]) * m).pow(2).sum(-1) / count
    return torch.cat([mean, torch.sqrt(var + eps)], dim=1)


class AttentiveStatsPool(nn.Module):
    """Attentive statistics pooling (Okabe et al., 2018): ``[B, C, T]`` -> ``[B, 2C]``.

    A small network scores every frame; the softmax of the scores over the valid frames weights
    the mean and the standard deviation of the frames.

    Args:
        channels: the frame width ``C``.
        hidden: the width of the scoring network.
    """

    def __init__(self, channels: int, hidden: int = 64, eps: float = 1e-5) -> None:
        super().__init__()
        self.score = nn.Sequential(
            nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, 1, 1)
        )
        self.eps = eps

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.score(x)  # [B, 1, T]
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        w = torch.softmax(scores, dim=-1)
        if mask is not None:
            x = x.masked_fill(~mask[:, None, :], 0.0)  # 0 * inf would be nan
        mean = (w * x).sum(-1)
        var = (w * (x - mean[..., None]).pow(2)).sum(-1)
        return torch.cat([mean, torch.sqrt(var + self.eps)], dim=1)


def check_positive(**values: int) -> None:
    """Raise ``ValueError`` naming the first argument that is not a positive integer."""
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")


def check_dropout(p: float) -> None:
    """Raise ``ValueError`` unless ``0 <= p < 1``."""
    if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), not {p!r}")


def stem_frames(
    stem: nn.Module, x: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A stride-2, kernel-3 stem over the valid frames of ``x``: its output with the padding
    zeroed, and the valid lengths after it (``None`` without a mask)."""
    lengths = mask_lengths(mask)
    h = zero_padding(x, lengths)
    if lengths is not None:
        lengths = conv_out_length(lengths, 3, 2, 1)
    return zero_padding(stem(h), lengths), lengths
