"""Distillation: a small network learns from a larger model's answers as well as from the labels.

The teacher is a saved bundle (any model: an encoder regression, an ensemble); its class
probabilities on every training file become soft targets (:func:`teacher_targets`), and the
student's loss mixes the cross-entropy with the labels and the cross-entropy with the teacher
(:func:`soft_cross_entropy`), with weight ``TrainConfig.distill``. An augmented copy of a file
keeps the teacher's answer on the file itself: the student learns to answer under noise,
clipping or a codec what the teacher answers on the clean recording.

A teacher must not have heard the speakers the student is validated or tested on
(:func:`check_teacher_speakers`). In an evaluation, ``teacher`` names the results folder of the
teacher's run of the same protocol, and each fold takes the fold model that was tested on the
same speakers (:func:`fold_teacher`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import torch

from emovox.features import FeatureCache, extract_files
from emovox.inference.bundle import CONFIG, load_bundle
from emovox.inference.predict import predict_proba
from emovox.train.batches import masked_log_softmax

FOLD_METRICS = "metrics.json"
"""The file next to a fold's ``model/`` that names its test and validation speakers."""


def fold_teacher(teacher: str | Path, test_speakers: Collection[str]) -> Path:
    """The teacher bundle for the fold that tests ``test_speakers``: ``teacher`` itself when it
    is a bundle, else the ``fold_*/model`` of that results folder whose fold tested the same
    speakers.

    Raises:
        FileNotFoundError: ``teacher`` is neither a bundle nor a results folder with such a fold
            (the folder and the speakers named).
    """
    root = Path(teacher)
    if (root / CONFIG).is_file():
        return root
    wanted = set(test_speakers)
    for metrics in sorted(root.glob(f"fold_*/{FOLD_METRICS}")):
        tested = json.loads(metrics.read_text()).get("test_speakers") or []
        model = metrics.parent / "model"
        if set(tested) == wanted and (model / CONFIG).is_file():
            return model
    some = ", ".join(sorted(wanted)[:3])
    raise FileNotFoundError(
        f"{root}: no teacher for the fold testing {len(wanted)} speaker(s) ({some}, ...): "
        "expected a bundle, or the results folder of the teacher's run of the same protocol "
        "with its fold models (fold_N/model)"
    )


def teacher_heard(bundle_dir: str | Path) -> set[str]:
    """The speakers a bundle of ``emovox train`` was trained on: its ``config.json``'s
    ``data.speakers`` less its validation speakers. (A fold model does not list them; its
    fold's ``metrics.json`` names the speakers it did not hear: :func:`check_teacher_speakers`.)

    Raises:
        ValueError: the bundle does not say which speakers it heard.
    """
    config = json.loads((Path(bundle_dir) / CONFIG).read_text())
    speakers = (config.get("data") or {}).get("speakers")
    validation = (config.get("training_result") or {}).get("validation_speakers")
    if speakers is None or validation is None:
        raise ValueError(f"{bundle_dir}: the bundle does not record the speakers it trained on")
    return set(speakers) - set(validation)


def check_teacher_speakers(
    bundle_dir: str | Path, validation: Collection[str], test: Collection[str]
) -> None:
    """Refuse a teacher that heard a speaker the student is validated or tested on: its answers
    on the training files would carry what it learnt from them.

    A fold model (``fold_N/model`` with ``fold_N/metrics.json``) held out exactly its fold's
    test and validation speakers, so those must cover ``validation`` and ``test``; a bundle of
    ``emovox train`` records the speakers it trained on (:func:`teacher_heard`).

    Raises:
        ValueError: a speaker the teacher heard (named), or a teacher that does not say.
    """
    bundle_dir = Path(bundle_dir)
    metrics = bundle_dir.parent / FOLD_METRICS
    wanted = set(validation) | set(test)
    if metrics.is_file():
        fold = json.loads(metrics.read_text())
        unheard = set(fold.get("test_speakers") or []) | set(fold.get("validation_speakers") or [])
        heard = wanted - unheard
    else:
        heard = wanted & teacher_heard(bundle_dir)
    if heard:
        some = ", ".join(sorted(heard)[:5])
        raise ValueError(
            f"teacher {bundle_dir} was trained on {len(heard)} speaker(s) this model is "
            f"validated or tested on ({some}): train the teacher with the same validation "
            "speakers (the same data and seed), or give the fold models of its run of the same "
            "protocol"
        )


def teacher_targets(
    bundle_dir: str | Path,
    paths: Sequence[str],
    classes: Sequence[str],
    cache: FeatureCache | None = None,
    progress: bool = True,
) -> np.ndarray:
    """``[len(paths), len(classes)]``: the teacher's probabilities of ``classes`` for each file,
    each clip classified alone (as the bundle predicts: its test crops), renormalised over
    ``classes``; a row of NaN where the file could not be read.

    Raises:
        ValueError: a class the teacher does not know, or a teacher that normalises per speaker
            (its answer on a clip would depend on the other clips).
    """
    bundle = load_bundle(bundle_dir)
    missing = [c for c in classes if c not in bundle.labels]
    if missing:
        raise ValueError(
            f"teacher {bundle_dir} does not know the class(es) {missing} (it has {bundle.labels})"
        )
    inference = bundle.config.get("inference") or {}
    if inference.get("speaker_norm"):
        raise ValueError(f"teacher {bundle_dir} normalises per speaker: give a per-clip model")
    feats, _ = extract_files(bundle.feature, list(paths), cache=cache, progress=progress)
    ok = [i for i, f in enumerate(feats) if f is not None]
    out = np.full((len(paths), len(classes)), np.nan, dtype=np.float32)
    if not ok:
        return out
    proba = predict_proba(
        bundle.model,
        [feats[i] for i in ok],
        test_crops=int(inference.get("test_crops") or 1),
        crop=inference.get("crop_frames"),
    )
    cols = proba[:, [bundle.labels.index(c) for c in classes]]
    out[ok] = cols / np.clip(cols.sum(1, keepdims=True), 1e-12, None)
    return out


def soft_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """The weighted mean over rows of ``-sum_c q_c log p_c``, ``p`` the student's softmax of
    ``logits / temperature`` and ``q`` the teacher's probabilities raised to ``1 / temperature``,
    both over each row's ``mask`` (its corpus's classes) alone; scaled by ``temperature ** 2``
    so that its gradients keep their size (Hinton et al.). Rows whose target is NaN, or whose
    weight is 0, add nothing; a batch of such rows gives 0."""
    known = ~torch.isnan(target).any(1) & (weight > 0)
    if not bool(known.any()):
        return logits.sum() * 0.0
    logits, target, mask, weight = logits[known], target[known], mask[known], weight[known]
    logp = masked_log_softmax(logits / temperature, mask)
    q = target.clamp(min=0).pow(1.0 / temperature) * mask
    q = q / q.sum(1, keepdim=True).clamp(min=1e-12)
    per_row = -(q * logp).sum(1)
    return temperature**2 * (weight * per_row).sum() / weight.sum()
