"""Sampling shares for training sets drawn from several corpora: every corpus an equal (or a
chosen) share and, within a corpus, each of its classes an equal share. The gradient trainer
draws its epochs with them (``TrainConfig.corpus_balance``); the closed-form regressions weigh
their rows with them (``encoder-lr --param balance=corpora``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def corpus_balanced_draw(
    y: np.ndarray,
    corpora: Sequence[str] | None,
    weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """``[N]`` draw probabilities giving every corpus an equal share and, within a corpus, each
    of its classes an equal share (``TrainConfig.corpus_balance``); with ``weights`` (corpus
    name, any case -> relative share; 1 for a corpus not named, ``TrainConfig.corpus_weights``)
    the corpora's shares follow them instead."""
    y = np.asarray(y, dtype=int)
    if corpora is None:
        names, groups = np.array([""]), np.zeros(len(y), dtype=int)
    else:
        names, groups = np.unique(np.asarray(corpora, dtype=str), return_inverse=True)
        groups = groups.reshape(-1)
    wanted = {str(k).lower(): float(v) for k, v in (weights or {}).items()}
    share = np.array([wanted.get(str(n).lower(), 1.0) for n in names], dtype=float)
    p = np.zeros(len(y), dtype=float)
    present = np.unique(groups)
    if not len(y):
        return p
    share /= share[present].sum()
    for g in present:
        in_corpus = groups == g
        classes = np.unique(y[in_corpus])
        for c in classes:
            cell = in_corpus & (y == c)
            p[cell] = share[g] / (len(classes) * cell.sum())
    return p
