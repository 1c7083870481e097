"""benchmarks/ddp_epoch.py end to end on a synthetic corpus (1 and 2 processes); the fold-for-fold
comparison of benchmarks/ray_evaluate.py."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import benchmark_module as _module


def test_ddp_benchmark_times_the_epochs_of_one_and_two_processes(
    synth_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ddp.json"
    args = ["--data", str(synth_corpus), "--epochs", "2", "--threads", "1"]
    args += ["--nproc", "2", "--param", "channels=[4,8,8,8]", "--train-param", "batch_size=4"]
    args += ["--labels", "neutral,happy,sad,angry", "--cache-dir", str(tmp_path / "cache")]
    assert _module("ddp_epoch").main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    runs = {r["processes"]: r for r in result["runs"]}
    assert set(runs) == {1, 2}
    for r in runs.values():
        assert len(r["epoch_seconds"]) == 2 and r["median_epoch_s"] > 0
    assert runs[1]["speedup_over_1x1"] == 1.0 and "--nproc" not in result["train"]


def test_ray_evaluate_compares_metrics_fold_for_fold() -> None:
    same = _module("ray_evaluate").same_folds
    a = {"folds": [{"ua": 50.0}, {"ua": 60.0}], "ua": 55.0, "wa": 56.0, "macro_f1": 54.0}
    assert same(a, json.loads(json.dumps(a)))
    b = {**a, "folds": [{"ua": 50.0}, {"ua": 60.1}]}
    assert not same(a, b)
    assert not same(a, {**a, "folds": a["folds"][:1]})
    assert not same(a, {**a, "macro_f1": 53.0})


def test_int8_folds_scores_every_fold_and_resumes(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path
) -> None:
    import csv
    import shutil

    import pytest

    pytest.importorskip("onnxruntime")
    from emovox.inference.recognizer import Recognizer

    run = tmp_path / "run"
    files = sorted(synth_corpus.rglob("*.wav"))
    rec = Recognizer.load(trained_bundle)
    for fold, part in ((1, files[::2]), (2, files[1::2])):
        folder = run / f"fold_{fold}"
        shutil.copytree(trained_bundle, folder / "model")
        with (folder / "predictions.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["fold", "corpus", "path", "label", "predicted"])
            for p, pred in zip(part, rec.predict_batch(part), strict=True):
                w.writerow([fold, "ravdess", str(p), rec.labels[0], pred.label])
    import torch

    module = _module("int8_folds")
    out = tmp_path / "int8.json"
    threads = torch.get_num_threads()
    assert module.calibration_files(module.fold_rows(run), 1, 4) == [
        str(p) for p in files[1::2][:: len(files[1::2]) // 4][:4]
    ]  # the other fold's files only
    # a dimensions-only fold (a corpus without classes): never scored, its files calibrate
    folder = run / "fold_3"
    shutil.copytree(trained_bundle, folder / "model")
    with (folder / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fold", "corpus", "path", "label", "predicted"])
        w.writerows([3, "baved", str(p), "", rec.labels[0]] for p in files[:3])
    pool = module.calibration_files(module.fold_rows(run), 1, 100)
    assert set(pool) == {str(p) for p in files[1::2]} | {str(p) for p in files[:3]}
    assert module.main(["--run", str(run), "--calibration", "4", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [f["fold"] for f in result["folds"]] == [1, 2] and result["mean"]["folds"] == 2
    for f in result["folds"]:
        assert f["float_wa"] == f["recorded_wa"]  # float reproduces the recorded predictions
        assert 0 <= f["label_agreement"] <= 100 and f["calibration_files"] == 4
    before = out.read_text()
    assert module.main(["--run", str(run), "--out", str(out)]) == 0  # nothing left to do
    assert json.loads(out.read_text())["folds"] == json.loads(before)["folds"]
    assert torch.get_num_threads() == threads  # the benchmark put the test process's back
