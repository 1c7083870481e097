"""Cross-validated, speaker-independent evaluation: ``emovox evaluate``.

One runner for every protocol: a :class:`~emovox.evaluate.plans.Plan` (lists of train/test
folds) is run fold by fold by :func:`run` — a fresh model trained on the fold's training side
(validation speakers for early stopping drawn from it), then scored on its test side. Results
per fold are written as they finish, so an interrupted run resumes where it stopped; the summary
goes to ``metrics.json``, ``confusion.png``, ``report.md`` and ``predictions.csv``
(:mod:`emovox.evaluate.results`). :func:`evaluate` (folds of one manifest) and
:func:`evaluate_cross_corpus` (train on some corpora, test on others) only build the plan.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox._fs import atomic_write_text
from emovox._version import __version__
from emovox.augment import stable_hash
from emovox.data.labels import NO_CLASS, LabelScheme
from emovox.data.manifest import Manifest
from emovox.data.protocols import LOCO_PAIRS, Fold, SpeakerLeakWarning
from emovox.data.taxonomy import DIMENSIONS, dropped_by_corpus
from emovox.evaluate.conditions import ConditionScorer, parse_conditions, summarize_conditions
from emovox.evaluate.engines import FoldJob, LocalFolds
from emovox.evaluate.machine import machine_info
from emovox.evaluate.plans import Plan, cross_corpus_plan, protocol_plan
from emovox.evaluate.results import (
    EvaluationResult,
    FoldResult,
    mean_scores,
    read_predictions,
    summarize_adapted,
    summarize_components,
    write_csv,
    write_results,
)
from emovox.features import FeatureCache
from emovox.inference.adaptation import (
    BALANCE_GUARD,
    DEFAULT_GUARD,
    balance_speakers,
    guard_speakers,
)
from emovox.metrics import classification_metrics, dimension_metrics, sign_ua
from emovox.progress import console
from emovox.train.aux import dimension_targets
from emovox.train.checkpoint import RUN_FILE, check_resumable, check_unclaimed
from emovox.train.dataset import Dataset, dimension_only_rows, load_dataset, variant_options
from emovox.train.distill import check_teacher_speakers, fold_teacher
from emovox.train.pipeline import fit, predict_subset, run_identity
from emovox.train.recipe import Recipe, as_recipe

__all__ = ["evaluate", "evaluate_cross_corpus", "machine_info", "run"]


def run(
    data: Dataset,
    plan: Plan,
    recipe: Recipe,
    out: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    scorer: ConditionScorer | None = None,
    engine=None,
) -> tuple[list[FoldResult], list[dict]]:
    """Run every fold of ``plan``; write each fold's ``metrics.json``, ``predictions.csv`` and
    trained model (``model/``, a bundle) into ``out/fold_N`` as it finishes (reused with
    ``resume``, which refuses a folder started with another recipe, feature, labels, data or
    protocol: ``out/run.json``). A reused fold whose model is there is scored under the test
    conditions it has no score for yet, so robustness rows can be added to a finished run.
    ``engine`` runs the folds still to do (:mod:`emovox.evaluate.engines`; default: one after
    the other here).

    Returns:
        The fold results and the test predictions of every fold (rows of ``predictions.csv``),
        in the plan's order.
    """
    identity = {**run_identity(recipe, data), "protocol": plan.protocol}
    check_resumable(out, identity, resume)
    finished: dict[int, tuple[FoldResult, list[dict]]] = {}
    todo = []
    for fold in plan.folds:
        fold_dir = out / f"fold_{fold.index}"
        done = fold_dir / "metrics.json"
        if resume and done.is_file():
            result = FoldResult.from_dict(json.loads(done.read_text()))
            rows = read_predictions(fold_dir / "predictions.csv")
            what = "arousal and valence only" if result.ua is None else f"UA {result.ua:.1f}"
            console.log(f"fold {fold.index}: reusing finished result ({what})")
            changed = _adapt_reused_fold(data, fold, recipe, result, rows)
            if changed is not None:
                rows = changed
                write_csv(fold_dir / "predictions.csv", rows)
            if (
                scorer is not None
                and result.ua is not None
                and _score_missing_conditions(data, fold, recipe, fold_dir, result, rows, scorer)
            ) or changed is not None:
                atomic_write_text(done, json.dumps(result.to_dict(), indent=2))
            finished[fold.index] = (result, rows)
        else:
            todo.append(fold)
    job = FoldJob(run_fold, data, recipe, plan, out, scorer, progress, FOLD_MODEL)
    for fold, result, rows in (engine or LocalFolds()).run(job, todo):
        fold_dir = out / f"fold_{fold.index}"
        write_csv(fold_dir / "predictions.csv", rows)
        atomic_write_text(fold_dir / "metrics.json", json.dumps(result.to_dict(), indent=2))
        finished[fold.index] = (result, rows)
    results = [finished[f.index][0] for f in plan.folds]
    preds = [row for f in plan.folds for row in finished[f.index][1]]
    return results, preds


FOLD_MODEL = "model"
"""The folder of a fold's trained model (a bundle) inside ``fold_N``."""


def _adapt_reused_fold(
    data: Dataset, fold: Fold, recipe: Recipe, result: FoldResult, rows: list[dict]
) -> list[dict] | None:
    """A reused fold finished before every recipe was scored speaker-adapted: its
    speaker-adapted scores (into ``result``) and prediction rows with the adapted and guarded
    columns, from the per-utterance probabilities it saved (balanced outputs need no model).
    ``None`` when there is nothing to add (already adapted, ``speaker_norm``, no classes)."""
    if result.ua is None or result.speaker_adapted is not None or recipe.training.speaker_norm:
        return None
    by_path = {r["path"]: r for r in rows}
    saved = [by_path[data.manifest[i].path] for i in fold.test]
    proba = np.array([[float(r[f"p_{c}"]) for c in data.classes] for r in saved], np.float32)
    adapted, pa, pg = adapted_scores(None, data, fold.test, recipe, proba)
    result.speaker_adapted = adapted
    console.log(
        f"fold {fold.index}: speaker-adapted from its saved predictions: UA {adapted['ua']:.1f}, "
        f"guarded {adapted['guarded']['ua']:.1f}"
    )
    dims = {f"{d}{end}" for d in DIMENSIONS for end in ("", "_target")}
    out = []
    for row, a, g in zip(saved, pa, pg, strict=True):
        new = {k: v for k, v in row.items() if k not in dims}
        new.update(_prediction_columns(data.classes, a, ADAPTED))
        new.update(_prediction_columns(data.classes, g, GUARDED))
        out.append(new | {k: v for k, v in row.items() if k in dims})
    return out


def _score_missing_conditions(
    data: Dataset,
    fold: Fold,
    recipe: Recipe,
    fold_dir: Path,
    result: FoldResult,
    rows: list[dict],
    scorer: ConditionScorer,
) -> bool:
    """Score a reused fold's saved model under the conditions it has no score for; whether any
    was added."""
    missing = [n for n in scorer.names if n not in (result.conditions or {})]
    if not missing or not (fold_dir / FOLD_MODEL / "config.json").is_file():
        return False
    from emovox.inference.bundle import load_bundle

    net = load_bundle(fold_dir / FOLD_MODEL).model
    index = {c: i for i, c in enumerate(data.classes)}
    by_path = {r["path"]: index[r["predicted"]] for r in rows}
    clean = [by_path[data.manifest[i].path] for i in fold.test]
    got = scorer.score(net, fold.test, recipe.training, True, clean, only=missing)
    console.log(f"fold {fold.index}: scored its saved model under {', '.join(got)}")
    result.conditions = {**(result.conditions or {}), **got}
    return bool(got)


def run_fold(
    data: Dataset,
    fold: Fold,
    recipe: Recipe,
    plan: Plan,
    *,
    progress: bool = True,
    scorer: ConditionScorer | None = None,
    model_dir: Path | None = None,
) -> tuple[FoldResult, list[dict]]:
    """Train on ``fold.train`` (with its own teacher, :func:`with_fold_teacher`), score on
    ``fold.test``: the fold's result and predictions (the model saved in ``model_dir``).
    Every test utterance is classified alone (the headline: what a user with one clip gets),
    and is also scored adapted to its speaker, from that speaker's other unlabelled utterances
    (``speaker_adapted``, :func:`speaker_adapted`)."""
    what = ", ".join(fold.test_corpora or fold.test_speakers)
    position = [f.index for f in plan.folds].index(fold.index) + 1
    counter = f"fold {fold.index} ({position} of {len(plan.folds)})"
    console.log(counter + (f": testing on {what}" if what else ""))
    if fold.dimensions_only and not recipe.training.dimensions:
        raise ValueError(
            f"fold {fold.index} tests {what}, which has no class of the labels, only arousal: "
            "it needs the dimensions head (--train-param dimensions=true)"
        )
    recipe = with_fold_teacher(recipe, fold)
    net, trained, val_speakers = fit(data, fold.train, recipe, progress=progress)
    if model_dir is not None:
        _save_fold_model(model_dir, net, data, recipe, trained)
    ty = data.y[list(fold.test)]
    t0 = time.time()
    scores = predict_subset(
        net, data, fold.test, recipe.training, per_utterance=True, dimensions=True
    )
    dt = time.time() - t0
    proba, dims = scores[:, : len(data.classes)], scores[:, len(data.classes) :]
    if fold.dimensions_only:
        result = FoldResult(
            **_training_facts(fold, net, trained, val_speakers, dt),
            ua=None,
            wa=None,
            macro_f1=None,
            n_test=len(fold.test),
            dimensions=_dimension_scores(data, fold.test, dims),
        )
        a = result.dimensions["arousal"]
        console.log(
            f"fold {fold.index}: scored on arousal and valence only: arousal CCC "
            f"{a['ccc']:.2f}, low/high UA {a['ua_sign']:.1f} (best epoch {result.best_epoch}, "
            f"{trained.seconds:.0f} s)"
        )
        return result, prediction_rows(data, fold, proba, plan.by_corpus, dims=dims)
    m = classification_metrics(ty, proba.argmax(1), data.classes)
    adapted, pa, pg = adapted_scores(net, data, fold.test, recipe, proba)
    result = FoldResult(
        **_training_facts(fold, net, trained, val_speakers, dt),
        ua=m["ua"],
        wa=m["wa"],
        macro_f1=m["macro_f1"],
        n_test=m["n"],
        components=component_scores(net, data, fold.test, recipe) or None,
        conditions=scorer.score(net, fold.test, recipe.training, True, proba.argmax(1))
        if scorer
        else None,
        speaker_adapted=adapted,
        dimensions=_dimension_scores(data, fold.test, dims) if dims.shape[1] else None,
    )
    extra = (
        f", speaker-adapted UA {adapted['ua']:.1f}, guarded {adapted['guarded']['ua']:.1f}"
        if adapted
        else ""
    )
    if result.dimensions:
        a = result.dimensions["arousal"]
        extra += f"; arousal CCC {a['ccc']:.2f}, low/high UA {a['ua_sign']:.1f}"
    console.log(
        f"fold {fold.index}: UA {result.ua:.1f}  WA {result.wa:.1f}  F1 {result.macro_f1:.1f}  "
        f"(per utterance{extra}; best epoch {result.best_epoch}, {trained.seconds:.0f} s)"
    )
    rows = prediction_rows(data, fold, proba, plan.by_corpus, adapted=pa, guarded=pg, dims=dims)
    return result, rows


def adapted_scores(net, data: Dataset, test, recipe: Recipe, proba) -> tuple[dict, object, object]:
    """A fold's speaker-adapted scores (UA, WA, macro-F1; ``guarded``; the one-emotion-per-
    speaker test) and its adapted and guarded probabilities (:func:`speaker_adapted`)."""
    pa, pg = speaker_adapted(net, data, test, recipe, proba)
    ty = data.y[list(test)]
    scores = _scores(ty, pa, data.classes)
    scores["guarded"] = _scores(ty, pg, data.classes)
    scores["one_emotion_per_speaker"] = one_emotion_scores(net, data, test, recipe, proba)
    return scores, pa, pg


def speaker_adapted(net, data: Dataset, test, recipe: Recipe, proba) -> tuple:
    """The test clips speaker-adapted, unguarded and guarded (``[n, C]`` each; ``proba``: the
    per-utterance probabilities of ``test``). A ``speaker_norm`` recipe standardises every clip
    with its speaker's statistics (:data:`DEFAULT_GUARD`); any other balances each speaker's
    output probabilities (:func:`balance_speakers`, :data:`BALANCE_GUARD`)."""
    speakers = [data.manifest[i].speaker for i in test]
    if recipe.training.speaker_norm:
        adapted = predict_subset(net, data, test, recipe.training)
        return adapted, guard_speakers(proba, adapted, speakers, DEFAULT_GUARD)
    adapted = balance_speakers(proba, speakers)
    return adapted, guard_speakers(proba, adapted, speakers, BALANCE_GUARD)


def with_fold_teacher(recipe: Recipe, fold: Fold) -> Recipe:
    """With distillation, the recipe whose teacher is the fold's own (a fold model of the
    teacher's run that tested the same speakers, :func:`~emovox.train.distill.fold_teacher`),
    checked not to have heard the fold's test speakers; the recipe as it is otherwise."""
    if recipe.training.distill <= 0:
        return recipe
    teacher = fold_teacher(recipe.training.teacher, fold.test_speakers)
    check_teacher_speakers(teacher, (), fold.test_speakers)
    return recipe.with_training(teacher=str(teacher))


def _training_facts(fold: Fold, net, trained, val_speakers: list[str], dt: float) -> dict:
    """The fields of a :class:`FoldResult` that say how its model was trained and timed."""
    return {
        "fold": fold.index,
        "test_speakers": list(fold.test_speakers),
        "validation_speakers": val_speakers,
        "n_train": len(fold.train),
        "best_epoch": trained.best_epoch,
        "best_val_ua": trained.best_val_ua,
        "epochs_run": len(trained.history),
        "train_seconds": round(trained.seconds, 2),
        "inference_seconds": round(dt, 4),
        "n_parameters": net.n_parameters,
        "test_corpora": list(fold.test_corpora) or None,
        "best_val_ua_by_corpus": trained.best_val_ua_by_corpus or None,
    }


def _dimension_scores(data: Dataset, indices, dims: np.ndarray) -> dict[str, dict]:
    """:func:`~emovox.metrics.dimension_metrics` of each predicted dimension against the
    circumplex targets of the test utterances (:func:`~emovox.train.aux.dimension_targets`)."""
    targets = dimension_targets([data.manifest[i] for i in indices])
    return {d: dimension_metrics(dims[:, k], targets[:, k]) for k, d in enumerate(DIMENSIONS)}


def _save_fold_model(model_dir: Path, net, data: Dataset, recipe: Recipe, trained) -> None:
    """A fold's model as a bundle (for later scoring: test conditions, speed)."""
    from emovox.inference.bundle import save_bundle
    from emovox.train.pipeline import inference_settings

    save_bundle(
        model_dir,
        net,
        recipe.feature,
        data.classes,
        training=recipe.training.to_dict(),
        inference=inference_settings(recipe.training, recipe.feature),
        training_result={"best_epoch": trained.best_epoch, "best_val_ua": trained.best_val_ua},
    )


def _scores(y, proba, classes) -> dict[str, float]:
    m = classification_metrics(y, proba.argmax(1), classes)
    return {k: m[k] for k in ("ua", "wa", "macro_f1")}


ONE_EMOTION_MIN_CLIPS = 2
"""A test speaker joins the one-emotion-per-speaker test with an emotion of at least this many
clips (statistics need more than one)."""


def one_emotion_rows(speakers: Sequence[str], labels: Sequence, draw: int = 0) -> list[int]:
    """The rows (indices into ``speakers`` and ``labels``) of the one-emotion-per-speaker test:
    each speaker keeps the rows of one label, drawn from the speaker's name (and ``draw``, for
    other draws) among its labels with at least :data:`ONE_EMOTION_MIN_CLIPS` rows (the same
    draw in every run)."""
    by_speaker: dict[str, dict] = {}
    for r, (s, y) in enumerate(zip(speakers, labels, strict=True)):
        by_speaker.setdefault(s, {}).setdefault(y, []).append(r)
    keep: list[int] = []
    for speaker, classes in sorted(by_speaker.items()):
        options = sorted(c for c, rows in classes.items() if len(rows) >= ONE_EMOTION_MIN_CLIPS)
        if options:
            rng = np.random.default_rng(stable_hash(speaker) + draw)
            keep += classes[options[int(rng.integers(len(options)))]]
    return sorted(keep)


def one_emotion_scores(net, data: Dataset, test, recipe: Recipe, proba) -> dict:
    """The test set of the adaptation guard's worst case: each test speaker keeps the clips of
    one emotion only (drawn per speaker, from its name, among those with at least
    :data:`ONE_EMOTION_MIN_CLIPS` clips), so that the speaker's statistics are that emotion's.
    Scored per utterance (``proba``, the same rows as the full test), speaker-adapted with the
    statistics of those clips alone, and guarded (:func:`guard_speakers`)."""
    row_of = {int(i): r for r, i in enumerate(test)}
    test = [int(i) for i in test]
    speakers = [data.manifest[i].speaker for i in test]
    keep = [test[r] for r in one_emotion_rows(speakers, [int(data.y[i]) for i in test])]
    if not keep:
        return {"n": 0, "speakers": 0}
    y = data.y[keep]
    per_utt = proba[[row_of[i] for i in keep]]
    adapted, guarded = speaker_adapted(net, data, keep, recipe, per_utt)
    return {
        "n": len(keep),
        "speakers": len({data.manifest[i].speaker for i in keep}),
        "per_utterance": _scores(y, per_utt, data.classes),
        "adapted": _scores(y, adapted, data.classes),
        "guarded": _scores(y, guarded, data.classes),
    }


ADAPTED = "adapted_"
"""Prefix of the speaker-adapted columns of ``predictions.csv`` (``adapted_predicted`` and the
probabilities ``adapted_p_<class>``), written for every fold with classes
(:func:`speaker_adapted`)."""

GUARDED = "guarded_"
"""Prefix of the guarded speaker-adapted columns of ``predictions.csv``
(:mod:`emovox.inference.adaptation`)."""


def prediction_rows(
    data: Dataset,
    fold: Fold,
    proba,
    by_corpus: bool,
    *,
    adapted=None,
    guarded=None,
    dims=None,
) -> list[dict]:
    """One row per test item: its fold, file, speaker, label, prediction and probabilities
    (per utterance), then, with ``adapted`` probabilities, the speaker-adapted prediction and
    probabilities (columns prefixed :data:`ADAPTED`), and the guarded ones (:data:`GUARDED`);
    with ``dims`` (a model with the dimensions head) each predicted dimension and its
    circumplex target (``arousal``, ``arousal_target``, ...; an unknown target is empty)."""
    targets = None
    if dims is not None and dims.shape[1]:
        targets = dimension_targets([data.manifest[i] for i in fold.test])
    rows = []
    for n, (i, p) in enumerate(zip(fold.test, proba, strict=True)):
        u = data.manifest[i]
        row = {"fold": fold.index, **({"corpus": u.corpus} if by_corpus else {})}
        label = data.classes[data.y[i]] if data.y[i] != NO_CLASS else ""
        row.update(path=u.path, speaker=u.speaker, label=label)
        row.update(_prediction_columns(data.classes, p))
        if adapted is not None:
            row.update(_prediction_columns(data.classes, adapted[n], ADAPTED))
        if guarded is not None:
            row.update(_prediction_columns(data.classes, guarded[n], GUARDED))
        if targets is not None:
            for k, d in enumerate(DIMENSIONS):
                t = float(targets[n, k])
                row[d] = round(float(dims[n, k]), 6)
                row[f"{d}_target"] = "" if np.isnan(t) else round(t, 3)
        rows.append(row)
    return rows


def _prediction_columns(classes: list[str], p, prefix: str = "") -> dict:
    row = {f"{prefix}predicted": classes[int(p.argmax())]}
    row.update({f"{prefix}p_{c}": round(float(v), 6) for c, v in zip(classes, p, strict=True)})
    return row


def component_scores(net, data: Dataset, indices, recipe: Recipe) -> dict[str, dict]:
    """UA, WA and macro-F1 on ``data[indices]`` of each part of a fusion model on its own
    (:meth:`~emovox.models.base.SERModel.components`), from the same trained weights: the
    ablation of a fusion costs no extra training."""
    y = data.y[list(indices)]
    out = {}
    for name, part in net.components().items():
        pred = predict_subset(part, data, indices, recipe.training, per_utterance=True).argmax(1)
        m = classification_metrics(y, pred, data.classes)
        out[name] = {k: m[k] for k in ("ua", "wa", "macro_f1")}
    return out


def summarize(
    data: Dataset,
    plan: Plan,
    recipe: Recipe,
    folds: list[FoldResult],
    preds: list[dict],
    *,
    started: float,
    command: Sequence[str] | None,
    extra: dict | None = None,
    conditions: Sequence[str] = (),
) -> EvaluationResult:
    """The content of ``metrics.json`` for a finished plan."""
    index = {c: i for i, c in enumerate(data.classes)}
    labelled = [r for r in preds if r["label"]]  # not the rows of dimensions-only folds
    pooled = classification_metrics(
        [index[r["label"]] for r in labelled],
        [index[r["predicted"]] for r in labelled],
        data.classes,
    )
    classified = [f for f in folds if f.ua is not None]
    content = {
        "protocol": plan.protocol,
        "model": recipe.model,
        "labels": data.classes,
        **(extra or {}).get("head", {}),
        **mean_scores(classified),
        "pooled": {k: pooled[k] for k in ("ua", "wa", "macro_f1")},
        "folds": [f.to_dict() for f in folds],
        "per_class": pooled["per_class"],
        "confusion": pooled["confusion"],
    }
    if plan.by_corpus:
        content["per_test_corpus"] = per_corpus_scores(preds, data.classes)
    if plan.protocol == LOCO_PAIRS:
        content["nested_validation"] = nested_validation(plan, preds, data.classes)
    content.update(
        n_utterances=len(data.manifest),
        **(extra or {}).get("counts", {}),
        n_test_predictions=len(preds),
        skipped_files=len(data.errors),
        dropped_utterances=(extra or {}).get("dropped", {}),
        feature=recipe.feature.to_dict(),
        training=recipe.training.to_dict(),
        model_params=recipe.params,
        n_parameters=max((f.n_parameters or 0 for f in folds), default=0)
        or recipe.build(len(data.classes), tuple(data.features[0].shape[:2])).n_parameters,
        timing=_timing(data, folds, started),
        command=list(command or []),
        machine=machine_info(),
        emovox_version=__version__,
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    rows = [f.to_dict() for f in classified]
    if conditions:
        content["conditions"] = summarize_conditions(rows, conditions)
    if any(f.components for f in folds):
        content["components"] = summarize_components(classified)
    content["scoring"] = SCORING
    if any(f.speaker_adapted for f in folds):
        content["speaker_adapted"] = summarize_adapted(classified)
    if preds and all(f"{DIMENSIONS[0]}_target" in r for r in preds):
        content["dimensions"] = row_dimension_scores(preds)  # pooled over the folds' tests
    return EvaluationResult(folds, content)


SCORING = (
    "per-utterance: every test utterance classified alone (speaker normalisation, where the "
    "recipe uses it, from the utterance's own statistics); speaker_adapted: normalised with each "
    "test speaker's statistics over that speaker's other unlabelled test utterances; its guarded "
    "scores blend that with the per-utterance prediction as far as the spread of the speaker's "
    "per-utterance predictions allows (emovox.inference.adaptation); one_emotion_per_speaker: "
    "the same three on a test set where every speaker keeps one emotion's clips"
)
"""What ``metrics.json`` says of its numbers (``scoring``)."""

COMMON_FOUR = ("angry", "happy", "neutral", "sad")
"""The four classes every categorical corpus has: each test corpus is scored on them too."""


def nested_validation(plan: Plan, preds: list[dict], classes: list[str]) -> dict:
    """The nested validation of a ``loco`` run from the folds of a ``loco-pairs`` plan.

    Each pair fold (corpora ``j`` and ``k`` left out) is scored on each of its two corpora
    alone (``pairs``). For the corpus ``k`` a ``loco`` fold leaves out, ``by_left_out[k]``
    holds the scores on every partner ``j`` of the pair folds run with ``k`` (4-class and own-
    class UA, and the arousal head's low/high UA where the model has it) and their means:
    how well the recipe reaches corpora it has not heard when neither ``k``'s clips nor its
    labels took part, so a choice judged by it never looks at ``k``. ``mean`` is the mean of
    those means over the left-out corpora."""
    by_fold: dict[int, list[dict]] = {}
    for r in preds:
        by_fold.setdefault(int(r["fold"]), []).append(r)
    pairs, by_left_out = [], {}
    for fold in plan.folds:
        scores = per_corpus_scores(by_fold.get(fold.index, []), classes)
        cells = {c: _nested_cell(scores[c]) for c in fold.test_corpora if c in scores}
        pairs.append({"fold": fold.index, "corpora": list(fold.test_corpora), "ua": cells})
        for k in fold.test_corpora:
            for j in fold.test_corpora:
                if j != k and j in cells:
                    by_left_out.setdefault(k, {"partners": {}})["partners"][j] = cells[j]
    for entry in by_left_out.values():
        for key in NESTED_SCORES:
            values = [v[key] for v in entry["partners"].values() if key in v]
            if values:
                entry[key] = float(np.mean(values))
    means = {
        key: float(np.mean([e[key] for e in by_left_out.values()]))
        for key in NESTED_SCORES
        if by_left_out and all(key in e for e in by_left_out.values())
    }
    return {"pairs": pairs, "by_left_out": dict(sorted(by_left_out.items())), "mean": means}


NESTED_SCORES = ("own_classes", "four_classes", "arousal")
"""What the nested validation averages: UA on a corpus's own classes, on the common four, and
the dimensions head's arousal low/high UA (models with the head)."""


def _nested_cell(scores: dict) -> dict[str, float]:
    """One test corpus of a pair fold: its :data:`NESTED_SCORES` that it has."""
    cell = {k: scores[k]["ua"] for k in ("own_classes", "four_classes") if k in scores}
    arousal = sign_ua(scores.get("dimensions", {}).get("arousal", {}))
    if arousal is not None:
        cell["arousal"] = arousal
    return cell


def per_corpus_scores(preds: list[dict], classes: list[str]) -> dict[str, dict]:
    """Every test corpus scored on its own: on all the model's classes (UA, WA, macro-F1, count,
    per-class scores, confusion), on the classes the corpus has (``own_classes``: the model's
    probabilities restricted to them) and on :data:`COMMON_FOUR` (``four_classes``: the rows of
    those labels, the probabilities restricted to them). Rows with speaker-adapted columns
    (:data:`ADAPTED`) add the same three scores, speaker-adapted (``speaker_adapted``)."""
    out = {}
    for corpus in sorted({r["corpus"] for r in preds}):
        rows = [r for r in preds if r["corpus"] == corpus]
        if not any(r["label"] for r in rows):  # a dimensions-only fold's corpus
            out[corpus] = dimensions_only_scores(rows, classes)
            continue
        m = restricted_metrics(rows, classes)
        out[corpus] = {k: m[k] for k in ("ua", "wa", "macro_f1", "n", "per_class", "confusion")}
        out[corpus].update(_subsets(rows, classes))
        if all(f"{DIMENSIONS[0]}_target" in r for r in rows):
            out[corpus]["dimensions"] = row_dimension_scores(rows)
        for key, prefix in (("speaker_adapted", ADAPTED), ("speaker_adapted_guarded", GUARDED)):
            if all(f"{prefix}predicted" in r for r in rows):
                ma = restricted_metrics(rows, classes, prefix)
                adapted = {k: ma[k] for k in ("ua", "wa", "macro_f1", "n")}
                out[corpus][key] = adapted | _subsets(rows, classes, prefix)
    return out


def dimensions_only_scores(rows: list[dict], classes: list[str]) -> dict:
    """A test corpus without classes: its count, the dimensions head's scores and how often
    each class was predicted (``predicted``, in %: what the model calls such clips)."""
    counts = {c: sum(r["predicted"] == c for r in rows) for c in classes}
    out = {"n": len(rows), "dimensions_only": True}
    out["predicted"] = {c: round(100.0 * n / len(rows), 2) for c, n in counts.items()}
    if all(f"{DIMENSIONS[0]}_target" in r for r in rows):
        out["dimensions"] = row_dimension_scores(rows)
    return out


def row_dimension_scores(rows: list[dict]) -> dict[str, dict]:
    """:func:`~emovox.metrics.dimension_metrics` of prediction rows with dimension columns."""

    def number(v) -> float:
        return float("nan") if v in ("", None) else float(v)

    return {
        d: dimension_metrics([number(r[d]) for r in rows], [number(r[f"{d}_target"]) for r in rows])
        for d in DIMENSIONS
    }


def _subsets(rows: list[dict], classes: list[str], prefix: str = "") -> dict[str, dict]:
    """Scores of ``rows`` on the classes they have and on :data:`COMMON_FOUR`."""
    own = [c for c in classes if c in {r["label"] for r in rows}]
    out = {"own_classes": _short(restricted_metrics(rows, own, prefix), own)}
    four = [c for c in classes if c in COMMON_FOUR]
    kept = [r for r in rows if r["label"] in four]
    if len(four) == len(COMMON_FOUR) and kept:
        out["four_classes"] = _short(restricted_metrics(kept, four, prefix), four)
    return out


def restricted_metrics(rows: list[dict], classes: list[str], prefix: str = "") -> dict:
    """Classification metrics of prediction rows when only ``classes`` may be predicted (the
    most probable of them, from the rows' ``<prefix>p_<class>`` columns)."""
    index = {c: i for i, c in enumerate(classes)}
    y = [index[r["label"]] for r in rows]
    pred = [int(np.argmax([float(r[f"{prefix}p_{c}"]) for c in classes])) for r in rows]
    return classification_metrics(y, pred, classes)


def _short(m: dict, classes: list[str]) -> dict:
    return {"classes": list(classes), **{k: m[k] for k in ("ua", "wa", "macro_f1", "n")}}


def _timing(data: Dataset, folds: list[FoldResult], started: float) -> dict:
    n = sum(f.n_test for f in folds)
    return {
        "feature_extraction_seconds": round(data.extract_seconds, 2),
        "training_seconds": round(sum(f.train_seconds for f in folds), 2),
        "inference_ms_per_utterance": round(
            1000 * sum(f.inference_seconds for f in folds) / max(n, 1), 3
        ),
        "wall_seconds": round(time.time() - started, 2),
    }


# -- the two entry points ----------------------------------------------------------------------
def evaluate(
    manifest: Manifest,
    scheme: LabelScheme,
    recipe: Recipe | str,
    out_dir: str | os.PathLike,
    *,
    protocol: str = "emobox",
    k: int | None = None,
    folds: list[int] | None = None,
    cache: FeatureCache | None = None,
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    conditions: Sequence[str] = (),
    engine=None,
    overwrite: bool = False,
) -> EvaluationResult:
    """Run ``protocol`` over ``manifest`` and write the results into ``out_dir``.

    Args:
        recipe: what to train (a model name stands for its own recipe).
        folds: 1-based fold numbers to run (default: all).
        resume: reuse the results of folds already finished in ``out_dir``.
        command: the command line to record in ``metrics.json``.
        conditions: test conditions, e.g. ``["white:20", "gain:-20"]``
            (:func:`emovox.augment.parse_condition`): each fold's model is also scored on its
            test files under each (``conditions`` in the fold rows and in ``metrics.json``).
        engine: where the folds run (:mod:`emovox.evaluate.engines`: here one after the other,
            or ``RayFolds()`` in parallel on Ray); the results are the same.
        overwrite: replace the results of an earlier run in ``out_dir``; without it (or
            ``resume``) such a folder is refused before any work.

    Returns:
        The result (a mapping of the content of ``metrics.json``).

    Raises:
        FileExistsError: ``out_dir`` holds an earlier run and neither ``resume`` nor
            ``overwrite`` is given.
    """
    started, recipe = time.time(), as_recipe(recipe)
    out = _results_folder(out_dir, resume, overwrite)
    dropped = _dropped(manifest, scheme, recipe.training)
    _log_dropped(dropped, scheme)
    conds = parse_conditions(conditions)  # a typo fails here, before any training
    data = load_dataset(
        manifest, scheme, recipe.feature, cache, progress, **variant_options(recipe.training)
    )
    scorer = ConditionScorer(data, conds, cache, progress) if conditions else None
    plan = protocol_plan(data.manifest, protocol, k, recipe.training.seed).select(folds)
    return run_and_report(
        data,
        plan,
        recipe,
        out,
        {"dropped": dropped},
        started=started,
        command=command,
        resume=resume,
        progress=progress,
        scorer=scorer,
        engine=engine,
    )


def run_and_report(
    data: Dataset,
    plan: Plan,
    recipe: Recipe,
    out: Path,
    extra: dict,
    *,
    started: float,
    command: Sequence[str] | None,
    resume: bool = False,
    progress: bool = True,
    scorer: ConditionScorer | None = None,
    engine=None,
) -> EvaluationResult:
    """:func:`run` the plan, :func:`summarize` it and write every result file into ``out``."""
    results, preds = run(
        data, plan, recipe, out, resume=resume, progress=progress, scorer=scorer, engine=engine
    )
    result = summarize(
        data,
        plan,
        recipe,
        results,
        preds,
        started=started,
        command=command,
        extra=extra,
        conditions=scorer.names if scorer else (),
    )
    title = None
    if result.protocol == "cross-corpus":
        arrow = f"{'+'.join(result['train_corpora'])} → {'+'.join(result['test_corpora'])}"
        title = f"{recipe.model} · {arrow} · UA {result.ua:.1f} %"
    write_results(out, result, preds, title=title)
    return result


def evaluate_cross_corpus(
    train: Manifest,
    test: Manifest,
    scheme: LabelScheme,
    recipe: Recipe | str,
    out_dir: str | os.PathLike,
    *,
    cache: FeatureCache | None = None,
    progress: bool = True,
    command: list[str] | None = None,
    sources: dict[str, list[str]] | None = None,
    overwrite: bool = False,
) -> EvaluationResult:
    """Train on ``train`` (the union of the training corpora), test on ``test`` (other corpora).

    Utterances whose labels are outside ``scheme`` are dropped and counted per corpus (logged, and
    in ``metrics.json`` as ``dropped_utterances``). Validation speakers for early stopping come
    from the training corpora. Writes the same files as :func:`evaluate` (protocol
    ``cross-corpus``, one fold: the test set, plus ``per_test_corpus`` scores).

    Args:
        sources: what to record as the corpora, e.g. ``{"train": ["ravdess:DIR"], "test": [...]}``.
        overwrite: replace the results of an earlier run in ``out_dir`` (refused without it).

    Returns the result, as :func:`evaluate` does.
    """
    started, recipe = time.time(), as_recipe(recipe)
    out = _results_folder(out_dir, False, overwrite)
    _warn_shared_speakers(train, test)
    dropped = {
        "train": _dropped(train, scheme, recipe.training),
        "test": dropped_by_corpus(test, scheme),
    }
    for side, counts in dropped.items():
        _log_dropped(counts, scheme, f"{side} corpus ")
    # Only the training side lends rows without a class to the dimensions head.
    labelled_test = Manifest([u for u in test if scheme.target_of(u) is not None])
    train_paths = {u.path for u in train}
    data = load_dataset(
        train + labelled_test,
        scheme,
        recipe.feature,
        cache,
        progress,
        **variant_options(recipe.training),
        variants_of=train_paths,
    )
    is_test = {i for i, u in enumerate(data.manifest) if u.path not in train_paths}
    trained_labels = {u.label for i, u in enumerate(data.manifest) if i not in is_test}
    absent = [c for c in scheme.classes if c not in trained_labels]
    if absent:
        raise ValueError(
            f"the training corpora have no utterance of {absent}; choose --labels among "
            f"{sorted(trained_labels)}"
        )
    console.log(
        f"cross-corpus: training on {len(data.manifest) - len(is_test)} utterances of "
        f"{', '.join(sorted({u.corpus for u in train}))}, testing on {len(is_test)} "
        f"of {', '.join(sorted({u.corpus for u in test}))}"
    )
    facts = _cross_corpus_facts(data, train, test, dropped, is_test, sources)
    plan = cross_corpus_plan(data.manifest, is_test)
    return run_and_report(
        data, plan, recipe, out, facts, started=started, command=command, progress=progress
    )


def _cross_corpus_facts(data, train, test, dropped, is_test, sources) -> dict:
    """The corpora tables, sources and counts that a cross-corpus ``metrics.json`` adds."""

    def corpora(side: str, manifest: Manifest, items) -> dict:
        used: dict[str, int] = {}
        for i in items:
            used[data.manifest[i].corpus] = used.get(data.manifest[i].corpus, 0) + 1
        return {
            c: {
                "utterances": n,
                "used": used.get(c, 0),
                "dropped_utterances": dropped[side].get(c, 0),
                "speakers": len({u.speaker for u in manifest if u.corpus == c}),
            }
            for c, n in sorted(manifest.counts("corpus").items())
        }

    train_items = [i for i in range(len(data.manifest)) if i not in is_test]
    total: dict[str, int] = {}
    for counts in dropped.values():
        for c, n in counts.items():
            total[c] = total.get(c, 0) + n
    return {
        "head": {
            "train_corpora": corpora("train", train, train_items),
            "test_corpora": corpora("test", test, sorted(is_test)),
            "sources": sources or {},
        },
        "counts": {"n_train_utterances": len(train_items)},
        "dropped": dict(sorted(total.items())),
    }


RUN_MARKS = (RUN_FILE, "metrics.json")
"""What marks a folder as holding an evaluation's results."""


def _results_folder(out_dir: str | os.PathLike, resume: bool, overwrite: bool) -> Path:
    out = Path(out_dir)
    check_unclaimed(out, RUN_MARKS, resume=resume, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _warn_shared_speakers(train: Manifest, test: Manifest) -> None:
    leaked = sorted(set(train.speakers) & set(test.speakers))
    if leaked:
        warnings.warn(
            f"{len(leaked)} speaker(s) are in both the training and the test corpora "
            f"({', '.join(leaked[:10])}{' ...' if len(leaked) > 10 else ''}): the test is not "
            f"speaker-independent",
            SpeakerLeakWarning,
            stacklevel=3,
        )


def _dropped(manifest: Manifest, scheme: LabelScheme, training) -> dict[str, int]:
    """Per corpus, the rows that ``scheme`` drops and that a training with the dimensions head
    does not keep for it (:func:`~emovox.train.dataset.dimension_only_rows`, logged)."""
    counts = dropped_by_corpus(manifest, scheme)
    if training.keeps_dimension_rows:
        kept: dict[str, int] = {}
        for u in dimension_only_rows(manifest, scheme):
            kept[u.corpus] = kept.get(u.corpus, 0) + 1
        for corpus, n in kept.items():
            counts[corpus] -= n
            console.log(
                f"{corpus}: {n} utterance(s) without one of the classes kept to teach arousal "
                "and valence only"
            )
    return counts


def _log_dropped(counts: dict[str, int], scheme: LabelScheme, prefix: str = "") -> None:
    for corpus, n in counts.items():
        if n:
            console.log(
                f"{prefix}{corpus}: dropped {n} utterance(s) whose labels are outside "
                f"{', '.join(scheme.classes)}"
            )
