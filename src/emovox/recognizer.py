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

    def __init__(
        self, bundle: Bundle, labels: Sequence[str] | None = None, onnx_model=None
    ) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.feature = bundle.feature
        self.onnx_model = onnx_model
        self._keep = self._resolve_subset(labels)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        device: str = "cpu",
        labels: Sequence[str] | None = None,
        backend: str = "torch",
        onnx_path: str | os.PathLike | None = None,
    ) -> Recognizer:
        """Load a bundle folder (``model.safetensors`` + ``config.json``).

        Args:
            path: the bundle folder.
            device: torch device of the torch backend.
            labels: restrict predictions to these classes.
            backend: ``"torch"``, or ``"onnx"`` to run the model with onnxruntime (features are
                computed as with torch). The ONNX file is ``onnx_path``, by default
                ``<path>/model.onnx`` (written by ``emovox export``); it must fit the bundle.

        Raises:
            BundleError: the bundle (or the ONNX file) is missing, corrupt or does not fit.
            OnnxUnavailable: ``backend="onnx"`` without onnxruntime installed.
        """
        if backend not in ("torch", "onnx"):
            raise ValueError(f"backend must be 'torch' or 'onnx', not {backend!r}")
        bundle = load_bundle(path, device=device)
        onnx_model = None
        if backend == "onnx":
            from emovox.onnx_backend import ONNX_FILE, OnnxModel

            file = Path(onnx_path) if onnx_path is not None else Path(path) / ONNX_FILE
            onnx_model = OnnxModel(file, bundle=bundle)
        return cls(bundle, labels=labels, onnx_model=onnx_model)

    @property
    def backend(self) -> str:
        """``"torch"`` or ``"onnx"``."""
        return "onnx" if self.onnx_model is not None else "torch"

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
        proba = self._proba([feats[i] for i in good], batch_size) if good else np.zeros((0, 0))
        out: list[Prediction] = []
        row = {i: r for r, i in enumerate(good)}
        for i in range(len(items)):
            if i in errors:
                out.append(Prediction(names[i], None, {}, errors[i]))
                continue
            out.append(self._prediction(names[i], proba[row[i]]))
        return out

    def predict_waveforms(
        self, waves: Sequence[np.ndarray], names: Sequence[str], batch_size: int = 32
    ) -> list[Prediction]:
        """Predict waveforms already at :attr:`sample_rate` (as :meth:`Feature.load` gives them)."""
        if not waves:
            return []
        feats = self.feature(list(waves))
        proba = self._proba(feats, batch_size)
        return [self._prediction(n, p) for n, p in zip(names, proba, strict=True)]

    def predict_segments(
        self,
        audio: AudioInput,
        sr: int | None = None,
        vad: str = "auto",
        config=None,
        block_seconds: float = 30.0,
        batch_size: int = 16,
    ) -> list[dict]:
        """One prediction per speech segment of a (long) recording, read in blocks.

        Args:
            audio: a file (streamed block by block, never decoded whole) or a waveform.
            sr: the waveform's sample rate (required for arrays).
            vad: ``"silero"``, ``"energy"`` or ``"auto"`` (silero when installed).
            config: :class:`emovox.longaudio.LongAudioConfig` (segment lengths, padding).
            block_seconds: seconds of audio read at once.
            batch_size: segments predicted together.

        Returns:
            ``[{"start", "end", "label", "probabilities"}]`` in time order (seconds).

        Raises:
            AudioError: the file cannot be read.
        """
        from emovox.longaudio import predict_long

        return predict_long(
            self,
            audio,
            sr=sr,
            vad=vad,
            config=config,
            block_seconds=block_seconds,
            batch_size=batch_size,
        )

    # -- internals -----------------------------------------------------------------------------
    def _proba(self, feats: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
        if self.onnx_model is not None:
            return self.onnx_model.predict_proba(feats, batch_size)
        return predict_proba(self.model, feats, batch_size)

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
