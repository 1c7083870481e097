"""Domain-adversarial training against the corpus (``TrainConfig.corpus_adversary``).

A small classifier learns to tell the training corpora apart from the model's utterance
embedding, behind a gradient-reversal layer: the classifier itself descends its cross-entropy,
while the network above it receives the opposite gradient, scaled, and so learns an embedding
in which the corpora (their languages, microphones, rooms and acting styles) are hard to tell
apart (Ganin and Lempitsky, "Unsupervised domain adaptation by backpropagation", ICML 2015).
The scale rises from 0 to ``corpus_adversary`` over training (:func:`reversal_scale`), so the
classifier has something to push against before it pushes. The classifier trains with the
model and is checkpointed for resume, but is never part of the model or of a bundle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

ADVERSARY_HIDDEN = 64
"""Width of the corpus classifier's hidden layer."""

RAMP_STEEPNESS = 10.0
"""How fast the reversal scale rises over training: ``2 / (1 + exp(-10 p)) - 1`` at progress
``p`` in [0, 1] (Ganin and Lempitsky's schedule): 0 at the start, 0.76 at 20 %, 0.99 at 50 %."""


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``-scale`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged, but the gradient that flows back through it is multiplied by
    ``-scale``."""
    return _ReverseGradient.apply(x, float(scale))


def reversal_scale(progress: float, weight: float) -> float:
    """The reversal scale at ``progress`` (0 at the first step, 1 at the last) of a training with
    ``corpus_adversary=weight``."""
    p = min(max(float(progress), 0.0), 1.0)
    return float(weight) * (2.0 / (1.0 + math.exp(-RAMP_STEEPNESS * p)) - 1.0)


class CorpusAdversary(nn.Module):
    """The corpus classifier on an embedding of width ``dim``, behind a gradient reversal whose
    scale the trainer sets before every step (:attr:`scale`)."""

    def __init__(self, dim: int, n_corpora: int, seed: int = 0) -> None:
        super().__init__()
        if n_corpora < 2:
            raise ValueError(f"a corpus adversary needs at least 2 corpora, not {n_corpora}")
        with torch.random.fork_rng(devices=[]):  # leaves the global random state alone
            torch.manual_seed(seed + 104_729)
            self.net = nn.Sequential(
                nn.Linear(dim, ADVERSARY_HIDDEN), nn.ReLU(), nn.Linear(ADVERSARY_HIDDEN, n_corpora)
            )
        self.scale = 0.0

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Corpus logits ``[B, n_corpora]``."""
        return self.net(reverse_gradient(embedding, self.scale))


def corpus_indices(corpora: Sequence[str] | None, n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each of ``n`` training items' corpus as an index into the sorted corpus names, and those
    names.

    Raises:
        ValueError: no corpora were given, their number is not ``n``, or there is only one
            corpus (nothing to tell apart).
    """
    if corpora is None:
        raise ValueError(
            "corpus_adversary needs each training item's corpus (Trainer.fit(corpora=...))"
        )
    names = np.asarray([str(c) for c in corpora])
    if names.shape != (n,):
        raise ValueError(f"corpora has {names.shape[0]} entries for {n} training items")
    order = tuple(sorted(set(names.tolist())))
    if len(order) < 2:
        raise ValueError(
            f"corpus_adversary needs at least two training corpora; all items come from "
            f"{order[0] if order else 'none'!r} (set corpus_adversary=0)"
        )
    index = {c: i for i, c in enumerate(order)}
    return np.array([index[c] for c in names], dtype=np.int64), order
