"""Classical baselines: an RBF support vector machine on utterance vectors, run by torch.

``egemaps-svm`` (openSMILE eGeMAPS functionals) and ``librosa-stats-svm`` (mean MFCC, chroma and
mel) are scikit-learn's ``SVC(kernel="rbf", class_weight="balanced")`` on standardised features.
The SVM is fitted by scikit-learn; the fitted machine (standardisation, support vectors, dual
coefficients, intercepts, gamma) is then held in torch buffers, and :meth:`SVMModel.forward`
computes its decision function in torch. So bundles stay safetensors + JSON, and prediction,
evaluation, the :class:`~emovox.inference.recognizer.Recognizer` and the ONNX export work as for
networks.

Scores: the one-vs-one decisions aggregated to one score per class exactly as scikit-learn's
``decision_function`` (``decision_function_shape="ovr"``) does: each class's votes plus a
tie-break in (-1/3, 1/3) from the summed pair decisions; the arg-max is
``SVC(break_ties=True).predict``. A class absent from the training data scores -1 (never chosen).
The logits are these scores divided by a temperature fitted on the validation speakers (softmax
probabilities with minimal validation log-loss); without validation speakers it is 1.

Training (:meth:`SVMModel.fit_closed_form`, called by the training pipeline instead of the
gradient trainer): each ``(C, gamma)`` of the grid is fitted on the training speakers and scored
(UA) on the validation speakers; the best is refitted on all of them. The test fold is never seen.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from emovox.metrics import unweighted_accuracy
from emovox.models.base import ClosedFormFit, Corpora, GradientPart, SERModel, Split
from emovox.models.linear import CLOSED_FORM_TRAINING, frame_mean, standardize_stats
from emovox.progress import console

DEFAULT_C_GRID = (0.1, 1.0, 10.0, 100.0)
DEFAULT_GAMMA_GRID: tuple[float | str, ...] = ("scale",)
CLASS_WEIGHTS = ("balanced", None)
TEMPERATURE_BOUNDS = (0.02, 50.0)

_FITTED = ("support", "pair_weights", "intercept", "pair_pos", "pair_neg")
"""Buffers whose sizes depend on the fit (number of support vectors, of classes seen)."""


def pool_utterances(xs: Sequence[np.ndarray]) -> np.ndarray:
    """``[N, S*F]`` float64: each ``[S, F, T]`` array averaged over its frames, then flattened."""
    if len(xs) == 0:
        raise ValueError("no utterances to fit on")
    return np.stack([np.asarray(a, dtype=np.float64).mean(axis=-1).reshape(-1) for a in xs])


class SVMModel(SERModel):
    """An RBF-kernel SVM (one-vs-one, scikit-learn's ``SVC``) evaluated in torch.

    Args:
        n_classes: number of classes of the model (classes missing from the training data are
            allowed and never predicted).
        in_shape: ``(streams, bins)`` of the feature; frames are averaged.
        c_grid: the values of ``C`` tried on the validation speakers.
        gamma_grid: the kernel widths tried: ``"scale"`` (``1 / (D * var)`` of the standardised
            training data, scikit-learn's default) or positive numbers.
        class_weight: ``"balanced"`` (weights inversely proportional to class frequencies) or
            ``None``.
        calibrate: fit a softmax temperature on the validation speakers.
    """

    name: ClassVar[str] = ""
    default_training: ClassVar[dict] = CLOSED_FORM_TRAINING

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        c_grid: Sequence[float] = DEFAULT_C_GRID,
        gamma_grid: Sequence[float | str] = DEFAULT_GAMMA_GRID,
        class_weight: str | None = "balanced",
        calibrate: bool = True,
    ) -> None:
        c_grid = [float(c) for c in c_grid]
        gamma_grid = [g if isinstance(g, str) else float(g) for g in gamma_grid]
        if not c_grid or any(not c > 0 for c in c_grid):
            raise ValueError(f"c_grid must hold positive numbers, not {c_grid}")
        if not gamma_grid or any(
            (isinstance(g, str) and g != "scale") or (not isinstance(g, str) and not g > 0)
            for g in gamma_grid
        ):
            raise ValueError(f"gamma_grid must hold 'scale' or positive numbers, not {gamma_grid}")
        if class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be one of {CLASS_WEIGHTS}, not {class_weight!r}")
        super().__init__(
            n_classes,
            in_shape,
            c_grid=c_grid,
            gamma_grid=gamma_grid,
            class_weight=class_weight,
            calibrate=bool(calibrate),
        )
        self.c_grid, self.gamma_grid = c_grid, gamma_grid
        self.class_weight, self.calibrate = class_weight, bool(calibrate)
        dim = int(np.prod(in_shape))
        f64 = torch.float64
        self.register_buffer("mean", torch.zeros(dim, dtype=f64))
        self.register_buffer("scale", torch.ones(dim, dtype=f64))
        self.register_buffer("support", torch.zeros(0, dim, dtype=f64))
        self.register_buffer("pair_weights", torch.zeros(0, 0, dtype=f64))
        self.register_buffer("intercept", torch.zeros(0, dtype=f64))
        self.register_buffer("pair_pos", torch.zeros(0, n_classes, dtype=f64))
        self.register_buffer("pair_neg", torch.zeros(0, n_classes, dtype=f64))
        self.register_buffer("class_offset", torch.zeros(n_classes, dtype=f64))
        self.register_buffer("gamma", torch.tensor(1.0, dtype=f64))
        self.register_buffer("penalty", torch.tensor(0.0, dtype=f64))  # the C chosen
        self.register_buffer("temperature", torch.tensor(1.0, dtype=f64))

    # -- inference ------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        """Whether the model holds a fitted SVM (an unfitted one scores every class 0)."""
        return self.support.shape[0] > 0

    @property
    def n_parameters(self) -> int:
        """Numbers held: support vectors, pair weights, intercepts and standardisation."""
        return sum(b.numel() for b in self.buffers())

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, S, F, T]`` features -> ``[B, n_classes]`` logits (scores / temperature)."""
        v = frame_mean(x, mask).to(self.support.dtype)
        return (self.scores(v) / self.temperature).to(x.dtype)

    def scores(self, v: torch.Tensor) -> torch.Tensor:
        """scikit-learn's one-vs-rest ``decision_function`` of pooled vectors ``[B, D]``."""
        z = (v - self.mean) / self.scale
        sv = self.support
        d2 = (z * z).sum(1, keepdim=True) + (sv * sv).sum(1)[None, :] - 2.0 * z @ sv.T
        kernel = torch.exp(-self.gamma * d2.clamp(min=0.0))
        dec = kernel @ self.pair_weights + self.intercept  # [B, pairs], > 0: the pair's first
        first = (dec >= 0).to(dec.dtype)
        votes = first @ self.pair_pos + (1.0 - first) @ self.pair_neg
        confidence = dec @ (self.pair_pos - self.pair_neg)
        return votes + confidence / (3.0 * (confidence.abs() + 1.0)) + self.class_offset

    @torch.no_grad()
    def decision_function(self, xs: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Scores ``[N, n_classes]`` (before the temperature) of ``[N, D]`` vectors or of a list
        of ``[S, F, T]`` feature arrays."""
        v = pool_utterances(xs) if not isinstance(xs, np.ndarray) or xs.ndim != 2 else xs
        t = torch.as_tensor(v, dtype=self.support.dtype, device=self.support.device)
        return self.scores(t).cpu().numpy()

    # -- loading a fitted SVM -------------------------------------------------------------------
    def set_svm(
        self, svc: Any, mean: np.ndarray, scale: np.ndarray, temperature: float = 1.0
    ) -> None:
        """Hold a fitted ``sklearn.svm.SVC`` (RBF kernel, labels among ``0..n_classes-1``) that
        was fitted on ``(x - mean) / scale``."""
        if getattr(svc, "kernel", None) != "rbf":
            raise ValueError("only an RBF-kernel SVC can be held")
        classes = [int(c) for c in svc.classes_]
        if any(c < 0 or c >= self.n_classes for c in classes):
            raise ValueError(f"the SVC's classes {classes} are not among 0..{self.n_classes - 1}")
        dim = self.mean.shape[0]
        sv = np.asarray(svc.support_vectors_, dtype=np.float64)
        if sv.shape[1] != dim:
            raise ValueError(f"the SVC was fitted on {sv.shape[1]} values, the model takes {dim}")
        coef = np.asarray(svc.dual_coef_, dtype=np.float64)
        intercept = np.asarray(svc.intercept_, dtype=np.float64)
        if len(classes) == 2:  # scikit-learn flips the signs of a binary SVC's public attributes
            coef, intercept = -coef, -intercept
        starts = np.concatenate([[0], np.cumsum(svc.n_support_)])
        pairs = list(itertools.combinations(range(len(classes)), 2))
        weights = np.zeros((sv.shape[0], len(pairs)))
        pos = np.zeros((len(pairs), self.n_classes))
        neg = np.zeros((len(pairs), self.n_classes))
        for k, (i, j) in enumerate(pairs):
            rows_i = slice(starts[i], starts[i + 1])
            rows_j = slice(starts[j], starts[j + 1])
            weights[rows_i, k] = coef[j - 1, rows_i]
            weights[rows_j, k] = coef[i, rows_j]
            pos[k, classes[i]] = 1.0
            neg[k, classes[j]] = 1.0
        gamma = svc._gamma if isinstance(svc.gamma, str) else float(svc.gamma)
        offset = np.full(self.n_classes, -1.0)
        offset[classes] = 0.0
        values = {
            "mean": mean,
            "scale": scale,
            "support": sv,
            "pair_weights": weights,
            "intercept": intercept,
            "pair_pos": pos,
            "pair_neg": neg,
            "class_offset": offset,
            "gamma": gamma,
            "penalty": float(svc.C),
            "temperature": float(temperature),
        }
        device = self.mean.device
        for name, value in values.items():
            setattr(self, name, torch.as_tensor(value, dtype=torch.float64, device=device))

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        """Resize the fit-dependent buffers to the stored ones before loading them."""
        shapes = {
            n: tuple(state_dict[prefix + n].shape) for n in _FITTED if prefix + n in state_dict
        }
        if len(shapes) == len(_FITTED):
            problem = self._shape_problem(shapes)
            if problem:
                error_msgs.append(f"{self.name}: {problem}")
            else:
                for n, shape in shapes.items():
                    setattr(self, n, getattr(self, n).new_zeros(shape))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _shape_problem(self, shapes: dict[str, tuple[int, ...]]) -> str | None:
        dim, c = self.mean.shape[0], self.n_classes
        n_sv = shapes["support"][0]
        n_pairs = shapes["intercept"][0] if len(shapes["intercept"]) == 1 else -1
        expected = {
            "support": (n_sv, dim),
            "pair_weights": (n_sv, n_pairs),
            "intercept": (n_pairs,),
            "pair_pos": (n_pairs, c),
            "pair_neg": (n_pairs, c),
        }
        bad = [f"{n} {shapes[n]} != {want}" for n, want in expected.items() if shapes[n] != want]
        return "inconsistent SVM buffers: " + "; ".join(bad) if bad else None

    # -- training -------------------------------------------------------------------------------
    def gradient_part(self) -> GradientPart | None:
        """None: an SVM is fitted in closed form only (:meth:`fit_closed_form`)."""
        return None

    def fit_closed_form(
        self,
        train: Split,
        val: Split | None = None,
        progress: bool = True,
        corpora: Corpora | None = None,
    ) -> ClosedFormFit:
        """Choose ``(C, gamma)`` on the validation set, then refit on training + validation.

        Each grid point is one row of the returned history (``epoch`` = its number, ``C``,
        ``gamma``, ``val_ua`` in %, ``n_support``); ``best_epoch`` is the chosen row. A last row
        (``refit`` = 1) is the final fit on all the data given. Without validation data the SVM
        is fitted once with ``C`` = 1 and ``gamma`` = ``"scale"``. (The split into training and
        validation speakers was made by the caller.)

        Raises:
            ValueError: fewer than two classes in the training data.
        """
        (train_x, train_y), (val_x, val_y) = train, val or (None, None)
        x_tr, y_tr = pool_utterances(train_x), np.asarray(train_y, dtype=int)
        has_val = val_x is not None and val_y is not None and len(val_x) > 0
        history: list[dict] = []
        best_epoch, best_ua, temperature = 0, None, 1.0
        choice: tuple[float, float | str] = (1.0, "scale")
        if has_val:
            x_va, y_va = pool_utterances(val_x), np.asarray(val_y, dtype=int)
            best_scores = None
            for k, (c, g) in enumerate(itertools.product(self.c_grid, self.gamma_grid), 1):
                t = time.time()
                self._fit(x_tr, y_tr, c, g)
                scores = self.decision_function(x_va)
                ua = 100.0 * unweighted_accuracy(y_va, scores.argmax(1), self.n_classes)
                history.append(self._row(k, c, g, ua, time.time() - t))
                if best_ua is None or ua > best_ua:
                    best_epoch, best_ua, choice, best_scores = k, ua, (c, g), scores
                if progress:
                    console.log(f"SVM C={c:g} gamma={history[-1]['gamma']:.3g}: val UA {ua:.1f}")
            for row in history:
                row["selected"] = int(row["epoch"] == best_epoch)
            if self.calibrate:
                temperature = fit_temperature(best_scores, y_va)
            x_tr, y_tr = np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va])
        t = time.time()
        self._fit(x_tr, y_tr, *choice, temperature=temperature)
        history.append({**self._row(len(history) + 1, *choice, None, time.time() - t), "refit": 1})
        history[-1]["temperature"] = temperature
        if progress:
            console.log(
                f"SVM refitted on {len(y_tr)} utterances with C={choice[0]:g} "
                f"gamma={float(self.gamma):.3g} ({int(self.support.shape[0])} support vectors)"
            )
        self.eval()
        return ClosedFormFit(history=history, best_epoch=best_epoch, best_val_ua=best_ua)

    def _row(self, k: int, c: float, g: float | str, ua: float | None, seconds: float) -> dict:
        row: dict = {"epoch": k, "C": c, "gamma": float(self.gamma), "gamma_spec": str(g)}
        if ua is not None:
            row["val_ua"] = ua
        row.update(n_support=int(self.support.shape[0]), seconds=round(seconds, 3))
        return row

    def _fit(
        self, x: np.ndarray, y: np.ndarray, c: float, g: float | str, temperature: float = 1.0
    ) -> None:
        from sklearn.svm import SVC

        if len(np.unique(y)) < 2:
            raise ValueError(
                f"{self.name or 'SVM'}: the training data hold a single class; an SVM needs two"
            )
        mean, scale = standardize_stats(x)
        z = (x - mean) / scale
        if g == "scale":
            var = float(z.var())
            g = 1.0 / (z.shape[1] * var) if var > 0 else 1.0
        svc = SVC(C=c, kernel="rbf", gamma=float(g), class_weight=self.class_weight)
        svc.fit(z, y)
        self.set_svm(svc, mean, scale, temperature)


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """The temperature ``T`` minimising the log-loss of ``softmax(scores / T)`` on labels ``y``."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=int)

    def loss(log_t: float) -> float:
        return float(-log_softmax(s / math.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    lo, hi = (math.log(b) for b in TEMPERATURE_BOUNDS)
    return float(math.exp(minimize_scalar(loss, bounds=(lo, hi), method="bounded").x))


class EGeMAPSSVM(SVMModel):
    """``egemaps-svm``: RBF SVM on openSMILE eGeMAPS v02 functionals (88 values)."""

    name = "egemaps-svm"
    default_feature: ClassVar[dict] = {"name": "egemaps"}


class LibrosaStatsSVM(SVMModel):
    """``librosa-stats-svm``: RBF SVM on mean MFCC (40), chroma (12) and mel power (128)."""

    name = "librosa-stats-svm"
    default_feature: ClassVar[dict] = {"name": "librosa-stats"}


class EncoderSVM(SVMModel):
    """``encoder-svm``: RBF SVM on a pretrained speech encoder's frames pooled over the
    utterance (``encoder-pooled``: mean and standard deviation of one layer); the encoder's
    folder is a feature setting (``--feature-param path=DIR``)."""

    name = "encoder-svm"
    default_feature: ClassVar[dict] = {"name": "encoder-pooled"}
