"""``encoder-lr``: a class-balanced logistic regression on a pretrained encoder's pooled layer.

The linear probe of the frozen-encoder recipe: the mean and standard deviation of one encoder
layer over the utterance (``encoder-pooled``), standardised, and an L2 logistic regression fitted
in closed form (scikit-learn). Beside ``encoder-svm`` it holds ``n_classes x D`` weights instead
of thousands of support vectors (kilobytes instead of tens of megabytes) and scores a clip with
one matrix product.

Training (the model contract, :mod:`emovox.models.base`): each ``C`` of the grid is fitted on
the training speakers and scored on the validation speakers (UA); the best ``C``'s scores
calibrate a softmax temperature, and the regression is refitted on training and validation
speakers together. Without validation speakers ``C`` = :data:`DEFAULT_C`.

With ``balance="corpora"`` (``--param balance=corpora``) every training corpus weighs as much
in the loss and, within it, each of its classes (the rows weighted as the gradient trainer's
``corpus_balance`` draws them, :func:`emovox.data.balance.corpus_balanced_draw`): a large corpus
no longer decides the boundaries alone. The default, ``"classes"``, balances the classes only.
With ``corpus_classes=True`` each row's softmax runs over the classes its corpus labels (the
per-corpus class masks of the gradient trainer's loss): a corpus without "disgust" teaches
nothing about disgust. With ``nuisance=k`` the ``k`` directions along which the training corpora
differ most for the same emotion are projected out before the fit (nuisance attribute
projection, :func:`~emovox.models.linear.nuisance_directions`; folded into the weights, so a
clip is still scored alone).

With augmented training copies (``--train-param augment=... --train-param augment_copies=N``)
every copy of a training clip is a row of its own, with the clip's label (the features of noisy,
band-limited or clipped copies teach the regression what does not change the emotion); the
validation speakers are scored on their original clips only.

With ``--train-param dimensions=true`` it also gives an arousal and a valence score in [-1, 1]
with every prediction: one ridge regression per dimension from the same standardised summary,
fitted in closed form on every training clip with a target (an emotion's place on the
circumplex, or BAVED's arousal level: rows without a class teach it too) and squashed by tanh;
its strength is chosen on the validation speakers' targets (:meth:`LogisticModel.fit_dimensions`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from emovox.data.balance import corpus_balanced_draw, corpus_class_mask
from emovox.metrics import ua_by_group, unweighted_accuracy
from emovox.models.base import (
    ClosedFormFit,
    Corpora,
    DimensionSplit,
    GradientPart,
    SERModel,
    Split,
    every_variant,
    variant_counts,
)
from emovox.models.linear import (
    CLOSED_FORM_TRAINING,
    fit_logistic,
    frame_mean,
    logistic_logits,
    nuisance_directions,
    register_logistic,
    standardize_stats,
)
from emovox.models.svm import fit_temperature, pool_utterances

DEFAULT_C_GRID = (0.001, 0.01, 0.1, 1.0)
"""Inverse L2 strengths tried on the validation speakers."""
DEFAULT_C = 0.01
CHOOSE_ON = ("speakers", "corpora")
"""What ``C`` is chosen on: the validation speakers, or each training corpus held out."""
BALANCE = ("classes", "corpora")
"""How rows are weighed: each class equally, or each corpus and each class within it equally."""
DIMS_ALPHA_GRID = (1.0, 10.0, 100.0, 1000.0, 10000.0)
"""Ridge strengths of the arousal/valence head tried on the validation speakers' targets (on
standardised features: each column's sum of squares is the number of rows)."""
DEFAULT_DIMS_ALPHA = 100.0
"""The ridge strength without validation targets."""
DIMS_TARGET_LIMIT = 0.95
"""Targets are clipped to this magnitude before ``atanh``: the ridge is fitted on the scale the
tanh then squashes, and a target at +-1 would be infinite there."""


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """The corpus of every row (training rows, then validation items) and whether it is an
    original clip (scored when its corpus is held out in a choice by corpus) or a copy."""

    groups: np.ndarray
    original: np.ndarray


class LogisticModel(SERModel):
    """A logistic regression on the frame mean of any feature (``[S, F, T]`` -> ``S * F``).

    Args:
        n_classes: emotion classes (classes missing from the training data are never predicted).
        in_shape: ``(streams, bins)`` of the feature.
        c_grid: the values of ``C`` tried.
        calibrate: fit a softmax temperature on the validation speakers.
        choose_on: ``"speakers"``: ``C`` by the UA on the validation speakers; ``"corpora"``: by
            the mean UA over the training corpora, each held out in turn (a choice that sees
            corpus shift; the validation speakers only calibrate). One corpus: as ``speakers``.
        balance: ``"classes"``: each class weighs as much in the loss; ``"corpora"``: each
            training corpus, and each class within a corpus (one corpus: as ``classes``).
        corpus_classes: score each row over the classes its corpus labels only (one corpus,
            or corpora that all label the same classes: no change).
        nuisance: directions of corpus difference projected out (0: none; one corpus: none).
    """

    name: ClassVar[str] = ""
    default_training: ClassVar[dict] = CLOSED_FORM_TRAINING
    trains_on_variants: ClassVar[bool] = True
    """Augmented copies of a training clip are rows of their own (:func:`every_variant`)."""

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        c_grid: Sequence[float] = DEFAULT_C_GRID,
        calibrate: bool = True,
        choose_on: str = "speakers",
        balance: str = "classes",
        corpus_classes: bool = False,
        nuisance: int = 0,
    ) -> None:
        c_grid = [float(c) for c in c_grid]
        if not c_grid or any(not c > 0 for c in c_grid):
            raise ValueError(f"c_grid must hold positive numbers, not {c_grid}")
        if choose_on not in CHOOSE_ON:
            raise ValueError(f"choose_on must be one of {', '.join(CHOOSE_ON)}, not {choose_on!r}")
        if balance not in BALANCE:
            raise ValueError(f"balance must be one of {', '.join(BALANCE)}, not {balance!r}")
        hparams = {"c_grid": c_grid, "calibrate": bool(calibrate)}
        if choose_on != "speakers":  # older bundles say nothing: speakers
            hparams["choose_on"] = choose_on
        if balance != "classes":  # nor this: classes
            hparams["balance"] = balance
        if corpus_classes:  # nor this: false
            hparams["corpus_classes"] = True
        if int(nuisance) < 0:
            raise ValueError(f"nuisance must be a count of directions (>= 0), not {nuisance}")
        if nuisance:  # nor this: 0
            hparams["nuisance"] = int(nuisance)
        super().__init__(n_classes, in_shape, **hparams)
        self.c_grid, self.calibrate, self.choose_on = c_grid, bool(calibrate), choose_on
        self.balance, self.corpus_classes = balance, bool(corpus_classes)
        self.nuisance = int(nuisance)
        register_logistic(self, "", int(np.prod(in_shape)))
        self.register_buffer("penalty", torch.tensor(0.0))  # the C chosen
        self.register_buffer("temperature", torch.tensor(1.0))

    @property
    def n_parameters(self) -> int:
        """Numbers held: weights, intercepts and standardisation (and the dimensions head's)."""
        return sum(b.numel() for b in self.buffers()) + sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, S, F, T]`` features -> ``[B, n_classes]`` logits (divided by the temperature)."""
        return logistic_logits(self, "", frame_mean(x, mask)) / self.temperature

    # -- the arousal and valence head ----------------------------------------------------------
    def attach_dimensions(self, n: int = 2, seed: int = 0) -> None:
        """Add the dimensions head: ``n`` ridge regressions from the standardised summary (the
        classifier's own standardisation), fitted by :meth:`fit_dimensions`, zero until then.
        ``seed`` is unused (nothing random)."""
        head = nn.Linear(int(self.mean.numel()), n)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        head.requires_grad_(False)
        self.add_module("dimensions", head)

    def forward_with_dimensions(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the dimension scores ``[B, n]`` in [-1, 1], in one pass."""
        v = frame_mean(x, mask)
        z = (v - self.mean) / self.scale
        logits = logistic_logits(self, "", v) / self.temperature
        return logits, torch.tanh(self._modules["dimensions"](z))

    def fit_dimensions(
        self, train: DimensionSplit, val: DimensionSplit | None = None
    ) -> dict | None:
        """Fit the dimensions head (after :meth:`fit_closed_form`, whose standardisation it
        uses): per dimension, a ridge regression on the training rows whose target is known
        (every variant of an item a row with its target), fitted to ``atanh`` of the target
        (clipped to :data:`DIMS_TARGET_LIMIT`). The strength is the one of
        :data:`DIMS_ALPHA_GRID` whose fit on the training rows (standardised by their own
        statistics) gives the lowest mean squared error on the validation targets;
        :data:`DEFAULT_DIMS_ALPHA` without any. The head is then fitted on training and
        validation rows together.

        Returns:
            ``dims_alpha`` (the strength chosen) and, when chosen on validation targets,
            ``val_dims_mse`` (its error there, on the [-1, 1] scale).

        Raises:
            ValueError: the model has no dimensions head, or no training row has a target.
        """
        if "dimensions" not in self._modules:
            raise ValueError(f"{self.name}: no dimensions head (attach_dimensions first)")
        x_tr, t_tr = _dimension_rows(*train)
        if not np.isfinite(t_tr).any():
            raise ValueError(f"{self.name}: no training item has an arousal or valence target")
        x_va, t_va = _dimension_rows(*val) if val is not None and len(val[0]) else (None, None)
        has_val = t_va is not None and np.isfinite(t_va).any()
        out: dict = {}
        alpha = DEFAULT_DIMS_ALPHA
        if has_val:
            mean, scale = standardize_stats(x_tr)
            z_tr, z_va = (x_tr - mean) / scale, (x_va - mean) / scale
            errors = {}
            for a in DIMS_ALPHA_GRID:
                w, b = _ridge(z_tr, t_tr, a)
                errors[a] = _known_mse(np.tanh(z_va @ w.T + b), t_va)
            alpha = min(errors, key=errors.get)
            out["val_dims_mse"] = round(errors[alpha], 5)
            x_tr, t_tr = np.concatenate([x_tr, x_va]), np.concatenate([t_tr, t_va])
        z = (x_tr - self.mean.double().numpy()) / self.scale.double().numpy()
        w, b = _ridge(z, t_tr, alpha)
        head = self._modules["dimensions"]
        head.weight.copy_(torch.from_numpy(w).float())
        head.bias.copy_(torch.from_numpy(b).float())
        return {"dims_alpha": alpha, **out}

    def gradient_part(self) -> GradientPart | None:
        """None: fitted in closed form only (:meth:`fit_closed_form`)."""
        return None

    @torch.no_grad()
    def _logits(self, v: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(v, dtype=self.mean.dtype, device=self.mean.device)
        return logistic_logits(self, "", t).cpu().numpy()

    def fit_closed_form(
        self,
        train: Split,
        val: Split | None = None,
        progress: bool = True,
        corpora: Corpora | None = None,
    ) -> ClosedFormFit:
        """Choose ``C``, then refit on training + validation (each grid point a history row:
        ``epoch``, ``C``, ``val_ua``, ``n_train`` rows; a last ``refit`` row). Training items may
        be tuples of variants (every one a row).

        ``C`` is chosen on the validation speakers, or, with ``choose_on="corpora"`` and items
        of at least two ``corpora``, by holding each corpus out in turn (:meth:`_corpus_scores`).
        Validation speakers of several corpora: each corpus's UA joins the rows
        (``val_ua@<corpus>``), as the gradient trainer records it.

        Raises:
            ValueError: fewer than two classes in the training data.
        """
        (items, labels), (val_x, val_y) = train, val or (None, None)
        train_x, y_tr = every_variant(items, labels)
        x_tr = pool_utterances(train_x)
        if len(np.unique(y_tr)) < 2:
            raise ValueError(f"{self.name}: the training data hold a single class; need two")
        has_val = val_x is not None and val_y is not None and len(val_x) > 0
        x_va = pool_utterances(val_x) if has_val else np.zeros((0, x_tr.shape[1]))
        y_va = np.asarray(val_y, dtype=int) if has_val else np.zeros(0, dtype=int)
        rows = self._row_corpora(items, corpora, len(y_va))
        val_groups = corpora[1] if corpora and corpora[1] and has_val else None
        if val_groups is not None and len(val_groups) != len(y_va):
            raise ValueError("corpora must name the corpus of every validation item")
        held_out = rows if self.choose_on == "corpora" and rows is not None else None
        g_tr = None if rows is None else rows.groups[: len(y_tr)]
        history: list[dict] = []
        best_epoch, best_ua, c, temperature, best_scores = 0, None, DEFAULT_C, 1.0, None
        if held_out is not None or has_val:
            for k, cand in enumerate(self.c_grid, 1):
                t = time.time()
                if held_out is not None:
                    row = self._corpus_scores(x_tr, y_tr, x_va, y_va, held_out, cand)
                else:
                    self._fit(x_tr, y_tr, cand, g_tr)
                    scores = self._logits(x_va)
                    pred = scores.argmax(1)
                    row = {
                        "val_ua": 100.0 * unweighted_accuracy(y_va, pred, self.n_classes),
                        **ua_by_group(y_va, pred, val_groups, self.n_classes),
                    }
                history.append(
                    {"epoch": k, "C": cand, **row, "n_train": len(y_tr),
                     "seconds": round(time.time() - t, 3)}
                )  # fmt: skip
                if best_ua is None or row["val_ua"] > best_ua:
                    best_epoch, best_ua, c = k, row["val_ua"], cand
                    best_scores = scores if held_out is None else None
            for row in history:
                row["selected"] = int(row["epoch"] == best_epoch)
        if has_val:
            if self.calibrate:
                if best_scores is None:  # chosen by corpus: the validation speakers' scores
                    self._fit(x_tr, y_tr, c, g_tr)
                    best_scores = self._logits(x_va)
                temperature = fit_temperature(best_scores, y_va)
            x_tr, y_tr = np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va])
        t = time.time()
        self._fit(x_tr, y_tr, c, None if rows is None else rows.groups)
        self.penalty.fill_(c)
        self.temperature.fill_(temperature)
        history.append(
            {"epoch": len(history) + 1, "C": c, "refit": 1, "temperature": temperature,
             "seconds": round(time.time() - t, 3)}
        )  # fmt: skip
        self.eval()
        return ClosedFormFit(history=history, best_epoch=best_epoch, best_val_ua=best_ua)

    def _fit(self, x: np.ndarray, y: np.ndarray, c: float, groups: np.ndarray | None) -> None:
        """Fit the regression (``C`` = ``c``) on rows ``x, y`` of the corpora ``groups`` (``None``:
        one corpus), weighed by :attr:`balance`, masked by :attr:`corpus_classes`, and with
        :attr:`nuisance` directions of those corpora projected out."""
        names = None if groups is None else np.asarray([str(g) for g in groups])
        weight = corpus_balanced_draw(y, names) if self.balance == "corpora" else None
        mask = None
        if self.corpus_classes and names is not None:
            mask = corpus_class_mask(y, names, self.n_classes)  # None: every corpus has them all
        directions = None
        if self.nuisance and names is not None:
            mean, scale = standardize_stats(x)
            directions = nuisance_directions((x - mean) / scale, y, names, self.nuisance)
        fit_logistic(self, "", x, y, c, weight, mask, directions)

    def _row_corpora(self, items: Sequence, corpora: Corpora | None, n_val: int) -> HeldOut | None:
        """The corpus of every training row (variants repeated) and validation item, and which
        rows are originals, when a choice or a weighting by corpus needs them and two or more
        corpora are given."""
        needed = (
            self.choose_on == "corpora"
            or self.balance == "corpora"
            or self.corpus_classes
            or self.nuisance > 0
        )
        if not needed or corpora is None:
            return None
        counts = variant_counts(items)
        if len(corpora[0]) != len(counts) or (n_val and len(corpora[1] or ()) != n_val):
            raise ValueError("corpora must name the corpus of every training and validation item")
        rows = np.repeat(np.asarray(corpora[0], dtype=object), counts)
        groups = np.concatenate([rows, np.asarray(corpora[1] or [], dtype=object)[:n_val]])
        if len(set(groups)) < 2:
            return None
        original = np.zeros(len(rows), dtype=bool)
        original[np.cumsum([0, *counts[:-1]])] = True
        return HeldOut(groups, np.concatenate([original, np.ones(n_val, dtype=bool)]))

    def _corpus_scores(
        self,
        x_tr: np.ndarray,
        y_tr: np.ndarray,
        x_va: np.ndarray,
        y_va: np.ndarray,
        held_out: HeldOut,
        c: float,
    ) -> dict:
        """``val_ua``: the mean over the corpora of training and validation of the UA on each
        corpus's original clips of a regression (``C`` = ``c``) fitted on the other corpora,
        its answers restricted to the classes that corpus labels (``val_ua@<corpus>``: each)."""
        x, y = np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va])
        out = {}
        for corpus in sorted(set(held_out.groups)):
            inside = held_out.groups == corpus
            test = inside & held_out.original
            if len(np.unique(y[~inside])) < 2:
                continue
            self._fit(x[~inside], y[~inside], c, held_out.groups[~inside])
            own = np.unique(y[test])
            scores = self._logits(x[test])[:, own]
            pred = own[scores.argmax(1)]
            out[f"val_ua@{corpus}"] = 100.0 * unweighted_accuracy(y[test], pred, self.n_classes)
        return {"val_ua": float(np.mean(list(out.values()))), **out}


def _dimension_rows(items: Sequence, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled rows (every variant of an item one row) and their ``[N, D]`` targets."""
    targets = np.asarray(targets, dtype=np.float64)
    if len(targets) != len(items):
        raise ValueError(f"{len(items)} items but {len(targets)} dimension targets")
    rows, index = every_variant(items, np.arange(len(items)))
    return pool_utterances(rows), targets[index]


def _ridge(z: np.ndarray, targets: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``[D_out, D]`` and biases ``[D_out]`` of one ridge regression per target column,
    each on the rows where it is known, fitted to ``atanh`` of the clipped target (a column
    never known gets zeros)."""
    w = np.zeros((targets.shape[1], z.shape[1]))
    b = np.zeros(targets.shape[1])
    for d in range(targets.shape[1]):
        known = np.isfinite(targets[:, d])
        if not known.any():
            continue
        zk = z[known]
        a = np.arctanh(np.clip(targets[known, d], -DIMS_TARGET_LIMIT, DIMS_TARGET_LIMIT))
        z_mean, a_mean = zk.mean(axis=0), a.mean()
        zc = zk - z_mean
        gram = zc.T @ zc + alpha * np.eye(z.shape[1])
        w[d] = np.linalg.solve(gram, zc.T @ (a - a_mean))
        b[d] = a_mean - z_mean @ w[d]
    return w, b


def _known_mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over the known (finite) entries of ``target``."""
    known = np.isfinite(target)
    return float(np.mean((pred[known] - target[known]) ** 2)) if known.any() else float("nan")


class EncoderLR(LogisticModel):
    """``encoder-lr``: logistic regression on a pretrained speech encoder's layer, pooled over
    the utterance (``encoder-pooled``; the encoder's folder is ``--feature-param path=DIR``)."""

    name = "encoder-lr"
    default_feature: ClassVar[dict] = {"name": "encoder-pooled"}
