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
    class_mask: np.ndarray | None = None,
    nuisance: np.ndarray | None = None,
) -> None:
    """Fit an L2 logistic regression (scikit-learn) on standardised ``[N, D]`` functionals and
    copy it into ``model``'s buffers ``<prefix>mean / scale / coef / intercept`` (classes absent
    from ``y`` get a very low intercept, so it never predicts them).

    Without ``sample_weight`` the classes are balanced (each class weighs as much in the loss);
    with it each row weighs its (positive) weight, scaled to a mean of 1 so that ``C`` keeps its
    meaning (:func:`emovox.data.balance.corpus_balanced_draw` gives corpus-balanced weights).

    With ``class_mask`` (``[N, n_classes]``, true where row ``i`` may be any of those classes:
    the classes its corpus labels) each row's softmax runs over its own classes alone, so a
    corpus teaches nothing about a class it does not have (:func:`fit_masked_logistic`, the same
    objective as scikit-learn's, minimised by L-BFGS).

    With ``nuisance`` (``[k, D]`` orthonormal directions of the standardised space, as
    :func:`nuisance_directions` gives) the regression is fitted with those directions projected
    out of every row, and its weights keep the projection (a clip's position along them changes
    nothing): the same buffers, no step added at prediction."""
    from sklearn.linear_model import LogisticRegression

    n_classes = model.n_classes
    x = np.asarray(functionals, dtype=np.float64)
    mean, scale = standardize_stats(x)
    y = np.asarray(y, dtype=int)
    if sample_weight is None:
        present, counts = np.unique(y, return_counts=True)
        per_class = np.zeros(n_classes)
        per_class[present] = len(y) / (len(present) * counts)  # scikit-learn's "balanced"
        w = per_class[y]
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (len(x),) or not np.all(w > 0):
            raise ValueError(f"sample_weight must hold one positive weight per row ({len(x)})")
        w = w * len(w) / w.sum()
    coef = np.zeros((n_classes, x.shape[1]))
    intercept = np.full(n_classes, -1e4)
    z = (x - mean) / scale
    if nuisance is not None and len(nuisance):
        z = z - (z @ nuisance.T) @ nuisance
    if class_mask is not None:
        classes, c_coef, c_intercept = fit_masked_logistic(z, y, C, w, class_mask)
        coef[classes], intercept[classes] = c_coef, c_intercept
    else:
        lr = LogisticRegression(C=C, max_iter=5000)
        lr.fit(z, y, sample_weight=w)
        if len(lr.classes_) == 2:  # scikit-learn keeps one row for two classes
            coef[lr.classes_[1]], intercept[lr.classes_[1]] = lr.coef_[0], lr.intercept_[0]
            intercept[lr.classes_[0]] = 0.0
        else:
            coef[lr.classes_], intercept[lr.classes_] = lr.coef_, lr.intercept_
    if nuisance is not None and len(nuisance):
        coef = coef - (coef @ nuisance.T) @ nuisance
    for name, value in (("mean", mean), ("scale", scale), ("coef", coef), ("intercept", intercept)):
        getattr(model, prefix + name).copy_(torch.from_numpy(value).float())


def nuisance_directions(z: np.ndarray, y: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` directions (``[k, D]``, orthonormal) along which the corpora differ most for
    the same emotion (nuisance attribute projection): for every class that two or more corpora
    label, each corpus's mean of that class less the mean of those corpus means; the leading
    right singular vectors of all these differences. Fewer than ``k`` when the differences span
    fewer; none with a single corpus."""
    z, y, groups = np.asarray(z, dtype=np.float64), np.asarray(y), np.asarray(groups)
    rows = []
    for c in np.unique(y):
        means = [z[(y == c) & (groups == g)].mean(0) for g in np.unique(groups[y == c])]
        if len(means) > 1:
            centre = np.mean(means, axis=0)
            rows.extend(m - centre for m in means)
    if not rows or k <= 0:
        return np.zeros((0, z.shape[1]))
    _, sv, vt = np.linalg.svd(np.stack(rows), full_matrices=False)
    keep = min(k, int((sv > 1e-9 * max(sv[0], 1e-300)).sum()))
    return vt[:keep]


def fit_masked_logistic(
    x: np.ndarray, y: np.ndarray, C: float, weight: np.ndarray, class_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A multinomial L2 logistic regression whose row ``i`` is scored over the classes
    ``class_mask[i]`` alone: minimises ``C * sum_i weight_i * nll_i + |W|^2 / 2`` (scikit-learn's
    objective; the intercepts are not penalised) by L-BFGS in float64. With every mask true its
    solution is scikit-learn's.

    Returns:
        The classes present in ``y``, their ``[K, D]`` weights and ``[K]`` intercepts.

    Raises:
        ValueError: a mask of the wrong shape, or a row whose own label is masked out.
    """
    classes = np.unique(y)
    mask = np.asarray(class_mask, dtype=bool)
    if mask.ndim != 2 or mask.shape[0] != len(y) or mask.shape[1] <= classes.max():
        raise ValueError(f"class_mask must be [{len(y)}, n_classes], not {list(mask.shape)}")
    if not mask[np.arange(len(y)), y].all():
        raise ValueError("class_mask leaves out the label of some rows")
    index = np.searchsorted(classes, y)
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(index)
    allowed = torch.as_tensor(mask[:, classes])
    wt = torch.as_tensor(weight, dtype=torch.float64)
    scale = float(C) * float(wt.sum())  # the loss divided by it: the same minimum, tame numbers
    coef = torch.zeros(len(classes), x.shape[1], dtype=torch.float64, requires_grad=True)
    intercept = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [coef, intercept], lr=1.0, max_iter=5000, tolerance_grad=1e-5, tolerance_change=1e-12,
        history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = (xt @ coef.T + intercept).masked_fill(~allowed, float("-inf"))
        nll = -torch.log_softmax(logits, dim=1).gather(1, yt[:, None])[:, 0]
        loss = (C * (wt * nll).sum() + 0.5 * (coef**2).sum()) / scale
        loss.backward()
        return loss

    opt.step(closure)
    return classes, coef.detach().numpy(), intercept.detach().numpy()
