"""Drawing training batches: crops, variants, SpecAugment masks, the learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np
import torch


def random_crop(a: np.ndarray, frames: int, gen: torch.Generator) -> np.ndarray:
    """A random window of ``frames`` frames (zero-padded when the utterance is shorter)."""
    t = a.shape[-1]
    if t <= frames:
        return np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, frames - t)])
    start = int(torch.randint(0, t - frames + 1, (1,), generator=gen))
    return a[..., start : start + frames]


def crop_pair(
    a: np.ndarray, b: np.ndarray, frames: int, gen: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random window of two views of one utterance (each zero-padded when shorter;
    the start is drawn on the shorter view, so it falls inside both)."""
    t = min(a.shape[-1], b.shape[-1])
    start = 0 if t <= frames else int(torch.randint(0, t - frames + 1, (1,), generator=gen))
    return tuple(_window(v, start, frames) for v in (a, b))  # type: ignore[return-value]


def _window(a: np.ndarray, start: int, frames: int) -> np.ndarray:
    out = a[..., start : start + frames]
    short = frames - out.shape[-1]
    return np.pad(out, [(0, 0)] * (a.ndim - 1) + [(0, short)]) if short > 0 else out


def spec_augment(
    x: torch.Tensor,
    gen: torch.Generator,
    n_freq: int = 2,
    n_time: int = 2,
    max_freq: float = 0.15,
    max_time: float = 0.1,
) -> torch.Tensor:
    """SpecAugment-style masks: ``n_freq`` bands and ``n_time`` spans set to zero per example."""
    b, _, f, t = x.shape
    x = x.clone()
    for i in range(b):
        for _ in range(n_freq):
            w = int(torch.randint(0, max(1, int(f * max_freq)) + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, f - w + 1), (1,), generator=gen))
            x[i, :, s : s + w, :] = 0.0
        for _ in range(n_time):
            w = int(torch.randint(0, max(1, int(t * max_time)) + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, t - w + 1), (1,), generator=gen))
            x[i, :, :, s : s + w] = 0.0
    return x


def lr_at(step: int, total: int, base: float, schedule: str) -> float:
    """Learning rate at ``step`` of ``total`` (one-cycle: 30 % warm-up, then cosine to ~0)."""
    if schedule == "constant" or total <= 1:
        return base
    frac = step / total
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * frac))
    warm = 0.3
    if frac < warm:
        return base * (0.04 + 0.96 * frac / warm)
    return base * (0.5 * (1 + math.cos(math.pi * (frac - warm) / (1 - warm))) + 1e-3)


def pick_variant(item, gen: torch.Generator) -> np.ndarray:
    """An array as is, or one of a tuple of augmented variants, drawn at random."""
    if isinstance(item, (list, tuple)):
        return item[int(torch.randint(0, len(item), (1,), generator=gen))]
    return item


def pick_two_variants(item, gen: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two different variants of an item drawn at random (the array twice when it has one)."""
    if not isinstance(item, (list, tuple)) or len(item) < 2:
        one = pick_variant(item, gen)
        return one, one
    i = int(torch.randint(0, len(item), (1,), generator=gen))
    j = int(torch.randint(0, len(item) - 1, (1,), generator=gen))
    return item[i], item[j + (j >= i)]


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-softmax of each row over the classes ``mask`` keeps (0 at the others, which take no
    share); every row must keep at least one class."""
    logp = torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=1)
    return logp.masked_fill(~mask, 0.0)


def js_divergence(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Mean Jensen-Shannon divergence (nats) between the softmaxes of two ``[B, C]`` logit
    tensors: 0 when the two views get the same probabilities, at most ln 2."""
    logp_a = torch.log_softmax(logits_a.float(), dim=1)
    logp_b = torch.log_softmax(logits_b.float(), dim=1)
    log_m = torch.logsumexp(torch.stack([logp_a, logp_b]), dim=0) - math.log(2.0)
    kl_a = (logp_a.exp() * (logp_a - log_m)).sum(1)
    kl_b = (logp_b.exp() * (logp_b - log_m)).sum(1)
    return (0.5 * (kl_a + kl_b)).mean()
