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
from emovox.bundle import save_bundle
from emovox.features import Feature, FeatureCache, extract_files, make_feature
from emovox.labels import LabelScheme
from emovox.manifest import Manifest
from emovox.models import SERModel, build_model, model_class
from emovox.progress import console
from emovox.protocols import validation_split
from emovox.training import TrainConfig, Trainer, TrainResult


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
) -> Dataset:
    """Apply the label scheme and extract features; unreadable files are warned of and skipped."""
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

    Returns the model with its best weights, the training result and the validation speakers.
    """
    torch.manual_seed(config.seed)
    in_shape = tuple(data.features[indices[0]].shape[:2])
    model = build_model(model_name, len(data.classes), in_shape, **(model_params or {}))
    tr, va = validation_split(data.manifest, list(indices), config.val_fraction, config.seed)
    if not va:
        console.log("no validation speakers (a single speaker): training for all epochs")
    val_speakers = sorted({data.manifest[i].speaker for i in va})
    trainer = Trainer(model, config, data.feature.hop_seconds or 0.01, checkpoint_dir, progress)
    tx, ty = data.subset(tr, augmented=True)
    vx, vy = data.subset(va) if va else (None, None)
    result = trainer.fit(tx, ty, vx, vy, resume=resume)
    return model, result, val_speakers


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
    data = load_dataset(manifest, scheme, feature, cache, progress, speeds=config.speed_perturb)
    meta = {
        "labels_scheme": scheme.to_dict(),
        "training": config.to_dict(),
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
