"""The Python API for prediction: ``Recognizer.load(path).predict(...)``.

The CLI, and later the server and the live mode, are thin shells over this class.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from emovox.audio import AudioError, prepare_array
from emovox.bundle import Bundle, load_bundle
from emovox.training import predict_proba

AudioInput = str | os.PathLike | np.ndarray


@dataclasses.dataclass
class Prediction:
    """The emotion of one input: the label and every class's probability.

    ``error`` is set (and ``label`` is ``None``) when the input could not be read.
    """

    source: str
    label: str | None
    probabilities: dict[str, float]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Recognizer:
    """A loaded model bundle, ready to predict (scikit-learn style ``predict``/``predict_proba``).

    Args:
        bundle: the loaded bundle.
        labels: restrict predictions to these classes (probabilities renormalised over them).
    """

    def __init__(self, bundle: Bundle, labels: Sequence[str] | None = None) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.feature = bundle.feature
        self._keep = self._resolve_subset(labels)

    @classmethod
    def load(
        cls, path: str | os.PathLike, device: str = "cpu", labels: Sequence[str] | None = None
    ) -> Recognizer:
        """Load a bundle folder (``model.safetensors`` + ``config.json``)."""
        return cls(load_bundle(path, device=device), labels=labels)

    # -- properties ----------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """The classes this recognizer answers with (after any ``labels`` restriction)."""
        return [self.bundle.labels[i] for i in self._keep]

    @property
    def sample_rate(self) -> int:
        return self.feature.sample_rate

    @property
    def config(self) -> dict:
        return self.bundle.config

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, audio: AudioInput, sr: int | None = None) -> Prediction:
        """Predict one file or waveform (``sr`` is required for arrays).

        Raises:
            AudioError: the input cannot be used as audio.
        """
        pred = self.predict_batch([audio], sr=sr)[0]
        if pred.error is not None:
            raise AudioError(pred.source, pred.error)
        return pred

    def predict_proba(self, audio: Sequence[AudioInput], sr: int | None = None) -> np.ndarray:
        """Probabilities ``[N, len(labels)]``; raises on the first unreadable input."""
        preds = [self.predict(a, sr) for a in audio]
        return np.array([[p.probabilities[c] for c in self.labels] for p in preds])

    def predict_batch(
        self, items: Iterable[AudioInput], sr: int | None = None, batch_size: int = 32
    ) -> list[Prediction]:
        """Predict many inputs; an unreadable one gets a :class:`Prediction` with ``error`` set."""
        items = list(items)
        names = [_name(x, i) for i, x in enumerate(items)]
        feats: list[np.ndarray | None] = []
        errors: dict[int, str] = {}
        waves: list[np.ndarray] = []
        wave_idx: list[int] = []
        for i, x in enumerate(items):
            try:
                waves.append(self._read(x, sr))
                wave_idx.append(i)
            except AudioError as exc:
                errors[i] = exc.reason
        feats = [None] * len(items)
        if waves:
            for i, f in zip(wave_idx, self.feature(waves), strict=True):
                feats[i] = f
        good = [i for i in range(len(items)) if feats[i] is not None]
        proba = (
            predict_proba(self.model, [feats[i] for i in good], batch_size)
            if good
            else np.zeros((0, 0))
        )
        out: list[Prediction] = []
        row = {i: r for r, i in enumerate(good)}
        for i in range(len(items)):
            if i in errors:
                out.append(Prediction(names[i], None, {}, errors[i]))
                continue
            out.append(self._prediction(names[i], proba[row[i]]))
        return out

    # -- internals -----------------------------------------------------------------------------
    def _read(self, x: AudioInput, sr: int | None) -> np.ndarray:
        if isinstance(x, (str, os.PathLike)):
            return self.feature.load(x)
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if sr is None:
            raise AudioError(None, "an array needs its sample rate: predict(array, sr=...)")
        return prepare_array(np.asarray(x), sr, self.sample_rate)

    def _prediction(self, name: str, p: np.ndarray) -> Prediction:
        p = p[self._keep]
        total = float(p.sum())
        p = p / total if total > 0 else np.full(len(p), 1.0 / len(p))
        probs = {c: float(v) for c, v in zip(self.labels, p, strict=True)}
        return Prediction(name, self.labels[int(np.argmax(p))], probs)

    def _resolve_subset(self, labels: Sequence[str] | None) -> list[int]:
        all_labels = self.bundle.labels
        if not labels:
            return list(range(len(all_labels)))
        unknown = [c for c in labels if c not in all_labels]
        if unknown:
            raise ValueError(f"label(s) {unknown} are not among the model's classes {all_labels}")
        if len(set(labels)) < 2:
            raise ValueError("restricting to fewer than two classes leaves nothing to predict")
        return [all_labels.index(c) for c in dict.fromkeys(labels)]


def _name(x: AudioInput, i: int) -> str:
    if isinstance(x, (str, os.PathLike)):
        return str(Path(x))
    return f"<array {i}>"
