"""benchmarks/loco_table.py: the nested-validation cell from a pair run's finished folds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import benchmark_module

CLASSES = ["angry", "happy", "neutral", "sad"]


def write_fold(folder: Path, index: int, right: dict[str, int]) -> None:
    """A finished pair fold: each corpus's first ``right[corpus]`` classes recognised."""
    fold = folder / f"fold_{index}"
    fold.mkdir(parents=True)
    (fold / "metrics.json").write_text(json.dumps({"fold": index, "test_corpora": list(right)}))
    with (fold / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fold", "corpus", "path", "label", "predicted", *[f"p_{c}" for c in CLASSES]])
        for corpus, n in right.items():
            for k, label in enumerate(CLASSES):
                said = label if k < n else CLASSES[(k + 1) % 4]
                p = [0.7 if c == said else 0.1 for c in CLASSES]
                w.writerow([index, corpus, f"{corpus}{k}.wav", label, said, *p])


def test_the_nested_cell_judges_each_corpus_by_its_partners(tmp_path: Path, monkeypatch) -> None:
    table = benchmark_module("loco_table")
    monkeypatch.setattr(table, "RESULTS", tmp_path)
    assert table.nested_cell("recipe") == "—"  # no pair run
    folder = tmp_path / "loco-pairs-recipe"
    write_fold(folder, 1, {"a": 4, "b": 2})
    write_fold(folder, 2, {"a": 3, "c": 1})
    # a: partners b 50, c 25 -> 37.5; b: partner a 100; c: partner a 75 -> mean 70.8
    assert table.nested_cell("recipe") == "70.8 (2 pairs)"
