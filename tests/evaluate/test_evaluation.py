"""Tests for emovox.data.protocols, emovox.evaluate.runner and emovox.metrics."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import (
    SYNTH_EMOTIONS,
    SYNTH_SPEAKERS,
    TINY_CNN,
    synth_manifest,
    synth_scheme,
    tiny_config,
    tiny_recipe,
)
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

import emovox.evaluate.runner as evaluation
from emovox.data.protocols import SpeakerLeakWarning, make_folds
from emovox.metrics import classification_metrics, unweighted_accuracy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COMMAND = ["emovox", "evaluate", "--protocol", "speakers-kfold:2"]


def run_evaluation(corpus: Path, out: Path, **kwargs) -> dict:
    return evaluation.evaluate(
        synth_manifest(corpus),
        synth_scheme(),
        tiny_recipe(),
        out,
        progress=False,
        **{"protocol": "speakers-kfold", "k": 2, **kwargs},
    )


def spy_on_fit(monkeypatch) -> list[dict]:
    """Record every call of the pipeline's ``fit`` made by the evaluation (and still train)."""
    calls: list[dict] = []
    real_fit = evaluation.fit

    def fit(data, indices, *args, **kwargs):
        calls.append({"speakers": {data.manifest[i].speaker for i in indices}, "n": len(indices)})
        return real_fit(data, indices, *args, **kwargs)

    monkeypatch.setattr(evaluation, "fit", fit)
    return calls


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def kfold(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A speakers-kfold (K=2) evaluation of the tiny cnn on the synthetic corpus."""
    out = tmp_path_factory.mktemp("evaluation") / "kfold"
    with pytest.MonkeyPatch.context() as mp:
        calls = spy_on_fit(mp)
        metrics = run_evaluation(synth_corpus, out, command=COMMAND)
    return SimpleNamespace(out=out, metrics=metrics, calls=calls)


# -- protocols ------------------------------------------------------------------------------------


def test_speakers_kfold_is_speaker_disjoint_and_gender_balanced(synth_corpus: Path) -> None:
    manifest = synth_manifest(synth_corpus)
    folds = make_folds(manifest, "speakers-kfold", k=2)
    assert [f.index for f in folds] == [1, 2]
    assert sorted(s for f in folds for s in f.test_speakers) == list(SYNTH_SPEAKERS)
    for f in folds:
        assert sorted(f.train + f.test) == list(range(len(manifest)))
        test_spk = {manifest[i].speaker for i in f.test}
        assert test_spk == set(f.test_speakers)
        assert not test_spk & {manifest[i].speaker for i in f.train}
        assert {manifest[i].gender for i in f.test} == {"female", "male"}
    assert make_folds(manifest, "speakers-kfold", k=2) == folds  # deterministic


def test_loso_leaves_one_speaker_out(synth_corpus: Path) -> None:
    manifest = synth_manifest(synth_corpus)
    folds = make_folds(manifest, "loso")
    assert [f.test_speakers for f in folds] == [(s,) for s in SYNTH_SPEAKERS]
    for f in folds:
        assert {manifest[i].speaker for i in f.test} == set(f.test_speakers)
        assert len(f.train) == len(manifest) - len(f.test)


def test_random_protocol_warns_of_speaker_leakage(synth_corpus: Path) -> None:
    manifest = synth_manifest(synth_corpus)
    with pytest.warns(SpeakerLeakWarning, match="inflated"):
        folds = make_folds(manifest, "random", k=2)
    assert len(folds) == 2
    f = folds[0]
    assert f.test_speakers == ()
    assert {manifest[i].speaker for i in f.test} & {manifest[i].speaker for i in f.train}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpeakerLeakWarning)
        make_folds(manifest, "loso")
        make_folds(manifest, "speakers-kfold", k=2)


def test_bad_protocols_are_refused(synth_corpus: Path) -> None:
    manifest = synth_manifest(synth_corpus)
    with pytest.raises(ValueError, match="unknown protocol"):
        make_folds(manifest, "holdout")
    with pytest.raises(ValueError, match="K="):
        make_folds(manifest, "speakers-kfold", k=5)
    with pytest.raises(ValueError, match="none of the test speakers"):
        make_folds(manifest, "emobox")  # EmoBox fold 3 has none of actors 1-4


# -- evaluation -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_metrics_json_has_every_field(kfold: SimpleNamespace) -> None:
    m = json.loads((kfold.out / "metrics.json").read_text())
    assert m == json.loads(json.dumps(kfold.metrics.to_dict()))
    for key in (
        "ua",
        "wa",
        "macro_f1",
        "ua_std",
        "pooled",
        "folds",
        "per_class",
        "confusion",
        "protocol",
        "model",
        "n_utterances",
        "command",
        "timing",
    ):
        assert key in m, key
    assert m["protocol"] == "speakers-kfold-2"
    assert m["model"] == "cnn"
    assert m["labels"] == list(SYNTH_EMOTIONS)
    assert m["n_utterances"] == 32
    assert m["command"] == COMMAND
    assert m["training"] == tiny_config().to_dict()
    assert m["model_params"] == TINY_CNN
    assert set(m["pooled"]) == {"ua", "wa", "macro_f1"}
    assert [f["fold"] for f in m["folds"]] == [1, 2]
    for f in m["folds"]:
        assert {"fold", "test_speakers", "ua", "wa", "macro_f1"} <= set(f)
        for k in ("ua", "wa", "macro_f1"):
            assert 0.0 <= f[k] <= 100.0
    assert m["ua"] == pytest.approx(np.mean([f["ua"] for f in m["folds"]]))
    assert m["ua_std"] == pytest.approx(np.std([f["ua"] for f in m["folds"]]))
    assert list(m["per_class"]) == list(SYNTH_EMOTIONS)
    assert [v["support"] for v in m["per_class"].values()] == [8, 8, 8, 8]
    assert m["confusion"]["labels"] == list(SYNTH_EMOTIONS)
    matrix = np.array(m["confusion"]["matrix"])
    assert matrix.shape == (4, 4)
    assert matrix.sum() == 32
    assert matrix.sum(axis=1).tolist() == [8, 8, 8, 8]
    t = m["timing"]
    for k in ("feature_extraction_seconds", "training_seconds", "inference_ms_per_utterance"):
        assert t[k] >= 0.0, k
    assert t["training_seconds"] > 0.0
    assert t["inference_ms_per_utterance"] > 0.0


@pytest.mark.slow
def test_evaluation_writes_its_reports(kfold: SimpleNamespace) -> None:
    out = kfold.out
    assert (out / "confusion.png").read_bytes()[:8] == PNG_MAGIC
    report = (out / "report.md").read_text()
    assert "speakers-kfold-2" in report
    assert f"{kfold.metrics['ua']:.2f}" in report
    assert " ".join(COMMAND) in report
    rows = read_csv(out / "predictions.csv")
    assert len(rows) == 32
    assert {"fold", "path", "speaker", "label", "predicted"} <= set(rows[0])
    assert {f"p_{c}" for c in SYNTH_EMOTIONS} <= set(rows[0])
    assert len({r["path"] for r in rows}) == 32  # every utterance tested exactly once
    for r in rows:
        assert r["predicted"] in SYNTH_EMOTIONS
        assert sum(float(r[f"p_{c}"]) for c in SYNTH_EMOTIONS) == pytest.approx(1.0, abs=1e-4)
    for i in (1, 2):
        assert (out / f"fold_{i}" / "metrics.json").is_file()
        assert (out / f"fold_{i}" / "predictions.csv").is_file()


@pytest.mark.slow
def test_metrics_agree_with_the_predictions(kfold: SimpleNamespace) -> None:
    rows = read_csv(kfold.out / "predictions.csv")
    index = {c: i for i, c in enumerate(SYNTH_EMOTIONS)}
    pooled = classification_metrics(
        [index[r["label"]] for r in rows], [index[r["predicted"]] for r in rows], SYNTH_EMOTIONS
    )
    m = kfold.metrics
    assert m["pooled"]["ua"] == pytest.approx(pooled["ua"])
    assert m["confusion"] == pooled["confusion"]
    for f in m["folds"]:
        mine = [r for r in rows if int(r["fold"]) == f["fold"]]
        fm = classification_metrics(
            [index[r["label"]] for r in mine], [index[r["predicted"]] for r in mine], SYNTH_EMOTIONS
        )
        assert f["ua"] == pytest.approx(fm["ua"])
        assert f["wa"] == pytest.approx(fm["wa"])
        assert f["n_test"] == len(mine)


@pytest.mark.slow
def test_test_speakers_never_train_or_validate(kfold: SimpleNamespace) -> None:
    rows = read_csv(kfold.out / "predictions.csv")
    folds = kfold.metrics["folds"]
    assert len(kfold.calls) == len(folds)
    for f, call in zip(folds, kfold.calls, strict=True):
        test = set(f["test_speakers"])
        assert {r["speaker"] for r in rows if int(r["fold"]) == f["fold"]} == test
        assert f["validation_speakers"]
        assert not test & set(f["validation_speakers"])
        assert not test & call["speakers"]  # the rows the fold trained on
        assert set(f["validation_speakers"]) < call["speakers"]  # drawn from the training side
        assert call["n"] == f["n_train"] == 32 - f["n_test"]


@pytest.mark.slow
def test_only_the_chosen_folds_run(synth_corpus: Path, kfold, tmp_path: Path, monkeypatch) -> None:
    calls = spy_on_fit(monkeypatch)
    m = run_evaluation(synth_corpus, tmp_path / "f2", folds=[2])
    assert [f["fold"] for f in m["folds"]] == [2]
    assert len(calls) == 1
    assert not (tmp_path / "f2" / "fold_1").exists()
    fold2 = kfold.metrics["folds"][1]
    assert m["folds"][0]["test_speakers"] == fold2["test_speakers"]
    assert m["folds"][0]["ua"] == pytest.approx(fold2["ua"])  # same training, same result
    rows = read_csv(tmp_path / "f2" / "predictions.csv")
    assert {r["speaker"] for r in rows} == set(fold2["test_speakers"])
    assert m["n_test_predictions"] == len(rows) == 16
    with pytest.raises(ValueError, match="do not exist"):
        run_evaluation(synth_corpus, tmp_path / "f3", folds=[3])


@pytest.mark.slow
def test_resume_reuses_finished_folds(
    kfold: SimpleNamespace, synth_corpus: Path, tmp_path, monkeypatch
):
    out = tmp_path / "resumed"
    shutil.copytree(kfold.out, out)

    def no_fit(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(evaluation, "fit", no_fit)
    m = run_evaluation(synth_corpus, out, resume=True)
    assert [f["ua"] for f in m["folds"]] == [f["ua"] for f in kfold.metrics["folds"]]
    assert m["pooled"] == kfold.metrics["pooled"]
    assert m["confusion"] == kfold.metrics["confusion"]
    assert len(read_csv(out / "predictions.csv")) == 32

    # An unfinished fold is trained, the finished one is not.
    (out / "fold_2" / "metrics.json").unlink()
    monkeypatch.undo()
    calls = spy_on_fit(monkeypatch)
    m = run_evaluation(synth_corpus, out, resume=True)
    assert len(calls) == 1
    assert calls[0]["speakers"].isdisjoint(kfold.metrics["folds"][1]["test_speakers"])
    assert [f["ua"] for f in m["folds"]] == pytest.approx([f["ua"] for f in kfold.metrics["folds"]])
    assert (out / "fold_2" / "metrics.json").is_file()


# -- metrics --------------------------------------------------------------------------------------


CLASSES = ["a", "b", "c"]
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1, 2, 0]


def test_classification_metrics_match_sklearn() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES)
    # By hand: recalls 2/4, 2/3, 3/5; 7 of 12 right.
    assert m["ua"] == pytest.approx(100 * (2 / 4 + 2 / 3 + 3 / 5) / 3)
    assert m["wa"] == pytest.approx(100 * 7 / 12)
    assert m["ua"] == pytest.approx(100 * balanced_accuracy_score(Y_TRUE, Y_PRED))
    assert m["wa"] == pytest.approx(100 * accuracy_score(Y_TRUE, Y_PRED))
    assert m["macro_f1"] == pytest.approx(100 * f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert m["n"] == 12
    p, r, f, s = precision_recall_fscore_support(Y_TRUE, Y_PRED)
    for i, c in enumerate(CLASSES):
        assert m["per_class"][c]["precision"] == pytest.approx(100 * p[i])
        assert m["per_class"][c]["recall"] == pytest.approx(100 * r[i])
        assert m["per_class"][c]["f1"] == pytest.approx(100 * f[i])
        assert m["per_class"][c]["support"] == s[i]
    assert m["confusion"] == {
        "labels": CLASSES,
        "matrix": confusion_matrix(Y_TRUE, Y_PRED).tolist(),
    }
    assert unweighted_accuracy(Y_TRUE, Y_PRED, 3) == pytest.approx(m["ua"] / 100)


def test_classification_metrics_with_an_absent_class() -> None:
    # "d" occurs in neither truth nor prediction: it counts in no average, like in sklearn.
    m = classification_metrics(Y_TRUE, Y_PRED, [*CLASSES, "d"])
    assert m["ua"] == pytest.approx(100 * balanced_accuracy_score(Y_TRUE, Y_PRED))
    assert m["macro_f1"] == pytest.approx(100 * f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert m["per_class"]["d"]["support"] == 0
    assert np.array(m["confusion"]["matrix"]).shape == (4, 4)


def test_ua_is_not_fooled_by_the_majority_class() -> None:
    y_true = [0] * 8 + [1] * 2
    y_pred = [0] * 10
    m = classification_metrics(y_true, y_pred, ["many", "few"])
    assert m["wa"] == pytest.approx(80.0)
    assert m["ua"] == pytest.approx(50.0)
    assert m["macro_f1"] == pytest.approx(
        100 * f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    perfect = classification_metrics(y_true, y_true, ["many", "few"])
    assert perfect["ua"] == perfect["wa"] == perfect["macro_f1"] == pytest.approx(100.0)


def _row(corpus: str, label: str, p: dict[str, float], adapted: dict[str, float]) -> dict:
    row = {"fold": 1, "corpus": corpus, "path": f"{corpus}/{label}.wav", "label": label}
    for prefix, probs in (("", p), (evaluation.ADAPTED, adapted)):
        row[f"{prefix}predicted"] = max(probs, key=probs.get)
        row.update({f"{prefix}p_{c}": v for c, v in probs.items()})
    return row


def test_per_corpus_scores_give_speaker_adapted_scores_next_to_per_utterance() -> None:
    classes = ["neutral", "angry", "happy", "sad", "boredom"]

    def probs(top: str) -> dict[str, float]:
        return {c: (0.6 if c == top else 0.1) for c in classes}

    # per utterance, "x" says sad for every clip; speaker-adapted it gets every clip right
    rows = [_row("x", c, probs("sad"), probs(c)) for c in ("neutral", "angry", "happy", "sad")]
    # corpus "y": per utterance right except boredom (called neutral), adapted all boredom
    rows += [
        _row("y", c, probs("neutral" if c == "boredom" else c), probs("boredom")) for c in classes
    ]
    per = evaluation.per_corpus_scores(rows, classes)
    assert per["x"]["ua"] == pytest.approx(25.0) and per["x"]["four_classes"]["ua"] == 25.0
    assert per["x"]["speaker_adapted"]["ua"] == pytest.approx(100.0)
    assert per["x"]["speaker_adapted"]["four_classes"]["ua"] == pytest.approx(100.0)
    assert per["x"]["speaker_adapted"]["own_classes"]["classes"] == [
        "neutral",
        "angry",
        "happy",
        "sad",
    ]
    assert per["y"]["ua"] == pytest.approx(80.0)
    # adapted, "y" answers boredom for all: right on one of its own five classes
    assert per["y"]["speaker_adapted"]["own_classes"]["ua"] == pytest.approx(20.0)
    assert per["y"]["four_classes"]["ua"] == pytest.approx(100.0)
    # rows without the adapted columns give no adapted block
    plain = [{k: v for k, v in r.items() if not k.startswith(evaluation.ADAPTED)} for r in rows]
    assert "speaker_adapted" not in evaluation.per_corpus_scores(plain, classes)["x"]

