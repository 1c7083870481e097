"""The training pipeline shared by ``emovox train`` and every fold of ``emovox evaluate``.

manifest -> label scheme -> features (cached) -> speaker-disjoint validation split -> fitting (the
model contract: closed form, gradient training, members) -> bundle (safetensors + JSON) with
curves.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from emovox._fs import atomic_write_text
from emovox.data.balance import corpus_class_mask as class_mask_of_corpora
from emovox.data.labels import LabelScheme
from emovox.data.manifest import Manifest
from emovox.data.protocols import validation_split
from emovox.features import Feature, FeatureCache
from emovox.inference.bundle import CONFIG, save_bundle
from emovox.inference.predict import crop_frames, multi_crop_proba, predict_proba, predict_scores
from emovox.models import SERModel
from emovox.progress import console
from emovox.train.aux import aux_labels, dimension_targets
from emovox.train.checkpoint import RUN_FILE, check_resumable, check_unclaimed
from emovox.train.config import TrainConfig
from emovox.train.dataset import (
    Dataset,
    data_fingerprint,
    load_dataset,
    speaker_subset,
    variant_options,
)
from emovox.train.distill import check_teacher_speakers, teacher_targets
from emovox.train.distributed import is_main, world
from emovox.train.fitting import fit_arrays
from emovox.train.recipe import Recipe, as_recipe, default_feature
from emovox.train.trainer import TrainingInterrupted, TrainResult


def fit(
    data: Dataset,
    indices: Sequence[int],
    recipe: Recipe | str,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> tuple[SERModel, TrainResult, list[str]]:
    """Train ``recipe``'s model on ``data[indices]``, validating on speakers drawn from them.

    With ``speaker_norm`` the training and the validation items are normalised per speaker
    (:func:`~emovox.train.dataset.speaker_subset`); with ``aux_targets`` the auxiliary targets
    come from the manifest (:func:`emovox.train.aux.aux_labels`), and with ``dimensions`` the
    arousal and valence targets (:func:`emovox.train.aux.dimension_targets`). The model is fitted by
    :func:`~emovox.train.fitting.fit_arrays`, which asks it what it fits how; an ensemble's
    members (:meth:`~emovox.models.base.SERModel.trained_members`) are each fitted here with
    their own seed.

    Returns the model with its best weights, the training result and the validation speakers.
    """
    recipe = as_recipe(recipe)
    config = recipe.training
    torch.manual_seed(config.seed)
    model = recipe.build(len(data.classes), tuple(data.features[indices[0]].shape[:2]))
    if model.trained_members():
        return _fit_members(model, data, indices, recipe, checkpoint_dir, resume, progress)
    tr, va = validation_split(data.manifest, list(indices), config.val_fraction, config.seed)
    if not va:
        why = "val_fraction=0" if config.val_fraction <= 0 else "a single speaker"
        console.log(f"no validation speakers ({why}): training for all epochs, keeping the last")
    tx, ty = speaker_subset(data, tr, config, augmented=True)
    vx, vy = speaker_subset(data, va, config) if va else (None, None)
    soft_y = teacher_soft_targets(data, tr, va, config, progress) if config.distill > 0 else None
    result = fit_arrays(
        model,
        tx,
        ty,
        vx,
        vy,
        config,
        hop_seconds=data.feature.hop_seconds or 0.01,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        aux_y=aux_labels([data.manifest[i] for i in tr], config.aux_targets),
        class_mask=corpus_class_mask(data, tr),
        dims_y=dimension_targets([data.manifest[i] for i in tr])
        if model.has_dimensions()
        else None,
        val_dims_y=dimension_targets([data.manifest[i] for i in va])
        if model.has_dimensions() and va
        else None,
        progress=progress,
        corpora=[data.manifest[i].corpus for i in tr],
        val_corpora=[data.manifest[i].corpus for i in va],
        soft_y=soft_y,
    )
    return model, result, sorted({data.manifest[i].speaker for i in va})


def teacher_soft_targets(
    data: Dataset, train: Sequence[int], val: Sequence[int], config: TrainConfig, progress: bool
) -> np.ndarray:
    """``[len(train), n_classes]``: ``config.teacher``'s probabilities for each labelled training
    item, and for the rows without a class with ``distill_unlabelled`` (NaN for the others),
    after checking that the teacher did not hear the validation speakers
    (:mod:`emovox.train.distill`)."""
    check_teacher_speakers(config.teacher, {data.manifest[i].speaker for i in val}, ())
    rows = [k for k, i in enumerate(train) if data.y[i] >= 0 or config.distill_unlabelled]
    soft = np.full((len(train), len(data.classes)), np.nan, dtype=np.float32)
    if progress:
        console.log(f"distilling {config.teacher}: its answers on {len(rows)} training files")
    paths = [data.manifest[train[k]].path for k in rows]
    soft[rows] = teacher_targets(config.teacher, paths, data.classes, data.cache, progress)
    return soft


def corpus_class_mask(data: Dataset, indices: Sequence[int]) -> np.ndarray | None:
    """``[len(indices), n_classes]``: for each item, the classes its corpus has among
    ``indices`` (a corpus does not label the others), or ``None`` when every corpus has them
    all (the plain loss then; :func:`emovox.data.balance.corpus_class_mask`)."""
    corpora = [data.manifest[i].corpus for i in indices]
    return class_mask_of_corpora(data.y[list(indices)], corpora, len(data.classes))


def _fit_members(
    model: SERModel,
    data: Dataset,
    indices: Sequence[int],
    recipe: Recipe,
    checkpoint_dir: str | Path | None,
    resume: bool,
    progress: bool,
) -> tuple[SERModel, TrainResult, list[str]]:
    """Train each member with :func:`fit` and seed ``seed + k`` (its own initialisation,
    batches and validation speakers); checkpoints go to ``member_k/``."""
    history: list[dict] = []
    best_uas: list[float] = []
    best_epochs: list[int] = []
    val_speakers: set[str] = set()
    seconds = 0.0
    members = model.trained_members()
    for k, (name, params, module) in enumerate(members):
        if progress:
            console.log(f"ensemble member {k + 1}/{len(members)} ({name})")
        member_recipe = dataclasses.replace(
            recipe.with_training(seed=recipe.training.seed + k), model=name, params=params
        )
        trained, result, speakers = fit(
            data,
            indices,
            member_recipe,
            Path(checkpoint_dir) / f"member_{k}" if checkpoint_dir else None,
            resume,
            progress,
        )
        module.load_state_dict(trained.state_dict())
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


def predict_subset(
    model: SERModel,
    data: Dataset,
    indices: Sequence[int],
    config: TrainConfig,
    batch_size: int = 32,
    per_utterance: bool = False,
    dimensions: bool = False,
) -> np.ndarray:
    """Test probabilities ``[len(indices), n_classes]`` of ``data[indices]`` as the training
    settings ask: speaker normalisation and multi-crop averaging. Speaker normalisation uses each
    test speaker's own unlabelled utterances (speaker-adapted), or with ``per_utterance`` each
    utterance's own statistics (every clip classified alone). With ``dimensions``, a model with
    the dimensions head gives its arousal and valence scores too, as columns after the
    probabilities (:func:`~emovox.inference.predict.predict_scores`)."""
    xs, _ = speaker_subset(data, indices, config, per_utterance=per_utterance)
    crop = crop_frames(config.crop_seconds, data.feature.hop_seconds or 0.01)
    if dimensions and model.has_dimensions():

        def scores(items: list[np.ndarray]) -> np.ndarray:
            return predict_scores(model, items, batch_size)

        return multi_crop_proba(scores, xs, config.test_crops, crop)
    return predict_proba(model, xs, batch_size, config.test_crops, crop)


def inference_settings(config: TrainConfig, feature: Feature) -> dict:
    """What prediction with a bundle must repeat (``config.json``'s ``inference``): the number of
    test crops, their length in frames and whether features are normalised per speaker."""
    return {
        "test_crops": config.test_crops,
        "crop_frames": crop_frames(config.crop_seconds, feature.hop_seconds or 0.01),
        "speaker_norm": config.speaker_norm,
    }


TRAINING_MARKS = (CONFIG, f"checkpoint/{RUN_FILE}")
"""What marks a folder as holding a bundle or a started training."""


def train(
    manifest: Manifest,
    scheme: LabelScheme,
    recipe: Recipe | str,
    out_dir: str | os.PathLike,
    *,
    cache: FeatureCache | None = None,
    resume: bool = False,
    progress: bool = True,
    metadata: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Train a recipe (or a model name: its own recipe) on a manifest; save a bundle in
    ``out_dir``.

    Besides the bundle, ``out_dir`` gets ``training_curves.csv``/``.png`` and a ``checkpoint/``
    folder for ``resume``. On Ctrl-C the best weights so far are saved as the bundle and
    :class:`~emovox.train.trainer.TrainingInterrupted` is raised. A folder that already holds a
    bundle or a started training is refused (:class:`FileExistsError`, before any work) unless
    ``resume`` continues it or ``overwrite`` replaces it.
    """
    recipe = as_recipe(recipe)
    out = Path(out_dir)
    if is_main():  # the other processes of a group would see process 0's checkpoint/run.json
        check_unclaimed(out, TRAINING_MARKS, resume=resume, overwrite=overwrite)
    config, feature = recipe.training, recipe.feature
    data = load_dataset(manifest, scheme, feature, cache, progress, **variant_options(config))
    identity = run_identity(recipe, data)
    meta = {
        "labels_scheme": scheme.to_dict(),
        "training": config.to_dict(),
        "inference": inference_settings(config, feature),
        "data": {
            "fingerprint": identity["data"],
            "n_utterances": len(data.manifest),
            "speakers": data.manifest.speakers,
            "corpora": sorted({u.corpus for u in data.manifest}),
            "per_corpus": corpus_counts(data.manifest),
            "skipped_files": len(data.errors),
        },
        **(metadata or {}),
    }
    check_resumable(out / "checkpoint", identity, resume)
    try:
        net, result, val_speakers = fit(
            data, range(len(data.manifest)), recipe, out / "checkpoint", resume, progress
        )
    except TrainingInterrupted:
        ckpt = out / "checkpoint" / "best.safetensors"
        net = recipe.build(len(data.classes), tuple(data.features[0].shape[:2]))
        part = net.gradient_part()
        if ckpt.is_file() and part is not None and part.module is net:  # the whole model
            from safetensors.torch import load_file

            net.load_state_dict(load_file(str(ckpt)))
            save_bundle(out, net, feature, data.classes, **meta, interrupted=True)
        raise
    meta["training_result"] = {
        "best_epoch": result.best_epoch,
        "best_val_ua": result.best_val_ua,
        "best_val_ua_by_corpus": result.best_val_ua_by_corpus,
        "epochs_run": len(result.history),
        "seconds": round(result.seconds, 2),
        "validation_speakers": val_speakers,
        "processes": world()[1],
    }
    if not is_main():  # in a process group, process 0 writes the bundle
        return out
    save_bundle(out, net, feature, data.classes, **meta)
    write_history(result.history, out)
    return out


def corpus_counts(manifest: Manifest) -> dict[str, dict[str, int]]:
    """Utterances and speakers of each corpus of a manifest (for the bundle and its card)."""
    out: dict[str, dict] = {}
    for u in manifest:
        c = out.setdefault(u.corpus, {"utterances": 0, "speakers": set()})
        c["utterances"] += 1
        c["speakers"].add(u.speaker)
    return {
        k: {"utterances": v["utterances"], "speakers": len(v["speakers"])}
        for k, v in sorted(out.items())
    }


def run_identity(recipe: Recipe, data: Dataset) -> dict:
    """What a run trains: model, its parameters, feature, labels and a fingerprint of the data
    (for :func:`~emovox.train.checkpoint.check_resumable`)."""
    return {
        "model": recipe.model,
        "model_params": recipe.params,
        "feature": recipe.feature.to_dict(),
        "labels": list(data.classes),
        "data": data_fingerprint(data.manifest),
    }


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


__all__ = [
    "Dataset",
    "Recipe",
    "default_feature",
    "fit",
    "inference_settings",
    "load_dataset",
    "predict_subset",
    "speaker_subset",
    "train",
    "write_history",
]
