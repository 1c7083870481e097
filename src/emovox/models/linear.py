"""Linear models shared by the classical models and the fusions: standardisation statistics and
a class-balanced logistic regression held in a module's buffers (safetensors like any weight)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CLOSED_FORM_TRAINING: dict = {
    "epochs": 1,  # unused: the model is fitted in closed form (fit_closed_form)
    "crop_seconds": None,
    "specaugment": False,
    "mixup": 0.0,
    "label_smoothing": 0.0,
    "val_fraction": 0.2,
}
"""The training settings of models fitted in closed form on whole utterances (SVMs, regressions):
no crops or gradient-time augmentation, a fifth of the speakers kept to choose on."""


def frame_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, S, F, T]`` features -> ``[B, S * F]``: each item's mean over its frames (``mask``:
    ``[B, T]``, true on real frames; padding left out)."""
    if mask is None:
        v = x.mean(dim=-1)
    else:
        m = mask[:, None, None, :].to(x.dtype)
        v = (x * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    return v.reshape(x.shape[0], -1)


def standardize_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation (1 where a dimension is constant)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale < 1e-12 * np.maximum(1.0, np.abs(mean)), 1.0, scale)


def register_logistic(model: nn.Module, prefix: str, dim: int) -> None:
    """Buffers ``<prefix>mean / scale / coef / intercept`` of a ``dim``-input logistic regression
    (re-registering a name replaces its buffer)."""
    model.register_buffer(f"{prefix}mean", torch.zeros(dim))
    model.register_buffer(f"{prefix}scale", torch.ones(dim))
    model.register_buffer(f"{prefix}coef", torch.zeros(model.n_classes, dim))
    model.register_buffer(f"{prefix}intercept", torch.zeros(model.n_classes))


def logistic_logits(model: nn.Module, prefix: str, functionals: torch.Tensor) -> torch.Tensor:
    """Logits ``[B, n_classes]`` of the regression held in ``model``'s ``<prefix>`` buffers."""
    b = {n: getattr(model, prefix + n) for n in ("mean", "scale", "coef", "intercept")}
    return (functionals - b["mean"]) / b["scale"] @ b["coef"].T + b["intercept"]


def fit_logistic(
    model: nn.Module,
    prefix: str,
    functionals: np.ndarray,
    y: np.ndarray,
    C: float,
    sample_weight: np.ndarray | None = None,
) -> None:
    """Fit an L2 logistic regression (scikit-learn) on standardised ``[N, D]`` functionals and
    copy it into ``model``'s buffers ``<prefix>mean / scale / coef / intercept`` (classes absent
    from ``y`` get a very low intercept, so it never predicts them).

    Without ``sample_weight`` the classes are balanced (each class weighs as much in the loss);
    with it each row weighs its (positive) weight, scaled to a mean of 1 so that ``C`` keeps its
    meaning (:func:`emovox.data.balance.corpus_balanced_draw` gives corpus-balanced weights)."""
    from sklearn.linear_model import LogisticRegression

    n_classes = model.n_classes
    x = np.asarray(functionals, dtype=np.float64)
    mean, scale = standardize_stats(x)
    if sample_weight is None:
        lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000)
        lr.fit((x - mean) / scale, y)
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (len(x),) or not np.all(w > 0):
            raise ValueError(f"sample_weight must hold one positive weight per row ({len(x)})")
        lr = LogisticRegression(C=C, max_iter=5000)
        lr.fit((x - mean) / scale, y, sample_weight=w * len(w) / w.sum())
    coef = np.zeros((n_classes, x.shape[1]))
    intercept = np.full(n_classes, -1e4)
    if len(lr.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef[lr.classes_[1]], intercept[lr.classes_[1]] = lr.coef_[0], lr.intercept_[0]
        intercept[lr.classes_[0]] = 0.0
    else:
        coef[lr.classes_], intercept[lr.classes_] = lr.coef_, lr.intercept_
    for name, value in (("mean", mean), ("scale", scale), ("coef", coef), ("intercept", intercept)):
        getattr(model, prefix + name).copy_(torch.from_numpy(value).float())
