"""Auxiliary tasks: linear heads on a model's embedding (gender, intensity), trained alongside."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from emovox.models.base import SERModel
from emovox.train.config import AUX_TARGETS


def embed_dim(model: SERModel) -> int:
    """The width of ``model.embed(x, mask)``: ``model.embed_dim``, or measured on a dummy input.

    Raises:
        ValueError: the model has no ``embed`` method.
    """
    if not model.supports_embedding():
        raise ValueError(
            f"model {getattr(model, 'name', type(model).__name__)!r} has no embed(x, mask) "
            "method, which auxiliary heads (aux_targets) need; train it without aux_targets"
        )
    dim = getattr(model, "embed_dim", None)
    if isinstance(dim, int):
        return dim
    was_training = model.training
    model.eval()
    with torch.no_grad():
        s, f = model.in_shape
        out = model.embed(torch.zeros(1, s, f, 64), torch.ones(1, 64, dtype=torch.bool))
    model.train(was_training)
    return int(out.shape[-1])


def make_aux_heads(model: SERModel, targets: Sequence[str], seed: int = 0) -> nn.ModuleDict:
    """One linear layer per auxiliary target on the model's embedding (initialised from
    ``seed`` without touching the global random state)."""
    dim = embed_dim(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 7919)
        return nn.ModuleDict({t: nn.Linear(dim, len(AUX_TARGETS[t])) for t in targets})


def aux_labels(utterances: Sequence, targets: Sequence[str]) -> dict[str, np.ndarray]:
    """For each target of :data:`AUX_TARGETS`, the class index of every utterance (``-1`` where
    the manifest does not know it): ``gender`` from the column, others from the corpus fields."""
    out = {}
    for name in targets:
        if name not in AUX_TARGETS:
            raise ValueError(f"unknown aux target {name!r}; choose among {sorted(AUX_TARGETS)}")
        index = {c: i for i, c in enumerate(AUX_TARGETS[name])}
        out[name] = np.array(
            [index.get(str(u.get(name, "")).strip().lower(), -1) for u in utterances],
            dtype=np.int64,
        )
    return out


def known_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the items whose target is not ``-1`` (0 when none is known)."""
    known = int((target >= 0).sum())
    if known == 0:
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits, target, ignore_index=-1, reduction="sum") / known
