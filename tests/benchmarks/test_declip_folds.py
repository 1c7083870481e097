"""benchmarks/declip_folds.py on a fake evaluation folder (two folds of a tiny trained bundle)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import benchmark_module, fake_fold_run


def test_declip_folds_scores_each_corpus_at_each_gain_and_resumes(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path
) -> None:
    module = benchmark_module("declip_folds")
    labels = json.loads((trained_bundle / "config.json").read_text())["labels"]
    files = sorted(synth_corpus.rglob("*.wav"))
    run = fake_fold_run(tmp_path, trained_bundle, files, labels)
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
    assert "agreement_compressed" not in result["mean"]["+40"]
    anatomy = tmp_path / "anatomy.json"
    args = ["--run", str(run), "--gains=-10", "--limit", "4", "--anatomy", "--out", str(anatomy)]
    assert module.main(args) == 0
    quiet = json.loads(anatomy.read_text())["mean"]["-10"]
    # nothing clips 10 dB down: both halves are the quiet copy itself, every label kept
    assert quiet["agreement_compressed"] == quiet["agreement_distorted"] == 100.0


def test_declip_folds_takes_the_sparse_method_and_names_its_results_after_it(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    module = benchmark_module("declip_folds")
    labels = json.loads((trained_bundle / "config.json").read_text())["labels"]
    run = fake_fold_run(tmp_path, trained_bundle, sorted(synth_corpus.rglob("*.wav")), labels)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    assert module.main(["--run", str(run), "--gains=30", "--limit", "3", "--method", "sparse"]) == 0
    result = json.loads((tmp_path / "results" / "declip_folds_run_sparse.json").read_text())
    assert result["declip_method"] == "sparse"
    entry = result["folds"][0]["corpora"]["ravdess"]
    assert entry["unchanged_at_0db"] == 100.0 and entry["gains"]["+30"]["files_clipped"] == 3


def test_the_two_halves_of_clipping_split_loudness_from_distortion() -> None:
    module = benchmark_module("declip_folds")
    t = np.arange(3200) / 16000
    x = (np.sin(2 * np.pi * 200 * t) * np.linspace(0.05, 1, t.size)).astype(np.float32)
    scaled = 4 * x
    loud = np.clip(scaled, -1, 1)
    frame = 160
    compressed = module.with_loudness_of(scaled, loud, frame)
    distorted = module.with_loudness_of(loud, scaled, frame)
    rms = module.frame_rms
    assert np.allclose(rms(compressed, frame), rms(loud, frame), rtol=1e-4)
    assert np.allclose(rms(distorted, frame), rms(scaled, frame), rtol=1e-4)
    # the compressed half keeps the sine's shape in every frame; the distorted one the flat tops
    first = compressed[:frame] / np.abs(compressed[:frame]).max()
    assert np.allclose(first, x[:frame] / np.abs(x[:frame]).max(), atol=1e-4)
    last = distorted[-frame:]
    assert np.sum(np.isclose(np.abs(last), np.abs(last).max())) > 10
