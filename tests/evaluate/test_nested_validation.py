"""Leave two corpora out (``loco-pairs``): the nested validation of a ``loco`` run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emovox.data.manifest import Manifest, Utterance
from emovox.data.protocols import Fold, make_folds
from emovox.evaluate.plans import Plan
from emovox.evaluate.results import render_report
from emovox.evaluate.runner import nested_validation

CLASSES = ["angry", "happy", "neutral", "sad"]


def corpora_manifest() -> Manifest:
    """Three corpora with classes (``a``, ``b``, ``c``; ``a`` also with a row without one) and
    ``z``, a corpus of rows without a class."""
    rows = []
    for corpus in ("c", "a", "b"):  # not in name order: the folds must be
        for s in range(2):
            for label in CLASSES:
                name = f"{corpus}{s}{label}.wav"
                rows.append(Utterance(name, label, f"{corpus}_{s}", "", corpus))
    rows.append(Utterance("a_bored.wav", "", "a_0", "", "a"))
    rows += [Utterance(f"z{s}.wav", "", f"z_{s}", "", "z") for s in range(2)]
    return Manifest(rows)


def test_pair_folds_leave_two_corpora_with_classes_out_and_train_on_the_rest() -> None:
    manifest = corpora_manifest()
    folds = make_folds(manifest, "loco-pairs")
    assert [f.test_corpora for f in folds] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [f.index for f in folds] == [1, 2, 3]
    corpus = [u.corpus for u in manifest]
    for fold in folds:
        assert {corpus[i] for i in fold.test} == set(fold.test_corpora)
        assert {corpus[i] for i in fold.train} == {"a", "b", "c", "z"} - set(fold.test_corpora)
        assert all(manifest[i].label for i in fold.test)  # a's row without a class: not tested
        assert not set(fold.train) & set(fold.test)
        assert set(fold.test_speakers) == {manifest[i].speaker for i in fold.test}
    bored = next(i for i, u in enumerate(manifest) if u.path == "a_bored.wav")
    assert bored in folds[2].train and bored not in folds[0].train  # a's, trained only when a is


def test_pair_folds_need_three_corpora_with_classes() -> None:
    rows = [u for u in corpora_manifest() if u.corpus != "c"]
    with pytest.raises(ValueError, match="at least three corpora with classes"):
        make_folds(Manifest(rows), "loco-pairs")


def prediction(fold: int, corpus: str, label: str, predicted: str) -> dict:
    p = {f"p_{c}": 0.9 if c == predicted else 0.1 / 3 for c in CLASSES}
    return {"fold": fold, "corpus": corpus, "label": label, "predicted": predicted, **p}


def test_nested_validation_judges_each_left_out_corpus_by_its_partners_only() -> None:
    folds = (
        Fold(1, (), (), (), ("a", "b")),
        Fold(2, (), (), (), ("a", "c")),
        Fold(3, (), (), (), ("b", "c")),
    )
    preds = []
    for fold, right in ((1, {"a": 4, "b": 2}), (2, {"a": 3, "c": 1}), (3, {"b": 4, "c": 0})):
        for corpus, n_right in right.items():
            for k, label in enumerate(CLASSES):  # the first n_right classes recognised
                wrong = CLASSES[(k + 1) % 4]
                preds.append(prediction(fold, corpus, label, label if k < n_right else wrong))
    nested = nested_validation(Plan("loco-pairs", folds, by_corpus=True), preds, CLASSES)
    assert nested["pairs"][0] == {
        "fold": 1,
        "corpora": ["a", "b"],
        "ua": {c: {"own_classes": v, "four_classes": v} for c, v in (("a", 100.0), ("b", 50.0))},
    }
    by = nested["by_left_out"]
    # a is judged on b (fold 1: 50) and c (fold 2: 25): never on a's own scores (100, 75)
    assert by["a"]["partners"] == {
        "b": {"own_classes": 50.0, "four_classes": 50.0},
        "c": {"own_classes": 25.0, "four_classes": 25.0},
    }
    assert by["a"]["four_classes"] == pytest.approx(37.5)
    assert by["b"]["four_classes"] == pytest.approx((100.0 + 0.0) / 2)  # a in 1, c in 3
    assert by["c"]["four_classes"] == pytest.approx((75.0 + 100.0) / 2)  # a in 2, b in 3
    assert nested["mean"]["four_classes"] == pytest.approx((37.5 + 50.0 + 87.5) / 3)
    # a subset of the pairs (--folds): each corpus is judged by the partners it has
    part = nested_validation(Plan("loco-pairs", folds[:1], by_corpus=True), preds[:8], CLASSES)
    assert part["by_left_out"]["a"]["partners"].keys() == {"b"}
    assert part["by_left_out"]["b"]["four_classes"] == 100.0


def test_loco_pairs_through_the_cli_writes_and_reports_the_nested_validation(
    synth_corpus: Path, tmp_path: Path
) -> None:
    from conftest import run_cli, tiny_cli, tone_corpora

    data = [f"ravdess:{synth_corpus}", *tone_corpora(tmp_path)]
    args = [a for c in data for a in ("--train", c)]
    args += ["--labels", "angry,happy,neutral,sad", "--protocol", "loco-pairs", "--folds", "1,3"]
    out = tmp_path / "pairs"
    result = run_cli(tiny_cli("evaluate", args, out, epochs=1))
    assert "nested validation" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"] == "loco-pairs"
    pairs = [f["test_corpora"] for f in metrics["folds"]]
    assert pairs == [["ravdess", "savee"], ["savee", "tess"]]
    nested = metrics["nested_validation"]
    assert nested["by_left_out"]["ravdess"]["partners"].keys() == {"savee"}
    assert nested["by_left_out"]["savee"]["partners"].keys() == {"ravdess", "tess"}
    assert nested["by_left_out"]["tess"]["partners"].keys() == {"savee"}
    fold_1 = json.loads((out / "fold_1" / "metrics.json").read_text())
    assert fold_1["n_train"] == 8 and fold_1["n_test"] == 32 + 8  # TESS trains, both tested
    report = render_report(metrics)
    assert "## Nested validation (leave two corpora out)" in report
    assert "| savee | ravdess " in report and "| **mean** |" in report


def test_nested_validation_averages_the_arousal_head_where_the_model_has_one() -> None:
    folds = (Fold(1, (), (), (), ("a", "b")), Fold(2, (), (), (), ("a", "c")))
    preds = []
    for fold, corpora in ((1, ("a", "b")), (2, ("a", "c"))):
        for corpus in corpora:
            for label, target in (("angry", 0.8), ("sad", -0.6), ("neutral", 0.0)):
                # corpus c's head gets the side of its high clips wrong
                said = -0.5 if corpus == "c" and target > 0 else target
                row = prediction(fold, corpus, label, label)
                row.update(arousal=said, arousal_target=target, valence=0.0, valence_target=0.0)
                preds.append(row)
    nested = nested_validation(Plan("loco-pairs", folds, by_corpus=True), preds, CLASSES)
    a = nested["by_left_out"]["a"]
    assert a["partners"]["b"]["arousal"] == 100.0 and a["partners"]["c"]["arousal"] == 50.0
    assert a["arousal"] == 75.0 and nested["pairs"][0]["ua"]["a"]["arousal"] == 100.0
    assert nested["mean"]["arousal"] == pytest.approx((75.0 + 100.0 + 100.0) / 3)
    assert "| mean arousal low/high UA |" in render_report_lines(nested)


def render_report_lines(nested: dict) -> str:
    from emovox.evaluate.results import _nested_lines

    return "\n".join(_nested_lines({"nested_validation": nested}))
