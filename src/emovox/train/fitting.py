"""Fitting any model on feature arrays, by asking the model (the contract of
:mod:`emovox.models.base`) instead of probing it.

First what the model fits in closed form (an SVM, a fusion's regression), then its
:meth:`~emovox.models.base.SERModel.gradient_part` with the gradient :class:`Trainer`; a fusion's
parts are then scored on the validation set too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox.inference.predict import predict_logits
from emovox.metrics import unweighted_accuracy
from emovox.models.base import SERModel
from emovox.train.config import TrainConfig
from emovox.train.trainer import Trainer, TrainResult


def originals(items: Sequence) -> list:
    """The original of every training item (the first of a tuple of variants)."""
    return [x[0] if isinstance(x, tuple) else x for x in items]


def fit_arrays(
    model: SERModel,
    train_x: Sequence,
    train_y: Sequence[int],
    val_x: Sequence[np.ndarray] | None = None,
    val_y: Sequence[int] | None = None,
    config: TrainConfig | None = None,
    *,
    hop_seconds: float = 0.01,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    aux_y: dict[str, Sequence[int]] | None = None,
    class_mask: np.ndarray | None = None,
    dims_y: np.ndarray | None = None,
    val_dims_y: np.ndarray | None = None,
    progress: bool = True,
    corpora: Sequence[str] | None = None,
    val_corpora: Sequence[str] | None = None,
    soft_y: np.ndarray | None = None,
) -> TrainResult:
    """Fit ``model`` on ``[S, F, T]`` arrays (training items may be tuples of variants).

    Args:
        model: any registered model; it ends fitted, in eval mode, on the CPU.
        train_x, train_y: training items and class indices.
        val_x, val_y: validation items (early stopping, closed-form choices), or ``None``.
        config: training settings (the model's own when ``None``).
        hop_seconds: seconds per feature frame (crops in frames).
        checkpoint_dir, resume: the gradient trainer's checkpoints.
        aux_y: auxiliary targets of the training items (``config.aux_targets``).
        class_mask: the classes each training item's corpus labels (``[N, n_classes]``), for
            the gradient trainer's loss; closed-form fits see every item's label only.
        dims_y: ``[N, 2]`` arousal and valence targets (NaN: unknown) for a model with the
            dimensions head (:func:`emovox.train.aux.dimension_targets`).
        val_dims_y: the same of the validation items, for a head fitted in closed form
            (:meth:`~emovox.models.base.SERModel.fit_dimensions`).
        progress: show progress.
        corpora: each training item's corpus, for ``config.corpus_balance``.
        val_corpora: each validation item's corpus: each one's UA joins the history, and
            ``config.val_by_corpus`` / ``config.val_corpus`` choose the best epoch with them.
        soft_y: a teacher's probabilities for each item, for ``config.distill``.

    Returns:
        The training result: the gradient trainer's, or the closed-form fit's history for a model
        without a gradient part. With :meth:`~SERModel.components`, the last history row also
        holds each part's validation UA (``val_ua_<part>``) and the whole model's
        (``val_ua_fused``).
    """
    t0 = time.time()
    config = config or TrainConfig.for_model(type(model))
    _check_distill(model, config)
    train_y = np.asarray(train_y, dtype=int)
    has_val = val_x is not None and val_y is not None and len(val_x) > 0
    val = (list(val_x), np.asarray(val_y, dtype=int)) if has_val else (None, None)
    closed = _fit_closed_form(
        model, train_x, train_y, val if has_val else None, progress, corpora, val_corpora
    )
    part = model.gradient_part()
    if part is None:
        result = _closed_form_result(model, closed, train_x, dims_y, val[0], val_dims_y)
    else:
        trainer = Trainer(part.module, config, hop_seconds, checkpoint_dir, progress)
        result = trainer.fit(
            part.prepare(train_x), train_y, part.prepare(val[0]), val[1], resume, aux_y,
            class_mask, dims_y=dims_y, corpora=corpora, val_corpora=val_corpora, soft_y=soft_y,
        )  # fmt: skip
    model.eval()
    if has_val and model.components() and result.history:
        result.history[-1].update(component_val_ua(model, *val))
    result.seconds = time.time() - t0
    return result


def _closed_form_result(
    model: SERModel,
    closed,
    train_x: Sequence,
    dims_y: np.ndarray | None,
    val_x: Sequence | None,
    val_dims_y: np.ndarray | None,
) -> TrainResult:
    """The training result of a model fitted in closed form only, its dimensions head (if any)
    fitted after the classes and its numbers added to the last history row."""
    closed = closed or _nothing_fitted(model)
    result = TrainResult(closed.history, closed.best_epoch, closed.best_val_ua, 0.0)
    dims = _fit_dimensions(model, train_x, dims_y, val_x, val_dims_y)
    if dims and result.history:
        result.history[-1].update(dims)
    return result


def _check_distill(model: SERModel, config: TrainConfig) -> None:
    """Distillation (:mod:`emovox.train.distill`) needs a network for the gradient trainer."""
    if config.distill > 0 and model.gradient_part() is None:
        raise ValueError(
            f"distill trains a network on a teacher's answers: model {model.name!r} "
            "has no gradient-trained part"
        )


def _fit_closed_form(
    model: SERModel,
    train_x: Sequence,
    train_y: np.ndarray,
    val: tuple[list, np.ndarray] | None,
    progress: bool,
    corpora: Sequence[str] | None,
    val_corpora: Sequence[str] | None,
):
    """:meth:`~SERModel.fit_closed_form` on the labelled training items (their variants when the
    model trains on them), with each item's corpus when known."""
    items = train_x if model.trains_on_variants else originals(train_x)
    keep = np.flatnonzero(train_y >= 0)  # rows for the dimensions head only have no class
    groups = [corpora[i] for i in keep] if corpora is not None else None
    val_groups = list(val_corpora) if val and val_corpora else None
    if val is not None and (val[1] < 0).any():  # the same of the validation items
        held = np.flatnonzero(val[1] >= 0)
        val = ([val[0][i] for i in held], val[1][held]) if len(held) else None
        val_groups = [val_groups[i] for i in held] if val_groups and val else None
    by_corpus = (groups, val_groups) if groups else None
    return model.fit_closed_form(
        ([items[i] for i in keep], train_y[keep]), val, progress, corpora=by_corpus
    )


def _fit_dimensions(
    model: SERModel,
    train_x: Sequence,
    dims_y: np.ndarray | None,
    val_x: Sequence | None,
    val_dims_y: np.ndarray | None,
) -> dict | None:
    """:meth:`~SERModel.fit_dimensions` of a model fitted in closed form with the dimensions
    head, on every training item (rows without a class included); ``None`` otherwise.

    Raises:
        ValueError: the model has the head but fits it neither way.
    """
    if dims_y is None or not model.has_dimensions():
        return None
    items = train_x if model.trains_on_variants else originals(train_x)
    val = (list(val_x), val_dims_y) if val_x is not None and val_dims_y is not None else None
    out = model.fit_dimensions((items, dims_y), val)
    if out is None:
        raise ValueError(
            f"model {model.name!r} has the dimensions head but no gradient part to train it "
            "and no closed-form fit of it"
        )
    return out


def component_val_ua(model: SERModel, xs: list, y: np.ndarray) -> dict[str, float]:
    """UA (%) on ``xs`` of each of the model's components, and of the whole (``val_ua_fused``)."""
    out = {}
    for name, part in {**model.components(), "fused": model}.items():
        pred = predict_logits(part, xs).argmax(1)
        out[f"val_ua_{name}"] = 100 * unweighted_accuracy(y, pred, model.n_classes)
    return out


def _nothing_fitted(model: SERModel):
    raise ValueError(f"model {model.name!r} declares neither a closed-form fit nor a gradient part")
