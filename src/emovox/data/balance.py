"""Training sets drawn from several corpora.

Sampling shares (:func:`corpus_balanced_draw`): every corpus an equal (or a chosen) share and,
within a corpus, each of its classes an equal share. The gradient trainer draws its epochs with
them (``TrainConfig.corpus_balance``); the closed-form regressions weigh their rows with them
(``encoder-lr --param balance=corpora``).

Class masks (:func:`corpus_class_mask`): the classes each row's corpus labels, for the trainer's
loss and the regression's ``corpus_classes``."""

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


def corpus_class_mask(y: np.ndarray, corpora: Sequence[str], n_classes: int) -> np.ndarray | None:
    """``[N, n_classes]``: for each row, the classes its corpus has among the rows (a corpus does
    not label the others; a row without a class, ``y < 0``, adds none), or ``None`` when every
    corpus has them all (the plain loss then)."""
    y = np.asarray(y, dtype=int)
    names, groups = np.unique(np.asarray(corpora, dtype=str), return_inverse=True)
    groups = groups.reshape(-1)
    have = np.zeros((len(names), n_classes), dtype=bool)
    known = y >= 0
    have[groups[known], y[known]] = True
    if (have == have.any(axis=0)).all():
        return None
    return have[groups]
