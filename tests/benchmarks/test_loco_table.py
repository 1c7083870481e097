"""benchmarks/loco_table.py: the nested-validation cell from a pair run's finished folds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import benchmark_module

CLASSES = ["angry", "happy", "neutral", "sad"]


def write_fold(folder: Path, index: int, right: dict[str, int]) -> None:
    """A finished pair fold: each corpus's first ``right[corpus]`` classes recognised."""
    probabilities = {}
    for corpus, n in right.items():
        said = [k if k < n else (k + 1) % 4 for k in range(4)]
        probabilities[corpus] = [[0.7 if i == s else 0.1 for i in range(4)] for s in said]
    write_probabilities(folder, index, probabilities)


def test_the_nested_cell_judges_each_corpus_by_its_partners(tmp_path: Path, monkeypatch) -> None:
    table = benchmark_module("loco_table")
    monkeypatch.setattr(table, "RESULTS", tmp_path)
    assert table.nested_cell("recipe") == "—"  # no pair run
    folder = tmp_path / "loco-pairs-recipe"
    write_fold(folder, 1, {"a": 4, "b": 2})
    write_fold(folder, 2, {"a": 3, "c": 1})
    # a: partners b 50, c 25 -> 37.5; b: partner a 100; c: partner a 75 -> mean 70.8
    assert table.nested_cell("recipe") == "70.8 (2 pairs)"


def write_probabilities(folder: Path, index: int, p: dict[str, list[list[float]]]) -> None:
    """A finished pair fold whose clips ``{corpus}{k}.wav`` (true class ``CLASSES[k]``) have the
    probabilities ``p[corpus][k]``."""
    fold = folder / f"fold_{index}"
    fold.mkdir(parents=True)
    (fold / "metrics.json").write_text(json.dumps({"fold": index, "test_corpora": list(p)}))
    with (fold / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fold", "corpus", "path", "label", "predicted", *[f"p_{c}" for c in CLASSES]])
        for corpus, rows in p.items():
            for k, probs in enumerate(rows):
                said = CLASSES[max(range(4), key=lambda i: probs[i])]
                w.writerow([index, corpus, f"{corpus}{k}.wav", CLASSES[k], said, *probs])


def test_an_ensemble_is_judged_on_the_mean_of_its_runs_probabilities(
    tmp_path: Path, monkeypatch
) -> None:
    table = benchmark_module("loco_table")
    monkeypatch.setattr(table, "RESULTS", tmp_path)
    right = [[0.7 if i == k else 0.1 for i in range(4)] for k in range(4)]
    # run x is sure and wrong on a's first clip, run y mildly wrong on it and right elsewhere;
    # their mean gets a's first clip right, which neither does alone
    x = [row[:] for row in right]
    x[0] = [0.45, 0.55, 0.0, 0.0]
    y = [row[:] for row in right]
    y[0] = [0.4, 0.0, 0.6, 0.0]
    write_probabilities(tmp_path / "loco-pairs-x", 1, {"a": x, "b": right})
    write_probabilities(tmp_path / "loco-pairs-y", 1, {"a": y, "b": right})
    write_probabilities(tmp_path / "loco-pairs-y", 2, {"a": right, "c": right})  # x lacks it
    # alone: a is judged by b (100) and b by a (75): 87.5; together a scores 100 too
    assert table.nested_cell("x") == "87.5 (1 pair)"
    # y alone, its own two folds: a by b 100 and c 100, b by a 75, c by a 100
    assert table.nested_cell("y") == "91.7 (2 pairs)"
    assert table.nested_cell("x", "y") == "100.0 (1 pair)"  # only the fold both finished
    rows, classes = table.mean_predictions(["loco-pairs-x", "loco-pairs-y"])
    assert classes == sorted(CLASSES) and len(rows) == 8
    first = next(r for r in rows if r["path"] == "a0.wav")
    assert first["predicted"] == "angry" and abs(first["p_angry"] - 0.425) < 1e-9
    monkeypatch.setattr(table, "LEVERS", (("y", "a lever judged by nested validation only"),))
    monkeypatch.setattr(table, "ENSEMBLES", ((("x", "y"), "x and y"),))
    lines = table.lever_table().splitlines()
    assert lines[2].startswith("| `loco-pairs-y` | a lever judged by nested validation only | — |")
    assert "91.7 (2 pairs)" in lines[2] and lines[3].startswith("| ensemble of 2 | x and y |")
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_a_functionals_fusion_row_reads_its_two_result_files(tmp_path: Path, monkeypatch) -> None:
    table = benchmark_module("loco_table")
    monkeypatch.setattr(table, "RESULTS", tmp_path)
    monkeypatch.setattr(table, "LEVERS", ())
    monkeypatch.setattr(table, "ENSEMBLES", ())
    monkeypatch.setattr(table, "FUSIONS", (("r", "functionals", "r fused"),))
    assert table.fusion_row("r", "r fused") is None
    pairs = {"folds": [{}] * 5, "summary": {"fused": {"four_classes": 53.33}}}
    (tmp_path / "functionals_fusion_loco-pairs-r.json").write_text(json.dumps(pairs))
    row = table.fusion_row("r", "r fused")
    assert "| 53.3 (5 pairs) |" in row and "| — | — | none (closed form) |" in row
    by_corpus = {c: 50.0 + k for k, c in enumerate(table.CORPORA)}
    fused = {"four_classes_by_corpus": by_corpus, "validation_ua": 61.04}
    loco = {"folds": [{}] * 5, "summary": {"fused": fused}}
    (tmp_path / "functionals_fusion_loco-r.json").write_text(json.dumps(loco))
    lines = table.lever_table().splitlines()
    assert lines[2].startswith("| `loco-r` + functionals | r fused | 5 | 61.0 | 53.3 (5 pairs) |")
    assert "| 50.0 | 51.0 | 52.0 | 53.0 | 54.0 | **52.0** |" in lines[2]
    assert lines[2].count("|") == lines[0].count("|")
    (tmp_path / "functionals_fusion_functionals+egemaps_loco-r.json").write_text(json.dumps(loco))
    row = table.fusion_row("r", "r and eGeMAPS", "functionals,egemaps")
    assert row.startswith("| `loco-r` + functionals + egemaps | r and eGeMAPS | 5 | 61.0 | — |")
