"""benchmarks/ddp_epoch.py end to end on a synthetic corpus (1 and 2 processes); the fold-for-fold
comparison of benchmarks/ray_evaluate.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"emovox_{name}_benchmark", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
