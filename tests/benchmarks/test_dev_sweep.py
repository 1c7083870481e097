"""benchmarks/dev_sweep.py: features exported once, recipes trained on the training side of each
fold and scored on its validation speakers only, resumable, and ensembles scored from the kept
probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_CNN, benchmark_module


@pytest.fixture(scope="module")
def sweep():
    module = benchmark_module("dev_sweep")
    return module


@pytest.fixture(scope="module")
def exported(sweep, synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "feats.safetensors"
    result = CliRunner().invoke(
        sweep.main, ["export", "--data", str(synth_corpus), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_export_round_trip(sweep, exported: Path, synth_corpus: Path) -> None:
    from emovox.data.corpora import scan_corpus
    from emovox.data.labels import resolve_labels
    from emovox.features import FeatureCache
    from emovox.train.dataset import load_dataset
    from emovox.train.recipe import default_feature

    ds = sweep.load_export(str(exported))
    ref = load_dataset(
        scan_corpus("ravdess", synth_corpus),
        resolve_labels("emotion"),
        default_feature("cnn"),
        FeatureCache(synth_corpus.parent / "cache"),
        progress=False,
    )
    assert ds.classes == ref.classes and ds.y.tolist() == ref.y.tolist()
    assert [u.speaker for u in ds.manifest] == [u.speaker for u in ref.manifest]
    assert all(
        Path(u.path).name == Path(r.path).name
        for u, r in zip(ds.manifest, ref.manifest, strict=True)
    )
    for a, b in zip(ds.features, ref.features, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-2)  # stored as float16
    assert ds.feature.to_dict() == ref.feature.to_dict()


def test_validation_speakers_come_from_the_training_side(sweep, exported: Path) -> None:
    from emovox.data.protocols import make_folds

    ds = sweep.load_export(str(exported))
    for k, fold in enumerate(make_folds(ds.manifest, "loso"), start=1):
        train, val = sweep.dev_split(ds, k, "loso")
        test_speakers = {ds.manifest[i].speaker for i in fold.test}
        val_speakers = {ds.manifest[i].speaker for i in val}
        assert val_speakers and not val_speakers & test_speakers
        assert not val_speakers & {ds.manifest[i].speaker for i in train}
        assert set(train) | set(val) == set(fold.train)


def test_run_resume_and_report(sweep, exported: Path, tmp_path: Path) -> None:
    grid = [
        {"tag": "a", "model": "cnn", "params": TINY_CNN, "train": {"epochs": 1, "batch_size": 8}},
        {"tag": "b", "model": "cnn", "params": TINY_CNN, "train": {"epochs": 1, "seed": 1}},
        {"tag": "bad", "model": "cnn", "train": {"augment": "gain", "augment_copies": 1}},
    ]
    grid_file = tmp_path / "grid.json"
    grid_file.write_text(json.dumps(grid))
    out = tmp_path / "runs.jsonl"
    args = ["run", "--features", str(exported), "--grid", str(grid_file), "--out", str(out)]
    args += ["--protocol", "loso", "--folds", "1,2"]
    result = CliRunner().invoke(sweep.main, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6
    bad = [r for r in rows if r["tag"] == "bad"]
    assert all("waveform variants" in r["error"] for r in bad)  # reported, the rest went on
    good = [r for r in rows if "error" not in r]
    for r in good:
        assert len(r["proba"]) == len(r["y"]) == len(r["val_indices"]) > 0
        np.testing.assert_allclose(np.sum(r["proba"], axis=1), 1.0, atol=1e-3)
        assert 0 <= r["ua"] <= 100 and r["device"] == "cpu"

    again = CliRunner().invoke(sweep.main, [*args, "--only", "a,b"])
    assert again.exit_code == 0 and "0 runs (4 already done)" in again.output

    runs = sweep.read_runs([str(out)])
    per_fold = sweep.ensemble_ua(runs, ["a", "b"])
    assert sorted(per_fold) == [1, 2]
    from emovox.metrics import unweighted_accuracy

    r_a, r_b = runs["a"][1], runs["b"][1]
    mean = (np.asarray(r_a["proba"]) + np.asarray(r_b["proba"])) / 2
    expected = 100 * unweighted_accuracy(r_a["y"], mean.argmax(1), mean.shape[1])
    assert per_fold[1] == pytest.approx(expected)

    table = tmp_path / "table.json"
    rep = CliRunner().invoke(
        sweep.main,
        ["report", str(out), "--ensemble", "a,b", "--markdown", "--json-out", str(table)],
    )
    assert rep.exit_code == 0, rep.output
    assert "| `a + b` | 2 |" in rep.output
    assert {r["tag"] for r in json.loads(table.read_text())} == {"a", "b", "a + b"}


def test_functionals_scores_a_fusion_models_regression(
    sweep, synth_corpus: Path, tmp_path: Path
) -> None:
    feats = tmp_path / "func.safetensors"
    exported = CliRunner().invoke(
        sweep.main,
        ["export", "--data", str(synth_corpus), "--out", str(feats), "--model", "cnn-functionals"],
    )
    assert exported.exit_code == 0, exported.output
    out = tmp_path / "func.jsonl"
    args = ["functionals", "--features", str(feats), "--out", str(out), "--C", "0.03,1"]
    args += ["--model", "cnn-functionals", "--protocol", "loso", "--folds", "1,2"]
    result = CliRunner().invoke(sweep.main, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["tag"], r["fold"]) for r in rows) == [
        ("functionals-lr-C0.03", 1),
        ("functionals-lr-C0.03", 2),
        ("functionals-lr-C1", 1),
        ("functionals-lr-C1", 2),
    ]
    ds = sweep.load_export(str(feats))
    for r in rows:
        _, val = sweep.dev_split(ds, r["fold"], "loso")
        assert r["val_indices"] == [int(i) for i in val]
        assert len(r["proba"]) == len(r["y"]) == len(val)
        assert 0 <= r["ua"] <= 100
