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

With augmented training copies (``--train-param augment=... --train-param augment_copies=N``)
every copy of a training clip is a row of its own, with the clip's label (the features of noisy,
band-limited or clipped copies teach the regression what does not change the emotion); the
validation speakers are scored on their original clips only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from emovox.metrics import unweighted_accuracy
from emovox.models.base import ClosedFormFit, GradientPart, SERModel, Split, every_variant
from emovox.models.linear import (
    CLOSED_FORM_TRAINING,
    fit_logistic,
    frame_mean,
    logistic_logits,
    register_logistic,
)
from emovox.models.svm import fit_temperature, pool_utterances

DEFAULT_C_GRID = (0.001, 0.01, 0.1, 1.0)
"""Inverse L2 strengths tried on the validation speakers."""
DEFAULT_C = 0.01


class LogisticModel(SERModel):
    """A logistic regression on the frame mean of any feature (``[S, F, T]`` -> ``S * F``).

    Args:
        n_classes: emotion classes (classes missing from the training data are never predicted).
        in_shape: ``(streams, bins)`` of the feature.
        c_grid: the values of ``C`` tried on the validation speakers.
        calibrate: fit a softmax temperature on the validation speakers.
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
    ) -> None:
        c_grid = [float(c) for c in c_grid]
        if not c_grid or any(not c > 0 for c in c_grid):
            raise ValueError(f"c_grid must hold positive numbers, not {c_grid}")
        super().__init__(n_classes, in_shape, c_grid=c_grid, calibrate=bool(calibrate))
        self.c_grid, self.calibrate = c_grid, bool(calibrate)
        register_logistic(self, "", int(np.prod(in_shape)))
        self.register_buffer("penalty", torch.tensor(0.0))  # the C chosen
        self.register_buffer("temperature", torch.tensor(1.0))

    @property
    def n_parameters(self) -> int:
        """Numbers held: weights, intercepts and standardisation."""
        return sum(b.numel() for b in self.buffers())

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, S, F, T]`` features -> ``[B, n_classes]`` logits (divided by the temperature)."""
        return logistic_logits(self, "", frame_mean(x, mask)) / self.temperature

    def gradient_part(self) -> GradientPart | None:
        """None: fitted in closed form only (:meth:`fit_closed_form`)."""
        return None

    @torch.no_grad()
    def _logits(self, v: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(v, dtype=self.mean.dtype, device=self.mean.device)
        return logistic_logits(self, "", t).cpu().numpy()

    def fit_closed_form(
        self, train: Split, val: Split | None = None, progress: bool = True
    ) -> ClosedFormFit:
        """Choose ``C`` on the validation set, then refit on training + validation (each grid
        point a history row: ``epoch``, ``C``, ``val_ua``, ``n_train`` rows; a last ``refit``
        row). Training items may be tuples of variants (every one a row).

        Raises:
            ValueError: fewer than two classes in the training data.
        """
        (train_x, train_y), (val_x, val_y) = every_variant(*train), val or (None, None)
        x_tr, y_tr = pool_utterances(train_x), train_y
        if len(np.unique(y_tr)) < 2:
            raise ValueError(f"{self.name}: the training data hold a single class; need two")
        history: list[dict] = []
        best_epoch, best_ua, c, temperature = 0, None, DEFAULT_C, 1.0
        if val_x is not None and val_y is not None and len(val_x) > 0:
            x_va, y_va = pool_utterances(val_x), np.asarray(val_y, dtype=int)
            best_scores = None
            for k, cand in enumerate(self.c_grid, 1):
                t = time.time()
                fit_logistic(self, "", x_tr, y_tr, cand)
                scores = self._logits(x_va)
                ua = 100.0 * unweighted_accuracy(y_va, scores.argmax(1), self.n_classes)
                history.append(
                    {"epoch": k, "C": cand, "val_ua": ua, "n_train": len(y_tr),
                     "seconds": round(time.time() - t, 3)}
                )  # fmt: skip
                if best_ua is None or ua > best_ua:
                    best_epoch, best_ua, c, best_scores = k, ua, cand, scores
            for row in history:
                row["selected"] = int(row["epoch"] == best_epoch)
            if self.calibrate:
                temperature = fit_temperature(best_scores, y_va)
            x_tr, y_tr = np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va])
        t = time.time()
        fit_logistic(self, "", x_tr, y_tr, c)
        self.penalty.fill_(c)
        self.temperature.fill_(temperature)
        history.append(
            {"epoch": len(history) + 1, "C": c, "refit": 1, "temperature": temperature,
             "seconds": round(time.time() - t, 3)}
        )  # fmt: skip
        self.eval()
        return ClosedFormFit(history=history, best_epoch=best_epoch, best_val_ua=best_ua)


class EncoderLR(LogisticModel):
    """``encoder-lr``: logistic regression on a pretrained speech encoder's layer, pooled over
    the utterance (``encoder-pooled``; the encoder's folder is ``--feature-param path=DIR``)."""

    name = "encoder-lr"
    default_feature: ClassVar[dict] = {"name": "encoder-pooled"}
