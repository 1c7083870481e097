"""Classification metrics of speech emotion recognition.

UA (unweighted average recall: the mean of the per-class recalls), WA (weighted accuracy: the share
of utterances right), macro-F1, per-class precision/recall/F1 and the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VAL_UA_PREFIX = "val_ua@"
"""Training-history key prefix of each validation corpus's UA (%), e.g. ``val_ua@ravdess``:
recorded every epoch when the validation speakers come from two or more corpora."""


def unweighted_accuracy(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> float:
    """Mean recall over the classes present in ``y_true`` (balanced accuracy)."""
    from sklearn.metrics import confusion_matrix  # slow to import: only where used

    cm = confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return 0.0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def ua_per_group(
    y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[str], n_classes: int
) -> dict[str, float]:
    """UA (a fraction) of each group of items (e.g. each validation corpus), by group name."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    names = np.asarray(groups, dtype=str)
    return {
        str(g): unweighted_accuracy(y_true[names == g], y_pred[names == g], n_classes)
        for g in sorted(set(names))
    }


def ua_by_group(
    y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[str] | None, n_classes: int
) -> dict[str, float]:
    """UA (%) of each group of items (:func:`ua_per_group`), keyed ``f"{VAL_UA_PREFIX}{group}"``
    as training histories record it; ``{}`` for fewer than two groups (or none given), where the
    pooled UA says it all."""
    if groups is None or len(set(groups)) < 2:
        return {}
    per = ua_per_group(y_true, y_pred, groups, n_classes)
    return {f"{VAL_UA_PREFIX}{g}": 100.0 * ua for g, ua in per.items()}


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]
) -> dict:
    """UA, WA, macro-F1 (in %), per-class precision/recall/F1 and the confusion matrix."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    labels = list(range(len(classes)))
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    cm = confusion_matrix(y_true, y_pred, labels=labels)
    present = [i for i in labels if (y_true == i).any()]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    macro_f1 = float(np.mean(f[present])) if present else 0.0
    return {
        "ua": 100.0 * unweighted_accuracy(y_true, y_pred, len(classes)),
        "wa": 100.0 * float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        "macro_f1": 100.0 * macro_f1,
        "n": len(y_true),
        "per_class": {
            c: {
                "precision": 100.0 * float(p[i]),
                "recall": 100.0 * float(r[i]),
                "f1": 100.0 * float(f[i]),
                "support": int(s[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion": {"labels": list(classes), "matrix": cm.tolist()},
    }


SIGN_MARGIN = 0.2
"""Targets within this distance of 0 have no side (neutral arousal, neutral valence) and are
left out of a dimension's sign accuracy."""


def concordance(pred: Sequence[float], target: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient of two series (0 when either is constant)."""
    x, y = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if len(x) < 2:
        return 0.0
    vx, vy = x.var(), y.var()
    denom = vx + vy + (x.mean() - y.mean()) ** 2
    return float(2 * np.mean((x - x.mean()) * (y - y.mean())) / denom) if denom > 0 else 0.0


def sign_ua(scores: dict) -> float | None:
    """The low/high UA of a :func:`dimension_metrics` result, or ``None`` where no target had a
    side (a corpus with no valence, say), so that no 0 is read as a score."""
    return scores.get("ua_sign") if scores.get("n_sign") else None


def dimension_metrics(pred: Sequence[float], target: Sequence[float]) -> dict:
    """How well predicted scores in [-1, 1] follow their targets (NaN targets left out):
    ``ccc`` (concordance), ``mae``, ``n``, and ``ua_sign``: the unweighted accuracy (in %) of the
    sign on the targets beyond :data:`SIGN_MARGIN` from 0 (e.g. low vs high arousal), with
    ``n_sign`` such targets."""
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    known = ~np.isnan(y)
    x, y = x[known], y[known]
    mae = float(np.mean(np.abs(x - y))) if len(y) else 0.0
    out = {"n": len(y), "ccc": concordance(x, y), "mae": mae}
    sided = np.abs(y) > SIGN_MARGIN
    truth, guess = (y[sided] > 0).astype(int), (x[sided] > 0).astype(int)
    out["n_sign"] = int(sided.sum())
    out["ua_sign"] = 100.0 * unweighted_accuracy(truth, guess, 2) if sided.any() else 0.0
    return out
