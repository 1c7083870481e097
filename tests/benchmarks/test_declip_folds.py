"""benchmarks/declip_folds.py on a fake evaluation folder (two folds of a tiny trained bundle)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from conftest import benchmark_module


def fake_run(root: Path, bundle: Path, files: list[Path], labels: list[str]) -> Path:
    """Two categorical folds and one dimensions-only fold, each with the bundle as its model."""
    run = root / "run"
    parts = {1: (files[::2], "ravdess"), 2: (files[1::2], "emodb"), 3: (files[:3], "baved")}
    for fold, (part, corpus) in parts.items():
        folder = run / f"fold_{fold}"
        shutil.copytree(bundle, folder / "model")
        with (folder / "predictions.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["fold", "corpus", "path", "label", "predicted"])
            for i, p in enumerate(part):
                label = "" if corpus == "baved" else labels[i % len(labels)]
                w.writerow([fold, corpus, str(p), label, labels[0]])
    return run


def test_declip_folds_scores_each_corpus_at_each_gain_and_resumes(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path
) -> None:
    module = benchmark_module("declip_folds")
    labels = json.loads((trained_bundle / "config.json").read_text())["labels"]
    files = sorted(synth_corpus.rglob("*.wav"))
    run = fake_run(tmp_path, trained_bundle, files, labels)
    out = tmp_path / "declip.json"
    args = ["--run", str(run), "--gains=-10,40", "--limit", "6", "--out", str(out)]
    assert module.main(args) == 0
    result = json.loads(out.read_text())
    assert [f["fold"] for f in result["folds"]] == [1, 2]  # the dimensions-only fold is skipped
    for fold, corpus in ((1, "ravdess"), (2, "emodb")):
        entry = result["folds"][fold - 1]["corpora"][corpus]
        assert entry["files"] == 6 and entry["unchanged_at_0db"] == 100.0  # nothing clips at 0 dB
        quiet, loud = entry["gains"]["-10"], entry["gains"]["+40"]
        # a quieter copy clips nothing and keeps every label, with either front end
        assert quiet["files_clipped"] == 0
        assert quiet["agreement_plain"] == quiet["agreement_declip"] == 100.0
        assert loud["files_clipped"] == 6
        assert all(0 <= loud[k] <= 100 for k in ("agreement_plain", "agreement_declip"))
    assert result["mean"]["corpora"] == 2 and set(result["mean"]) >= {"-10", "+40"}
    before = out.read_text()
    assert module.main(args) == 0  # resumed: nothing left to do
    assert json.loads(out.read_text())["folds"] == json.loads(before)["folds"]
