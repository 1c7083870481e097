"""Classification metrics of speech emotion recognition.

UA (unweighted average recall: the mean of the per-class recalls), WA (weighted accuracy: the share
of utterances right), macro-F1, per-class precision/recall/F1 and the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def unweighted_accuracy(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> float:
    """Mean recall over the classes present in ``y_true`` (balanced accuracy)."""
    from sklearn.metrics import confusion_matrix  # slow to import: only where used

    cm = confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return 0.0
    return float(np.mean(np.diag(cm)[present] / support[present]))


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
