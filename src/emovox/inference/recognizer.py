"""The Python API for prediction: ``Recognizer.load(path).predict(...)``.

The CLI, and later the server and the live mode, are thin shells over this class.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from emovox.audio import AudioError, LongAudio, audio_info, prepare_array
from emovox.data.taxonomy import DIMENSIONS
from emovox.features.normalization import SpeakerStats
from emovox.features.normalization import speaker_stats as _speaker_stats
from emovox.inference.adaptation import (
    BALANCE_GUARD,
    DEFAULT_GUARD,
    AdaptationGuard,
    balance_priors,
)
from emovox.inference.bundle import Bundle, BundleError, load_bundle
from emovox.inference.fusion import (
    FusedFeature,
    fuse_scores,
    is_fusion,
    label_orders,
    read_fusion,
)
from emovox.inference.predict import multi_crop_proba, predict_scores

log = logging.getLogger(__name__)

AudioInput = str | os.PathLike | np.ndarray


LONG_RECORDING_SECONDS = 10.0
"""Recordings longer than this (the longest segment of
:class:`~emovox.segmentation.SegmentationConfig`) are predicted segment by segment, read in
blocks and never decoded whole; their label is the duration-weighted mean of the segments'
probabilities, so that it agrees with the segments."""

BACKENDS = ("torch", "onnx", "onnx-int8")
"""What runs the model: torch, onnxruntime on the float export, or on the int8 one."""

CLIP_BASIS = "whole clip"
"""The :attr:`Prediction.basis` of an input predicted at once."""


@dataclasses.dataclass
class Prediction:
    """The emotion of one input: the label and every class's probability.

    ``error`` is set (and ``label`` is ``None``) when the input could not be read.
    """

    file: str
    label: str | None
    probabilities: dict[str, float]
    error: str | None = None
    basis: str = CLIP_BASIS
    """What the label is of: the whole clip (:data:`CLIP_BASIS`), or, for a recording longer
    than :data:`LONG_RECORDING_SECONDS`, the duration-weighted mean of its speech segments'
    probabilities (``"N speech segments, duration-weighted"``)."""
    arousal: float | None = None
    """How activated the voice sounds, from -1 (quiet, low energy) to 1 (aroused); ``None``
    for a model trained without ``dimensions``."""
    valence: float | None = None
    """How pleasant the emotion sounds, from -1 (unpleasant) to 1 (pleasant); ``None`` for a
    model trained without ``dimensions``."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def source(self) -> str:
        """The input's name (the older spelling of :attr:`file`)."""
        return self.file

    def to_dict(self) -> dict:
        """``{"file", "label", "probabilities", "error", "basis", "arousal", "valence"}``: the
        keys of every output format."""
        return dataclasses.asdict(self)


class Recognizer:
    """A loaded model bundle, ready to predict (scikit-learn style ``predict``/``predict_proba``).

    Args:
        bundle: the loaded bundle.
        labels: restrict predictions to these classes (probabilities renormalised over them).
        onnx_model: an :class:`~emovox.inference.onnx_backend.OnnxModel` to run instead of torch.
        guard: how far a speaker's other clips are used (:mod:`emovox.inference.adaptation`):
            a speaker-adapted prediction is blended with the per-utterance one by the guard's
            weight for the speaker's clips; ``"default"``: :data:`DEFAULT_GUARD` for a
            ``speaker_norm`` model, :data:`BALANCE_GUARD` for any other; ``None``: adapted
            fully.

    The bundle's ``inference`` settings (``config.json``) are followed by both backends: with
    ``test_crops > 1`` each utterance's probabilities are the mean over that many evenly spaced
    windows of ``crop_frames`` frames (:func:`emovox.train.trainer.crop_windows`); with
    ``speaker_norm`` features are standardised per speaker (see :meth:`predict_batch`).

    Given a speaker's other clips (``speaker_stats``), a ``speaker_norm`` model standardises the
    features with their statistics, and any other model balances its output probabilities with
    their mean prediction (:func:`~emovox.inference.adaptation.balance_priors`); either way as
    far as the guard allows.
    """

    def __init__(
        self,
        bundle: Bundle,
        labels: Sequence[str] | None = None,
        onnx_model=None,
        guard: AdaptationGuard | str | None = "default",
    ) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.feature = bundle.feature
        self.onnx_model = onnx_model
        self._keep = self._resolve_subset(labels)
        inference = bundle.config.get("inference") or {}
        self.test_crops: int = int(inference.get("test_crops", 1))
        self.crop_frames: int | None = inference.get("crop_frames")
        self.speaker_norm: bool = bool(inference.get("speaker_norm", False))
        self._warned_speaker_norm = False
        self.guard: AdaptationGuard | None = _resolve_guard(guard, self.speaker_norm)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        device: str = "cpu",
        labels: Sequence[str] | None = None,
        backend: str = "torch",
        onnx_path: str | os.PathLike | None = None,
        guard: AdaptationGuard | str | None = "default",
        declip: str | None = None,
        denoise: str | None = None,
    ) -> Recognizer:
        """Load a bundle folder (``model.safetensors`` + ``config.json``).

        Args:
            path: the bundle folder; ``None`` loads the default model bundled with emovox
                (:func:`emovox.pretrained.default_model_path`, see its ``MODEL_CARD.md``).
            device: torch device of the torch backend.
            labels: restrict predictions to these classes.
            backend: ``"torch"``, or ``"onnx"`` to run the model with onnxruntime (features are
                computed as with torch), or ``"onnx-int8"`` for its int8 version. The ONNX file
                is ``onnx_path``, by default ``<path>/model.onnx`` (``model.int8.onnx``; written
                by ``emovox export [--quantize int8]``); it must fit the bundle. The bundled
                default model's is exported once into the user's cache.
            guard: how speaker adaptation is guarded (:mod:`emovox.inference.adaptation`;
                ``"default"``: the guard of the model's kind of adaptation); ``None`` adapts
                fully whenever speaker statistics are given.
            declip: redraw hard-clipped runs before the features by this method (``"spline"``
                or ``"sparse"``, :mod:`emovox.features.declip`), whatever the bundle was
                trained with; for recordings that clip. Audio without clipped runs gets the
                same predictions. ``None``: as the bundle was trained.
            denoise: filter steady background noise (fans, hum, hiss) out before the features
                (``"wiener"``, :mod:`emovox.features.denoise`), whatever the bundle was trained
                with; ``""`` switches a bundle's filter off. ``None``: as the bundle was trained.

        Raises:
            BundleError: the bundle (or the ONNX file) is missing, corrupt or does not fit.
            OnnxUnavailable: ``backend="onnx"`` without onnxruntime installed.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        from emovox.pretrained import resolve_model

        path = resolve_model(path)
        if is_fusion(path):
            if backend != "torch":
                raise BundleError(
                    f"{path} is a fused model: its members run with torch (an ONNX backend runs "
                    "a single model)"
                )
            return FusedRecognizer.load_fusion(path, device, labels, guard, declip, denoise)
        bundle = load_bundle(path, device=device)
        onnx_model = None
        if backend != "torch":
            from emovox.inference.onnx_backend import OnnxModel, onnx_file_for

            file = onnx_file_for(path, onnx_path, int8=backend == "onnx-int8")
            onnx_model = OnnxModel(file, bundle=bundle)
        rec = cls(bundle, labels=labels, onnx_model=onnx_model, guard=guard)
        rec.feature = rec.feature.cleaned_up(declip, denoise)
        return rec

    def restricted(self, labels: Sequence[str] | None) -> Recognizer:
        """This recognizer answering only ``labels`` (the same model, backend, guard and
        clean-up of the audio).

        Raises:
            ValueError: a label the model does not know, or fewer than two.
        """
        out = type(self)(self.bundle, labels=labels, onnx_model=self.onnx_model, guard=self.guard)
        out.feature = self.feature
        return out

    @property
    def backend(self) -> str:
        """``"torch"``, ``"onnx"`` or ``"onnx-int8"``."""
        if self.onnx_model is None:
            return "torch"
        return "onnx-int8" if self.onnx_model.quantization == "int8" else "onnx"

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

    @property
    def dimensions(self) -> list[str]:
        """The continuous scores every prediction carries (``["arousal", "valence"]``, or none
        for a model trained without ``dimensions``)."""
        return self.bundle.dimensions

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, audio: AudioInput, sr: int | None = None) -> Prediction:
        """Predict one file or waveform (``sr`` is required for arrays).

        Raises:
            AudioError: the input cannot be used as audio.
        """
        pred = self.predict_batch([audio], sr=sr)[0]
        if pred.error is not None:
            raise AudioError(pred.file, pred.error)
        return pred

    def predict_proba(self, audio: Sequence[AudioInput], sr: int | None = None) -> np.ndarray:
        """Probabilities ``[N, len(labels)]``; raises on the first unreadable input."""
        preds = [self.predict(a, sr) for a in audio]
        return np.array([[p.probabilities[c] for c in self.labels] for p in preds])

    def predict_batch(
        self,
        items: Iterable[AudioInput],
        sr: int | None = None,
        batch_size: int = 32,
        speaker_stats: SpeakerStats | str | None = None,
    ) -> list[Prediction]:
        """Predict many inputs; an unreadable one gets a :class:`Prediction` with ``error`` set.

        Args:
            items: files, or waveforms at ``sr``.
            sr: the waveforms' sample rate.
            batch_size: inputs run through the model together.
            speaker_stats: adapt to the speaker of ``items``: the speaker's
                :class:`~emovox.features.normalization.SpeakerStats` (from :meth:`speaker_stats`
                over that speaker's recordings), or ``"batch"`` when all ``items`` are of one
                speaker (the readable items are then the speaker's material). A bundle trained
                with ``speaker_norm`` standardises every utterance with the statistics; when
                they are left out, each utterance is standardised by its own (so a prediction
                never depends on which other files are in the call) and a warning is logged
                once, since single-utterance statistics are noisier than a speaker's. Any other
                bundle divides its probabilities by the speaker's mean prediction
                (:func:`~emovox.inference.adaptation.balance_priors`); left out, every item is
                predicted alone. The adapted prediction is blended with the per-utterance one
                by the guard's weight: the statistics' ``weight`` (from :meth:`speaker_stats`,
                over all the speaker's clips), or measured on the items of the call.
        """
        items = list(items)
        names = [_name(x, i) for i, x in enumerate(items)]
        feats: list[np.ndarray | None] = []
        errors: dict[int, str] = {}
        waves: list[np.ndarray] = []
        wave_idx: list[int] = []
        long: dict[int, Prediction] = {}
        for i, x in enumerate(items):
            try:
                try:
                    waves.append(self._read(x, sr, max_duration=LONG_RECORDING_SECONDS))
                    wave_idx.append(i)
                except LongAudio:
                    long[i] = self.predict_long(x, sr, batch_size=batch_size)
            except AudioError as exc:
                errors[i] = exc.reason
        feats = [None] * len(items)
        if waves:
            for i, f in zip(wave_idx, self.feature(waves), strict=True):
                feats[i] = f
        good = [i for i in range(len(items)) if feats[i] is not None]
        good_feats = [feats[i] for i in good]
        if isinstance(speaker_stats, str):
            if speaker_stats != "batch":
                raise ValueError(
                    f"speaker_stats must be SpeakerStats or 'batch', not {speaker_stats!r}"
                )
            # the call's items are the speaker's material: the weight (and, without
            # speaker_norm, the mean prediction) are measured on them in _proba, in one pass
            speaker_stats = self._feature_stats(good_feats) if good_feats else None
        proba = self._proba(good_feats, batch_size, speaker_stats) if good else np.zeros((0, 0))
        out: list[Prediction] = []
        row = {i: r for r, i in enumerate(good)}
        for i in range(len(items)):
            if i in errors:
                out.append(Prediction(names[i], None, {}, errors[i]))
            elif i in long:
                out.append(long[i])
            else:
                out.append(self._prediction(names[i], proba[row[i]]))
        return out

    def is_long(self, audio: AudioInput, sr: int | None = None) -> bool:
        """Whether ``audio`` is longer than :data:`LONG_RECORDING_SECONDS` (from a file's
        header; a file whose header cannot be read counts as short, and fails when read)."""
        if isinstance(audio, (str, os.PathLike)):
            try:
                info = audio_info(audio)
            except AudioError:
                return False
            return info.frames > LONG_RECORDING_SECONDS * info.samplerate
        if sr is None:
            return False
        return np.asarray(audio).shape[-1] > LONG_RECORDING_SECONDS * sr

    def predict_long(
        self,
        audio: AudioInput,
        sr: int | None = None,
        vad: str = "auto",
        batch_size: int = 16,
        segments: Sequence[dict] | None = None,
    ) -> Prediction:
        """One label for a long recording, that agrees with its segments: the duration-weighted
        mean of the probabilities of its speech segments (:meth:`predict_segments`; the file is
        read in blocks; with ``vad="auto"``, the energy detector when silero finds no speech).
        A recording without speech gets an ``error`` saying so. ``segments``: the recording's
        segments with ``vad`` when already predicted (they are not predicted again).

        Raises:
            AudioError: the file cannot be read.
        """
        if segments is None:
            segments = self.predict_segments(audio, sr=sr, vad=vad, batch_size=batch_size)
        if not segments and vad == "auto":  # silero heard no voice: try the energy detector
            segments = self.predict_segments(audio, sr=sr, vad="energy", batch_size=batch_size)
        return segments_prediction(_name(audio, 0), segments, self.labels)

    def predict_waveforms(
        self,
        waves: Sequence[np.ndarray],
        names: Sequence[str],
        batch_size: int = 32,
        speaker_stats: SpeakerStats | None = None,
    ) -> list[Prediction]:
        """Predict waveforms already at :attr:`sample_rate` (as :meth:`Feature.load` gives
        them); ``speaker_stats`` as in :meth:`predict_batch`."""
        if not waves:
            return []
        return self.predict_features(self.feature(list(waves)), names, batch_size, speaker_stats)

    def predict_features(
        self,
        feats: Sequence[np.ndarray],
        names: Sequence[str],
        batch_size: int = 32,
        speaker_stats: SpeakerStats | None = None,
    ) -> list[Prediction]:
        """Predict features already computed by :attr:`feature` (``[S, F, T]`` each);
        ``speaker_stats`` as in :meth:`predict_batch` (from :meth:`stats_of_features`)."""
        if not len(feats):
            return []
        proba = self._proba(feats, batch_size, speaker_stats)
        return [self._prediction(n, p) for n, p in zip(names, proba, strict=True)]

    def predict_segments(
        self,
        audio: AudioInput,
        sr: int | None = None,
        vad: str = "auto",
        config=None,
        block_seconds: float = 30.0,
        batch_size: int = 16,
        one_speaker: bool = False,
    ) -> list[dict]:
        """One prediction per speech segment of a (long) recording, read in blocks
        (:func:`emovox.segmentation.predict_segments`, the path every command uses); with
        ``one_speaker`` a ``speaker_norm`` model standardises the segments with the recording's
        own statistics, as far as the guard allows (speaker-adapted).

        Args:
            audio: a file (streamed block by block, never decoded whole) or a waveform.
            sr: the waveform's sample rate (required for arrays).
            vad: ``"silero"``, ``"energy"`` or ``"auto"`` (silero when installed).
            config: :class:`emovox.segmentation.SegmentationConfig` (lengths, padding).
            block_seconds: seconds of audio read at once.
            batch_size: segments predicted together.
            one_speaker: the recording is one speaker: adapt to its segments' statistics.

        Returns:
            ``[{"start", "end", "label", "probabilities"}]`` in time order (seconds).

        Raises:
            AudioError: the file cannot be read.
        """
        from emovox.segmentation import predict_segments

        return predict_segments(
            self,
            audio,
            sr=sr,
            vad=vad,
            config=config,
            block_seconds=block_seconds,
            batch_size=batch_size,
            one_speaker=one_speaker,
        )

    def speaker_stats(self, items: Iterable[AudioInput], sr: int | None = None) -> SpeakerStats:
        """What adaptation needs of one speaker's recordings (no labels needed), for
        ``predict_batch(..., speaker_stats=...)``: their feature statistics, their mean
        per-utterance prediction (``mean_proba``, for a bundle without ``speaker_norm``) and the
        share of the adapted prediction the recognizer's guard allows for them (``weight``, from
        the spread of the recordings' per-utterance predictions; see
        :mod:`emovox.inference.adaptation`).

        Raises:
            AudioError: an input cannot be read.
        """
        waves = [self._read(x, sr) for x in items]
        if not waves:
            raise ValueError("speaker statistics need at least one recording")
        return self.stats_of_features(self.feature(waves))

    def stats_of_features(self, feats: Sequence[np.ndarray]) -> SpeakerStats:
        """:meth:`speaker_stats` of the features of one speaker's recordings."""
        stats = self._feature_stats(feats)
        if self.speaker_norm and self.guard is None:
            return stats
        per_utt = self._per_utterance(feats, 32)[:, : len(self.bundle.labels)]
        weight = None if self.guard is None else self.guard.weight(per_utt)
        mean = None if self.speaker_norm else per_utt.mean(axis=0)
        return dataclasses.replace(stats, weight=weight, mean_proba=mean)

    # -- internals -----------------------------------------------------------------------------
    def _feature_stats(self, feats: Sequence[np.ndarray]) -> SpeakerStats:
        """The per-bin statistics of one speaker's features (what ``speaker_norm`` uses)."""
        return _speaker_stats(feats)

    def _proba(
        self,
        feats: Sequence[np.ndarray],
        batch_size: int,
        speaker_stats: SpeakerStats | None = None,
    ) -> np.ndarray:
        """Scores (probabilities, then dimensions) of features: speaker-adapted with
        ``speaker_stats``, blended with the per-utterance scores as far as the guard allows (the
        statistics' ``weight``, else measured on ``feats``)."""
        if not self.speaker_norm:
            return self._balanced(self._run(feats, batch_size), speaker_stats)
        adapted = self._run(self._normalize(feats, speaker_stats), batch_size)
        if speaker_stats is None or self.guard is None:
            return adapted
        per_utt = self._per_utterance(feats, batch_size)
        w = self._weight(speaker_stats, per_utt[:, : len(self.bundle.labels)])
        return (w * adapted + (1.0 - w) * per_utt).astype(np.float32)

    def _balanced(self, scores: np.ndarray, stats: SpeakerStats | None) -> np.ndarray:
        """Per-utterance ``scores`` of a model without ``speaker_norm`` with their probabilities
        balanced by the speaker's mean prediction (``stats.mean_proba``, else the mean over
        ``scores``), as far as the guard allows; unchanged without ``stats``."""
        if stats is None:
            return scores
        n = len(self.bundle.labels)
        per_utt = scores[:, :n]
        adapted = balance_priors(per_utt, stats.mean_proba)
        w = self._weight(stats, per_utt)
        out = scores.astype(np.float32).copy()
        out[:, :n] = w * adapted + (1.0 - w) * per_utt
        return out

    def _weight(self, stats: SpeakerStats, per_utt: np.ndarray) -> float:
        """The share of the adapted prediction: 1 without a guard, else the statistics'
        ``weight``, or the guard's weight for these per-utterance probabilities."""
        if self.guard is None:
            return 1.0
        return self.guard.weight(per_utt) if stats.weight is None else stats.weight

    def _per_utterance(self, feats: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
        """Scores with every utterance alone (standardised by its own statistics for a
        ``speaker_norm`` bundle)."""
        if not self.speaker_norm:
            return self._run(feats, batch_size)
        return self._run([_speaker_stats([f]).apply(f) for f in feats], batch_size)

    def _run(self, feats: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
        def run(xs: list[np.ndarray]) -> np.ndarray:
            if self.onnx_model is not None:
                return self.onnx_model.predict_scores(xs, batch_size)
            return predict_scores(self.model, xs, batch_size)

        return multi_crop_proba(run, feats, self.test_crops, self.crop_frames)

    def _normalize(
        self, feats: Sequence[np.ndarray], stats: SpeakerStats | None
    ) -> Sequence[np.ndarray]:
        """Speaker normalisation as the bundle was trained with (see :meth:`predict_batch`)."""
        if not self.speaker_norm:
            return feats
        if stats is not None:
            return [stats.apply(f) for f in feats]
        if not self._warned_speaker_norm:
            self._warned_speaker_norm = True
            log.warning(
                "this model was trained with speaker_norm but no speaker_stats were given: each "
                "utterance is normalised by its own statistics (less accurate); pass "
                "speaker_stats=recognizer.speaker_stats(files_of_the_speaker) or 'batch'"
            )
        return [_speaker_stats([f]).apply(f) for f in feats]

    def _read(
        self, x: AudioInput, sr: int | None, max_duration: float | None = None
    ) -> np.ndarray:
        """The waveform of an input at the model's rate; :class:`LongAudio` (unread) when it is
        longer than ``max_duration`` seconds."""
        if isinstance(x, (str, os.PathLike)):
            return self.feature.load(x, max_duration=max_duration)
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if sr is None:
            raise AudioError(None, "an array needs its sample rate: predict(array, sr=...)")
        x = np.asarray(x)
        frames = max(x.shape, default=0)  # (frames,), (frames, channels) or (channels, frames)
        if max_duration is not None and frames > max_duration * sr:
            raise LongAudio("<array>", frames / sr)
        return prepare_array(x, sr, self.sample_rate)

    def _prediction(self, name: str, scores: np.ndarray) -> Prediction:
        """A prediction from one row of :meth:`_proba`: the class probabilities (restricted to
        the chosen labels and renormalised), then the dimension scores, if any."""
        n = len(self.bundle.labels)
        p = scores[:n][self._keep]
        total = float(p.sum())
        p = p / total if total > 0 else np.full(len(p), 1.0 / len(p))
        probs = {c: float(v) for c, v in zip(self.labels, p, strict=True)}
        dims = dict(zip(self.dimensions, (float(v) for v in scores[n:]), strict=True))
        return Prediction(name, self.labels[int(np.argmax(p))], probs, **dims)

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


@dataclasses.dataclass
class FusionInfo:
    """What a fused model tells of itself where a single model shows its bundle: its classes
    (the first member's order), continuous scores, settings and folder."""

    labels: list[str]
    dimensions: list[str]
    config: dict
    path: Path | None = None


class FusedRecognizer(Recognizer):
    """Several recognizers answering the same classes, read as one: each computes its own
    features of a clip (:class:`~emovox.inference.fusion.FusedFeature`), and the prediction is
    the weighted mean of their probabilities (their arousal and valence averaged over the
    members that give them). Speaker adaptation balances the fused output, as for any model
    without ``speaker_norm``, as far as the guard allows (:data:`BALANCE_GUARD` by default).

    Args:
        members: the recognizers (each answering all its classes).
        weights: their shares of the fused probability (normalised to sum to 1).
        labels: restrict predictions to these classes.
        guard: as :class:`Recognizer`.
        path: the fused model's folder, if it has one.
    """

    def __init__(
        self,
        members: Sequence[Recognizer],
        weights: Sequence[float],
        labels: Sequence[str] | None = None,
        guard: AdaptationGuard | str | None = "default",
        path: Path | None = None,
    ) -> None:
        if len(members) < 2 or len(weights) != len(members):
            raise ValueError("a fusion needs two or more members, and one weight for each")
        if any(m.speaker_norm for m in members):
            raise ValueError("a member trained with speaker_norm cannot be fused (yet)")
        self.members = list(members)
        total = float(sum(weights))
        self.weights = [float(w) / total for w in weights]
        names = [m.bundle.labels for m in self.members]
        self._orders = label_orders(names)
        dims = [m.dimensions for m in self.members]
        fused_dims = [d for d in DIMENSIONS if any(d in x for x in dims)]
        config = {
            "model": {"name": "fusion", "members": [m.config.get("model") for m in members]},
            "fusion": [
                {"model": m.bundle.path and Path(m.bundle.path).name, "weight": w}
                for m, w in zip(self.members, self.weights, strict=True)
            ],
            "emovox_version": members[0].config.get("emovox_version"),
        }
        self.bundle = FusionInfo(list(names[0]), fused_dims, config, path)  # type: ignore[assignment]
        self.model = None  # type: ignore[assignment]
        self.onnx_model = None
        self.feature = FusedFeature([m.feature for m in self.members])  # type: ignore[assignment]
        self._keep = self._resolve_subset(labels)
        self.test_crops, self.crop_frames, self.speaker_norm = 1, None, False
        self._warned_speaker_norm = False
        self.guard = _resolve_guard(guard, speaker_norm=False)

    @classmethod
    def load_fusion(
        cls,
        path: str | os.PathLike,
        device: str = "cpu",
        labels: Sequence[str] | None = None,
        guard: AdaptationGuard | str | None = "default",
        declip: str | None = None,
        denoise: str | None = None,
    ) -> FusedRecognizer:
        """The fused model in the folder ``path`` (see :mod:`emovox.inference.fusion`);
        ``declip`` and ``denoise`` as in :meth:`Recognizer.load`, for every member.

        Raises:
            BundleError: ``fusion.json`` or a member is missing, corrupt or does not fit.
        """
        path = Path(path)
        members = read_fusion(path)
        recs = [
            Recognizer.load(
                path / m.path, device=device, guard=None, declip=declip, denoise=denoise
            )
            for m in members
        ]
        try:
            fused = cls(recs, [m.weight for m in members], guard=guard, path=path)
        except ValueError as exc:  # the members do not go together
            raise BundleError(f"{path}: {exc}") from exc
        return fused.restricted(labels) if labels else fused

    def restricted(self, labels: Sequence[str] | None) -> FusedRecognizer:
        return type(self)(self.members, self.weights, labels, self.guard, self.bundle.path)

    def _feature_stats(self, feats: Sequence) -> SpeakerStats:
        """No feature statistics (no member standardises by speaker): only the count."""
        empty = np.zeros((1, 1, 1))
        return SpeakerStats(empty, empty + 1.0, 0, len(feats))

    def _run(self, feats: Sequence, batch_size: int) -> np.ndarray:
        scores = [
            m._run([f[i] for f in feats], batch_size) for i, m in enumerate(self.members)
        ]
        return fuse_scores(
            scores,
            self.weights,
            self._orders,
            len(self.bundle.labels),
            [m.dimensions for m in self.members],
            self.bundle.dimensions,
        )


def _resolve_guard(
    guard: AdaptationGuard | str | None, speaker_norm: bool
) -> AdaptationGuard | None:
    """The guard a recognizer uses: ``"default"`` is :data:`DEFAULT_GUARD` for a
    ``speaker_norm`` model and :data:`BALANCE_GUARD` for any other.

    Raises:
        ValueError: any other string.
    """
    if guard == "default":
        return DEFAULT_GUARD if speaker_norm else BALANCE_GUARD
    if isinstance(guard, str):
        raise ValueError(f"guard must be an AdaptationGuard, 'default' or None, not {guard!r}")
    return guard


NO_SPEECH = "no speech found (silent, or too quiet for the voice detector)"
"""What is said of a recording in which segmentation found no speech (the ``error`` of its
prediction, the ``note`` of its line in segment outputs)."""


def segments_prediction(name: str, segments: Sequence[dict], labels: Sequence[str]) -> Prediction:
    """The prediction of a recording from its segments' (``start``, ``end``,
    ``probabilities``, and ``arousal``/``valence`` when the model gives them): the
    duration-weighted mean of each, so the recording's label agrees with its segments; an
    ``error`` when there is no segment."""
    weights = np.array([s["end"] - s["start"] for s in segments], dtype=np.float64)
    if not len(segments) or weights.sum() <= 0:
        return Prediction(name, None, {}, NO_SPEECH)
    proba = np.array([[s["probabilities"][c] for c in labels] for s in segments])
    mean = (weights[:, None] * proba).sum(0) / weights.sum()
    probs = {c: float(v) for c, v in zip(labels, mean, strict=True)}
    basis = f"{len(segments)} speech segments, duration-weighted"
    dims = {}
    for d in DIMENSIONS:
        values = [s.get(d) for s in segments]
        if all(v is not None for v in values):
            dims[d] = float(np.dot(weights, values) / weights.sum())
    return Prediction(name, labels[int(np.argmax(mean))], probs, basis=basis, **dims)


def _name(x: AudioInput, i: int) -> str:
    if isinstance(x, (str, os.PathLike)):
        return str(Path(x))
    return f"<array {i}>"
