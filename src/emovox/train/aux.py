"""Auxiliary tasks: linear heads on a model's embedding (gender, intensity), trained alongside,
and the arousal and valence targets of the dimensions head (``TrainConfig.dimensions``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from emovox.data.labels import SOURCE_LABEL
from emovox.data.taxonomy import AROUSAL_LEVEL_SCORE, CIRCUMPLEX, DIMENSIONS
from emovox.models.base import SERModel, embedding_width
from emovox.train.config import AUX_TARGETS


def embed_dim(model: SERModel) -> int:
    """The width of ``model.embed(x, mask)`` (:func:`emovox.models.base.embedding_width`).

    Raises:
        ValueError: the model has no ``embed`` method.
    """
    if not model.supports_embedding():
        raise ValueError(
            f"model {getattr(model, 'name', type(model).__name__)!r} has no embed(x, mask) "
            "method, which auxiliary heads (aux_targets) need; train it without aux_targets"
        )
    return embedding_width(model)


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


def dimension_targets(utterances: Sequence) -> np.ndarray:
    """``[N, 2]`` float32 ``(arousal, valence)`` targets in [-1, 1] (:data:`DIMENSIONS` order),
    NaN where unknown: an emotion's place on the circumplex (:data:`CIRCUMPLEX`, from the
    utterance's own canonical label, before any label scheme merges it), or for a corpus labelled
    with arousal levels (BAVED's ``fields["arousal"]``: low, normal, high) the level's arousal
    (:data:`AROUSAL_LEVEL_SCORE`) and no valence."""
    out = np.full((len(utterances), len(DIMENSIONS)), np.nan, dtype=np.float32)
    for i, u in enumerate(utterances):
        place = CIRCUMPLEX.get(str(u.fields.get(SOURCE_LABEL) or u.label))
        if place is not None:
            out[i] = place
            continue
        level = str(u.get("arousal", "")).strip().lower()
        if level in AROUSAL_LEVEL_SCORE:
            out[i, 0] = AROUSAL_LEVEL_SCORE[level]
    return out


def has_dimension_target(u) -> bool:
    """Whether :func:`dimension_targets` knows the arousal or valence of a manifest row."""
    return bool(np.isfinite(dimension_targets([u])).any())


def known_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries of ``target`` that are not NaN (0 when none is)."""
    known = ~torch.isnan(target)
    n = int(known.sum())
    if n == 0:
        return pred.sum() * 0.0
    diff = torch.where(known, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return (diff**2).sum() / n
