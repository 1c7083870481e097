"""What every registered model shares.

A model is a ``torch.nn.Module`` that maps features ``[B, S, F, T]`` (streams, bins, frames) and an
optional frame mask ``[B, T]`` to class logits ``[B, n_classes]``. Each model names the feature and
training settings it works best with; both can be overridden. Its constructor arguments
(``hparams``) are saved in the bundle's ``config.json`` so that it can be rebuilt without pickle.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

LOGMEL_FEATURE: dict = {
    "name": "logmel",
    "n_mels": 64,
    "normalize": "utterance",
    "trim_db": 40.0,
    "amin": 1e-20,  # only the per-utterance top_db floor: gain-invariant on quiet audio
}
"""The gain-invariant log-mel that ``cnn`` and the other log-mel models are designed for."""

TRAINING_RECIPE: dict = {
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 1e-2,
    "schedule": "onecycle",
    "batch_size": 32,
    "epochs": 45,
    "patience": 20,
    "crop_seconds": 1.5,
    "specaugment": True,
    "mixup": 0.2,
    "label_smoothing": 0.05,
}
"""``cnn``'s training settings, the starting point of the other networks' recipes."""


class SERModel(nn.Module):
    """Base class of registered models."""

    name: ClassVar[str] = ""
    default_feature: ClassVar[dict] = {"name": "logmel"}
    default_training: ClassVar[dict] = {}

    def __init__(self, n_classes: int, in_shape: tuple[int, int], **hparams) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.in_shape = tuple(in_shape)
        self.hparams = dict(hparams)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def masked_mean_max(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean and max over the last axis of ``[B, C, T]``, ignoring frames where ``mask`` is False."""
    if mask is None:
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)
    m = mask[:, None, :].to(x.dtype)
    mean = (x * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    mx = x.masked_fill(~mask[:, None, :], torch.finfo(x.dtype).min).amax(dim=-1)
    return torch.cat([mean, mx], dim=1)


def downsample_mask(mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """Shrink a ``[B, T]`` mask to ``length`` frames (a frame counts if any source frame did)."""
    if mask is None:
        return None
    if mask.shape[-1] == length:
        return mask
    pooled = nn.functional.adaptive_max_pool1d(mask[:, None, :].float(), length)
    return pooled[:, 0] > 0
