"""The training pipeline shared by ``emovox train`` and every fold of ``emovox evaluate``.

manifest -> label scheme -> features (cached) -> speaker-disjoint validation split -> training with
early stopping -> bundle (safetensors + JSON) with curves.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from emovox._fs import atomic_write_text
from emovox.augment import augment_transform
from emovox.bundle import save_bundle
from emovox.features import Feature, FeatureCache, extract_files, make_feature
from emovox.labels import LabelScheme
from emovox.manifest import Manifest
from emovox.models import SERModel, build_model, model_class
from emovox.models.ensemble import Ensemble
from emovox.normalization import normalize_by_speaker
from emovox.progress import console
from emovox.protocols import validation_split
from emovox.training import (
    TrainConfig,
    Trainer,
    TrainResult,
    aux_labels,
    crop_frames,
    predict_proba,
)


class BadFilesWarning(UserWarning):
    """Some files could not be read and were skipped."""


@dataclasses.dataclass
class Dataset:
    """Features ready for training: one array ``[S, F, T]`` and one class index per utterance."""

    manifest: Manifest
    features: list[np.ndarray]
    y: np.ndarray
    classes: list[str]
    feature: Feature
    errors: dict[str, str]
    dropped: int = 0
    extract_seconds: float = 0.0
    variants: list[list[np.ndarray]] = dataclasses.field(default_factory=list)

    def subset(self, indices: Sequence[int], augmented: bool = False) -> tuple[list, np.ndarray]:
        """Features and labels of ``indices``; with ``augmented``, each item is a tuple of the
        original and its augmented variants (the trainer picks one per epoch)."""
        if augmented and self.variants:
            items = [(self.features[i], *self.variants[i]) for i in indices]
        else:
            items = [self.features[i] for i in indices]
        return items, self.y[list(indices)]


def default_feature(model: str, **overrides) -> Feature:
    """The feature a model is designed for, with ``overrides`` applied."""
    params = dict(model_class(model).default_feature)
    params.update(overrides)
    return make_feature(params.pop("name"), **params)


def resolve_recipe(
    model: str, feature: Feature | None = None, config: TrainConfig | None = None
) -> tuple[Feature, TrainConfig]:
    """The given feature and training settings, or the model's own where one is left out."""
    feature = feature or default_feature(model)
    config = config or TrainConfig.for_model(model_class(model))
    return feature, config


def load_dataset(
    manifest: Manifest,
    scheme: LabelScheme,
    feature: Feature,
    cache: FeatureCache | None = None,
    progress: bool = True,
    workers: int = 2,
    speeds: Sequence[float] = (),
    augment: Sequence[str] = (),
    augment_copies: int = 0,
    augment_seed: int = 0,
) -> Dataset:
    """Apply the label scheme and extract features; unreadable files are warned of and skipped.

    Each of ``speeds`` and each of the ``augment_copies`` randomly augmented copies (``augment``
    kinds, :func:`emovox.augment.augment_transform` with ``augment_seed``) adds one variant per
    file to :attr:`Dataset.variants`; only training items use them (:meth:`Dataset.subset`).
    """
    import time

    kept, dropped = scheme.apply(manifest)
    if not len(kept):
        raise ValueError(
            f"no utterance is left after applying the labels {scheme.name!r} "
            f"(the data's labels: {manifest.labels})"
        )
    t0 = time.time()
    feats, errors = extract_files(
        feature, kept.paths, cache=cache, progress=progress, workers=workers
    )
    if errors:
        listed = "\n  ".join(f"{p}: {r}" for p, r in list(errors.items())[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        warnings.warn(
            f"skipped {len(errors)} unreadable file(s):\n  {listed}{more}",
            BadFilesWarning,
            stacklevel=2,
        )
    extra = []
    for speed in speeds:
        more, _ = extract_files(
            feature, kept.paths, cache=cache, progress=progress, workers=workers, speed=speed
        )
        extra.append(more)
    for copy in range(augment_copies if augment else 0):
        more, _ = extract_files(
            feature,
            kept.paths,
            cache=cache,
            progress=progress,
            workers=workers,
            transform=augment_transform(augment, augment_seed, copy),
        )
        extra.append(more)
    seconds = time.time() - t0
    ok = [i for i, f in enumerate(feats) if f is not None]
    variants = [[m[i] for m in extra if m[i] is not None] for i in ok]
    kept = kept.take(ok)
    index = {c: i for i, c in enumerate(scheme.classes)}
    y = np.array([index[u.label] for u in kept], dtype=int)
    return Dataset(
        kept,
        [feats[i] for i in ok],
        y,
        list(scheme.classes),
        feature,
        errors,
        dropped,
        seconds,
        variants,
    )


def variant_options(config: TrainConfig) -> dict:
    """The :func:`load_dataset` arguments that make the training variants ``config`` asks for
    (speed perturbation and augmented copies)."""
    return {
        "speeds": config.speed_perturb,
        "augment": config.augment,
        "augment_copies": config.augment_copies,
        "augment_seed": config.seed,
    }


def data_fingerprint(manifest: Manifest) -> str:
    """A SHA-256 over the training files' names, sizes and labels (order-independent)."""
    rows = []
    for u in manifest:
        try:
            size = os.path.getsize(u.path)
        except OSError:
            size = -1
        rows.append(f"{Path(u.path).name}|{size}|{u.label}|{u.speaker}")
    return hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()


def fit(
    data: Dataset,
    indices: Sequence[int],
    model_name: str,
    config: TrainConfig,
    model_params: dict | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> tuple[SERModel, TrainResult, list[str]]:
    """Train ``model_name`` on ``data[indices]``, validating on speakers drawn from them.

    With ``config.speaker_norm`` the training and the validation items are normalised per speaker
    (:func:`speaker_subset`); with ``config.aux_targets`` the auxiliary targets come from the
    manifest (:func:`emovox.training.aux_labels`). A model with a method ``fit_arrays(train_x,
    train_y, val_x, val_y, config, progress=..., hop_seconds=...)`` returning a
    :class:`TrainResult` (the SVM baselines, ``cnn-egemaps``) fits itself with it instead of the
    gradient trainer; it gets the augmented variants of each training item (tuples, as the trainer
    does) when it sets ``trains_on_variants``.

    Returns the model with its best weights, the training result and the validation speakers.
    """
    torch.manual_seed(config.seed)
    in_shape = tuple(data.features[indices[0]].shape[:2])
    model = build_model(model_name, len(data.classes), in_shape, **(model_params or {}))
    if isinstance(model, Ensemble):
        return _fit_ensemble(model, data, indices, config, checkpoint_dir, resume, progress)
    tr, va = validation_split(data.manifest, list(indices), config.val_fraction, config.seed)
    if not va:
        why = "val_fraction=0" if config.val_fraction <= 0 else "a single speaker"
        console.log(f"no validation speakers ({why}): training for all epochs, keeping the last")
    val_speakers = sorted({data.manifest[i].speaker for i in va})
    hop = data.feature.hop_seconds or 0.01
    fit_arrays = getattr(model, "fit_arrays", None)
    if callable(fit_arrays):  # closed-form models (the SVM baselines) fit themselves
        variants = bool(getattr(model, "trains_on_variants", False))
        tx, ty = speaker_subset(data, tr, config, augmented=variants)
        vx, vy = speaker_subset(data, va, config) if va else (None, None)
        result = fit_arrays(tx, ty, vx, vy, config, progress=progress, hop_seconds=hop)
        return model, result, val_speakers
    trainer = Trainer(model, config, hop, checkpoint_dir, progress)
    tx, ty = speaker_subset(data, tr, config, augmented=True)
    vx, vy = speaker_subset(data, va, config) if va else (None, None)
    aux = aux_labels([data.manifest[i] for i in tr], config.aux_targets)
    result = trainer.fit(tx, ty, vx, vy, resume=resume, aux_y=aux)
    return model, result, val_speakers


def _fit_ensemble(
    model: Ensemble,
    data: Dataset,
    indices: Sequence[int],
    config: TrainConfig,
    checkpoint_dir: str | Path | None,
    resume: bool,
    progress: bool,
) -> tuple[SERModel, TrainResult, list[str]]:
    """Train each member of ``model`` with :func:`fit` and seed ``config.seed + k`` (its own
    initialisation, batches and validation speakers); checkpoints go to ``member_k/``."""
    history: list[dict] = []
    best_uas: list[float] = []
    best_epochs: list[int] = []
    val_speakers: set[str] = set()
    seconds = 0.0
    for k, member in enumerate(model.members):
        if progress:
            console.log(f"ensemble member {k + 1}/{len(model.members)} ({model.member_name})")
        trained, result, speakers = fit(
            data,
            indices,
            model.member_name,
            dataclasses.replace(config, seed=config.seed + k),
            model.member_params,
            Path(checkpoint_dir) / f"member_{k}" if checkpoint_dir else None,
            resume,
            progress,
        )
        member.load_state_dict(trained.state_dict())
        history += [{"member": k, **row} for row in result.history]
        if result.best_val_ua is not None:
            best_uas.append(result.best_val_ua)
        best_epochs.append(result.best_epoch)
        val_speakers.update(speakers)
        seconds += result.seconds
    model.eval()
    result = TrainResult(
        history=history,
        best_epoch=round(float(np.mean(best_epochs))),  # the members' mean
        best_val_ua=float(np.mean(best_uas)) if best_uas else None,
        seconds=seconds,
    )
    return model, result, sorted(val_speakers)


def speaker_subset(
    data: Dataset, indices: Sequence[int], config: TrainConfig, augmented: bool = False
) -> tuple[list, np.ndarray]:
    """:meth:`Dataset.subset`, normalised per speaker when ``config.speaker_norm`` is on (each
    speaker's statistics from its own utterances among ``indices`` only)."""
    items, y = data.subset(indices, augmented=augmented)
    if config.speaker_norm:
        items = normalize_by_speaker(items, [data.manifest[i].speaker for i in indices])
    return items, y


def predict_subset(
    model: SERModel,
    data: Dataset,
    indices: Sequence[int],
    config: TrainConfig,
    batch_size: int = 32,
) -> np.ndarray:
    """Test probabilities ``[len(indices), n_classes]`` of ``data[indices]`` as the training
    settings ask: speaker normalisation (test speakers' own statistics) and multi-crop averaging.
    """
    xs, _ = speaker_subset(data, indices, config)
    crop = crop_frames(config.crop_seconds, data.feature.hop_seconds or 0.01)
    return predict_proba(model, xs, batch_size, config.test_crops, crop)


def inference_settings(config: TrainConfig, feature: Feature) -> dict:
    """What prediction with a bundle must repeat (``config.json``'s ``inference``): the number of
    test crops, their length in frames and whether features are normalised per speaker."""
    return {
        "test_crops": config.test_crops,
        "crop_frames": crop_frames(config.crop_seconds, feature.hop_seconds or 0.01),
        "speaker_norm": config.speaker_norm,
    }


def train(
    manifest: Manifest,
    scheme: LabelScheme,
    model: str,
    out_dir: str | os.PathLike,
    *,
    feature: Feature | None = None,
    config: TrainConfig | None = None,
    model_params: dict | None = None,
    cache: FeatureCache | None = None,
    resume: bool = False,
    progress: bool = True,
    metadata: dict | None = None,
) -> Path:
    """Train a model on a manifest and save it as a bundle in ``out_dir``.

    Besides the bundle, ``out_dir`` gets ``training_curves.csv``/``.png`` and a ``checkpoint/``
    folder for ``resume``. On Ctrl-C the best weights so far are saved as the bundle and
    :class:`~emovox.training.TrainingInterrupted` is raised.
    """
    from emovox.training import TrainingInterrupted

    out = Path(out_dir)
    feature, config = resolve_recipe(model, feature, config)
    data = load_dataset(manifest, scheme, feature, cache, progress, **variant_options(config))
    meta = {
        "labels_scheme": scheme.to_dict(),
        "training": config.to_dict(),
        "inference": inference_settings(config, feature),
        "data": {
            "fingerprint": data_fingerprint(data.manifest),
            "n_utterances": len(data.manifest),
            "speakers": data.manifest.speakers,
            "corpora": sorted({u.corpus for u in data.manifest}),
            "skipped_files": len(data.errors),
        },
        **(metadata or {}),
    }
    try:
        net, result, val_speakers = fit(
            data,
            range(len(data.manifest)),
            model,
            config,
            model_params,
            out / "checkpoint",
            resume,
            progress,
        )
    except TrainingInterrupted as exc:
        ckpt = out / "checkpoint" / "best.safetensors"
        if ckpt.is_file():
            from safetensors.torch import load_file

            in_shape = tuple(data.features[0].shape[:2])
            net = build_model(model, len(data.classes), in_shape, **(model_params or {}))
            net.load_state_dict(load_file(str(ckpt)))
            save_bundle(out, net, feature, data.classes, **meta, interrupted=True)
        raise exc
    meta["training_result"] = {
        "best_epoch": result.best_epoch,
        "best_val_ua": result.best_val_ua,
        "epochs_run": len(result.history),
        "seconds": round(result.seconds, 2),
        "validation_speakers": val_speakers,
    }
    save_bundle(out, net, feature, data.classes, **meta)
    write_history(result.history, out)
    return out


def write_history(history: list[dict], out: Path) -> None:
    """``training_curves.csv`` and ``training_curves.png`` in ``out``."""
    if not history:
        return
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    atomic_write_text(out / "training_curves.csv", buf.getvalue())
    from emovox.plots import plot_training_curves

    plot_training_curves(history, out / "training_curves.png")
