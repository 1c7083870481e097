"""Evaluation folds as Ray tasks: the same per-fold numbers and metrics.json as the sequential
run (same seeds, one torch thread per fold in both)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli, tiny_cli

from emovox.evaluate.engines import LocalFolds, RayFolds, make_engine

pytest.importorskip("ray")


def test_make_engine() -> None:
    assert isinstance(make_engine("local"), LocalFolds)
    assert isinstance(make_engine("ray", "auto", 2), RayFolds)
    with pytest.raises(ValueError, match="engine ray"):
        make_engine("local", address="auto")
    with pytest.raises(ValueError, match="must be one of"):
        make_engine("dask")
    with pytest.raises(ValueError, match="cpus_per_fold"):
        RayFolds(cpus_per_fold=0)


def test_folds_on_ray_equal_the_sequential_run(synth_corpus: Path, tmp_path: Path) -> None:
    data = ["--data", synth_corpus, "--labels", "neutral,happy,sad,angry"]
    extra = ("--protocol", "speakers-kfold", "--k", "2")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray task has
    try:
        run_cli(tiny_cli("evaluate", data, tmp_path / "seq", *extra, epochs=2))
    finally:
        torch.set_num_threads(threads)
    run_cli(tiny_cli("evaluate", data, tmp_path / "ray", *extra, "--engine", "ray", epochs=2))
    seq = json.loads((tmp_path / "seq" / "metrics.json").read_text())
    par = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    drop = ("train_seconds", "inference_seconds")
    assert [{k: v for k, v in f.items() if k not in drop} for f in seq["folds"]] == [
        {k: v for k, v in f.items() if k not in drop} for f in par["folds"]
    ]
    for key in ("ua", "wa", "macro_f1", "pooled", "per_class", "confusion"):
        assert seq[key] == par[key], key
    assert (tmp_path / "ray" / "fold_2" / "model" / "model.safetensors").is_file()
    seq_rows = (tmp_path / "seq" / "fold_1" / "predictions.csv").read_text()
    assert seq_rows == (tmp_path / "ray" / "fold_1" / "predictions.csv").read_text()
