"""``cnn-egemaps`` / ``cnn-functionals``: late fusion of the ``cnn`` on log-mel and a logistic
regression on utterance functionals (openSMILE's eGeMAPS, or emovox's fast torch-native set).

Two views of an utterance that make different mistakes: the CNN reads the spectro-temporal
pattern of the log-mel, the logistic regression reads utterance functionals (pitch, loudness,
voice quality, spectral balance, voicing rates): the 88 eGeMAPS values of openSMILE in
``cnn-egemaps`` (input feature ``logmel-egemaps``), the 198 of
:mod:`emovox.features.functionals` in ``cnn-functionals`` (``logmel-functionals``, ten times
faster to compute). Either feature stacks the functionals under the log-mel bins; the model's
output is the log of ``(1 - w) * p_cnn + w * p_lr``, so ``softmax(output)`` is the weighted mean
probability.

Training (the model contract, :mod:`emovox.models.base`): the logistic
regression is fitted in closed form by scikit-learn (L2, ``C``, class-balanced) on the standardised
functionals, and held in torch buffers (scaler, weights, intercepts: safetensors like any
weights); the CNN is trained by the gradient :class:`~emovox.train.trainer.Trainer` on the log-mel
bins alone, with the training settings given. Neither branch sees the other's errors.

The recipe expects per-speaker normalisation (``speaker_norm``): the functionals are then
z-scores within each speaker, which removes most of what differs between voices and recording
set-ups. On a single utterance without its speaker's statistics the normalised functionals are
all zero and the regression falls back to its class prior, so the CNN decides alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from emovox.features.egemaps import EGEMAPS_DIM
from emovox.features.functionals import FUNCTIONALS_DIM
from emovox.models.base import (
    LOGMEL_FEATURE,
    TRAINING_RECIPE,
    ClosedFormFit,
    Corpora,
    GradientPart,
    SERModel,
    Split,
    every_variant,
)
from emovox.models.cnn import CNN
from emovox.models.linear import fit_logistic, logistic_logits, register_logistic


class CNNEGeMAPS(SERModel):
    """``cnn`` on the first ``in_shape[1] - n_functionals`` bins, logistic regression on the rest.

    Args:
        n_classes: emotion classes.
        in_shape: ``(streams, n_mels + n_functionals)`` of the ``logmel-egemaps`` feature.
        n_functionals: bins at the bottom holding the utterance's functionals (default: the
            class's :attr:`default_functionals`, 88 here).
        weight: the regression's share ``w`` of the fused probability.
        C: inverse L2 strength of the regression (scikit-learn's ``C``; default
            :attr:`default_C`).
        cnn: the ``cnn``'s own parameters (``channels``, ``dropout``, ``freq_pool``).
    """

    name: ClassVar[str] = "cnn-egemaps"
    trains_on_variants: ClassVar[bool] = True
    """Training items may be tuples of augmented variants (see :meth:`fit_arrays`)."""
    default_feature: ClassVar[dict] = {**LOGMEL_FEATURE, "name": "logmel-egemaps"}
    default_functionals: ClassVar[int] = 88
    default_C: ClassVar[float] = 0.1
    regression_name: ClassVar[str] = "egemaps-lr"
    """The regression branch's name in :meth:`components` (and in evaluation reports)."""
    default_training: ClassVar[dict] = {
        **TRAINING_RECIPE,
        "epochs": 120,
        "speaker_norm": True,
        "val_fraction": 0.0,
    }

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        n_functionals: int | None = None,
        weight: float = 0.5,
        C: float | None = None,
        cnn: dict | None = None,
    ) -> None:
        streams, bins = in_shape
        n_functionals = self.default_functionals if n_functionals is None else int(n_functionals)
        C = self.default_C if C is None else C
        if not 0 < n_functionals < bins:
            raise ValueError(f"n_functionals must be in 1..{bins - 1} for {bins} bins")
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], not {weight}")
        if C <= 0:
            raise ValueError(f"C must be positive, not {C}")
        cnn = dict(cnn or {})
        super().__init__(
            n_classes, in_shape, n_functionals=n_functionals, weight=weight, C=C, cnn=cnn
        )
        self.n_mels = bins - n_functionals
        self.weight = float(weight)
        self.C = float(C)
        self.cnn = CNN(n_classes, (streams, self.n_mels), **cnn)
        register_logistic(self, "", n_functionals)

    # -- inference ----------------------------------------------------------------------------
    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, S, n_mels + D, T]`` -> the log-mel ``[B, S, n_mels, T]`` and the functionals
        ``[B, D]`` (first stream, first frame: every valid frame holds the same values)."""
        return x[:, :, : self.n_mels, :], x[:, 0, self.n_mels :, 0]

    def functionals_of(self, items: Sequence[np.ndarray]) -> np.ndarray:
        """The ``[N, D]`` functionals of ``logmel-egemaps`` arrays ``[S, n_mels + D, T]``."""
        return np.stack([np.asarray(a)[0, self.n_mels :, 0] for a in items])

    def regression_logits(self, functionals: torch.Tensor) -> torch.Tensor:
        """The logistic regression's logits ``[B, n_classes]``."""
        return logistic_logits(self, "", functionals)

    def branch_probabilities(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> list[tuple[float, torch.Tensor]]:
        """``(weight, probabilities [B, n_classes])`` of every branch; the weights sum to 1."""
        spec, func = self.split(x)
        p_cnn = torch.softmax(self.cnn(spec, mask).float(), dim=1)
        p_lr = torch.softmax(self.regression_logits(func.float()), dim=1)
        return [(1.0 - self.weight, p_cnn), (self.weight, p_lr)]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        fused = sum(w * p for w, p in self.branch_probabilities(x, mask))
        return torch.log(fused.clamp_min(1e-12))

    def components(self) -> dict[str, nn.Module]:
        """Each branch on its own, as a model of the same input (for ablations): ``cnn`` and
        the regression (:attr:`regression_name`)."""
        return {"cnn": _Branch(self, "cnn"), self.regression_name: _Branch(self, "regression")}

    # -- training -----------------------------------------------------------------------------
    def fit_regression(self, functionals: np.ndarray, y: np.ndarray) -> None:
        """Fit the logistic regression on ``[N, D]`` functionals (classes absent from ``y`` get
        a very low intercept, so they are never predicted by it)."""
        fit_logistic(self, "", functionals, y, self.C)

    def gradient_part(self) -> GradientPart:
        """The CNN, on the log-mel bins of each input (the regression is fitted in closed form)."""
        return GradientPart(self.cnn, lambda a: np.asarray(a)[:, : self.n_mels])

    def fit_closed_form(
        self,
        train: Split,
        val: Split | None = None,
        progress: bool = True,
        corpora: Corpora | None = None,
    ) -> ClosedFormFit:
        """Fit the regression on every variant of every training item (the CNN is trained
        afterwards by the gradient trainer, on :meth:`gradient_part`).

        Raises:
            ValueError: fewer than two classes in the training data.
        """
        rows, y = every_variant(*train)
        if len(np.unique(y)) < 2:
            raise ValueError(f"{self.name} needs at least two classes in the training data")
        self.fit_regression(self.functionals_of(rows), y)
        return ClosedFormFit()


class CNNFunctionals(CNNEGeMAPS):
    """``cnn-functionals``: the same late fusion with the fast torch-native functionals.

    The regression reads the 198 values of :class:`~emovox.features.functionals.Functionals`
    (pitch, loudness, voice quality, spectral balance, rhythm, log-mel band statistics), stacked
    under the log-mel by the ``logmel-functionals`` feature, instead of openSMILE's eGeMAPS: about
    4.5 ms per 3-s utterance on one core instead of 50, so the whole model answers in real time.
    ``C`` = 0.03 was chosen on the validation actors of the six EmoBox folds (``benchmarks/
    dev_sweep.py functionals``), as eGeMAPS' 0.1 was.
    """

    name: ClassVar[str] = "cnn-functionals"
    default_feature: ClassVar[dict] = {**LOGMEL_FEATURE, "name": "logmel-functionals"}
    default_functionals: ClassVar[int] = FUNCTIONALS_DIM
    default_C: ClassVar[float] = 0.03
    regression_name: ClassVar[str] = "functionals-lr"


class CNNFunctionalsEGeMAPS(CNNFunctionals):
    """``cnn-functionals-egemaps``: three views, the CNN and one regression on each functional set.

    The input (``logmel-functionals-egemaps``) stacks the fast functionals and then openSMILE's 88
    eGeMAPS values under the log-mel; each set gets its own class-balanced logistic regression
    (``C`` and ``second_C``), and the output is the log of ``(1 - w - w2) p_cnn + w p_fast +
    w2 p_egemaps``, by default the plain mean of the three (on the validation actors of the six
    EmoBox folds: 77.2 % UA; 0.4 / 0.3 / 0.3: 77.1; 0.5 / 0.25 / 0.25: 76.2). The two sets
    overlap in what they describe but are computed differently (pitch tracker, loudness model,
    formants only in eGeMAPS), and on the validation actors their regressions err on different
    utterances. The most accurate emovox model, not a real-time one: openSMILE takes about 50 ms
    per 3-s utterance on one core.

    Args:
        weight, C: the fast functionals' regression (share and ``C``).
        second_dim: how many of the last functional bins are the second set (88 eGeMAPS values).
        second_weight, second_C: the second regression's share and ``C``.
    """

    name: ClassVar[str] = "cnn-functionals-egemaps"
    default_feature: ClassVar[dict] = {**LOGMEL_FEATURE, "name": "logmel-functionals-egemaps"}
    default_functionals: ClassVar[int] = FUNCTIONALS_DIM + EGEMAPS_DIM
    second_name: ClassVar[str] = "egemaps-lr"

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        n_functionals: int | None = None,
        weight: float = 1.0 / 3.0,
        C: float | None = None,
        cnn: dict | None = None,
        second_dim: int = EGEMAPS_DIM,
        second_weight: float = 1.0 / 3.0,
        second_C: float = 0.1,
    ) -> None:
        super().__init__(n_classes, in_shape, n_functionals, weight, C, cnn)
        total = int(self.hparams["n_functionals"])
        if not 0 < second_dim < total:
            raise ValueError(f"second_dim must be in 1..{total - 1}, not {second_dim}")
        if not 0.0 <= second_weight <= 1.0 - self.weight:
            raise ValueError(
                f"second_weight must be in [0, {1.0 - self.weight:g}] (the weights share 1), "
                f"not {second_weight}"
            )
        if second_C <= 0:
            raise ValueError(f"second_C must be positive, not {second_C}")
        self.hparams.update(second_dim=second_dim, second_weight=second_weight, second_C=second_C)
        self.first_dim = total - second_dim
        self.second_weight = float(second_weight)
        self.second_C = float(second_C)
        register_logistic(self, "", self.first_dim)  # replaces the parent's full-width one
        register_logistic(self, "second_", second_dim)

    def regression_logits(self, functionals: torch.Tensor) -> torch.Tensor:
        """The first regression's logits (on the first ``D - second_dim`` functionals)."""
        return super().regression_logits(functionals[:, : self.first_dim])

    def second_logits(self, functionals: torch.Tensor) -> torch.Tensor:
        """The second regression's logits (on the last ``second_dim`` functionals)."""
        return logistic_logits(self, "second_", functionals[:, self.first_dim :])

    def branch_probabilities(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> list[tuple[float, torch.Tensor]]:
        (_, p_cnn), (w, p_lr) = super().branch_probabilities(x, mask)
        p_second = torch.softmax(self.second_logits(self.split(x)[1].float()), dim=1)
        w2 = self.second_weight
        return [(1.0 - w - w2, p_cnn), (w, p_lr), (w2, p_second)]

    def components(self) -> dict[str, nn.Module]:
        """``cnn``, ``functionals-lr`` and ``egemaps-lr``, each on its own."""
        return {**super().components(), self.second_name: _Branch(self, "second")}

    def fit_regression(self, functionals: np.ndarray, y: np.ndarray) -> None:
        """Fit both regressions, each on its own set of the ``[N, D]`` functionals."""
        x = np.asarray(functionals)
        fit_logistic(self, "", x[:, : self.first_dim], y, self.C)
        fit_logistic(self, "second_", x[:, self.first_dim :], y, self.second_C)


class _Branch(nn.Module):
    """One branch of a :class:`CNNEGeMAPS`, reading the same ``logmel-egemaps`` input."""

    def __init__(self, fusion: CNNEGeMAPS, which: str) -> None:
        super().__init__()
        self.n_classes = fusion.n_classes
        self.which = which
        self.fusion = [fusion]  # a list: not registered as a sub-module (no second copy)

    def train(self, mode: bool = True) -> _Branch:
        self.fusion[0].train(mode)
        return super().train(mode)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        fusion = self.fusion[0]
        spec, func = fusion.split(x)
        if self.which == "cnn":
            return fusion.cnn(spec, mask)
        if self.which == "second":
            return fusion.second_logits(func.float())
        return fusion.regression_logits(func.float())
