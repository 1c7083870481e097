"""benchmarks/fuse_predictions.py: a fused model's fold scores from its members' predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import benchmark_module


def write_run(root: Path, fold: int, probs: dict[str, tuple[float, float]], labels: dict) -> Path:
    """A run folder with one fold's ``predictions.csv`` (classes a and b)."""
    folder = root / f"fold_{fold}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "predictions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["fold", "corpus", "path", "speaker", "label", "predicted", "p_a", "p_b"])
        for clip, (pa, pb) in probs.items():
            w.writerow([fold, "c", clip, "s", labels[clip], "a" if pa >= pb else "b", pa, pb])
    return root


def test_the_fusion_averages_clip_by_clip_and_scores_each_fold(tmp_path: Path) -> None:
    mod = benchmark_module("fuse_predictions")
    labels = {"x": "a", "y": "b", "z": "b"}
    p_one = {"x": (0.9, 0.1), "y": (0.6, 0.4), "z": (0.7, 0.3)}
    p_two = {"x": (0.4, 0.6), "y": (0.1, 0.9), "z": (0.45, 0.55)}
    one = write_run(tmp_path / "one", 1, p_one, labels)
    two = write_run(tmp_path / "two", 1, p_two, labels)
    write_run(tmp_path / "two", 2, {"x": (0.5, 0.5)}, labels)  # a fold only one member has
    out = tmp_path / "fused.json"
    assert mod.main(["--run", str(one), "--run", str(two), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [f["fold"] for f in result["folds"]] == [1]
    # means: x (0.65, 0.35) -> a right; y (0.35, 0.65) -> b right; z (0.575, 0.425) -> a wrong
    assert result["ua"] == pytest.approx(75.0)  # a: 1/1, b: 1/2
    assert result["pooled"]["n"] == 3
    assert mod.main(["--run", str(one), "--run", str(two), "--weight", "1", "--weight", "9",
                     "--out", str(out)]) == 0  # fmt: skip
    assert json.loads(out.read_text())["ua"] == pytest.approx(50.0)  # x wrong; y, z right


def test_a_member_chosen_on_validation_is_read_fold_by_fold(tmp_path: Path) -> None:
    mod = benchmark_module("fuse_predictions")
    labels = {"x": "a"}
    a = write_run(tmp_path / "a", 1, {"x": (0.9, 0.1)}, labels)
    b = write_run(tmp_path / "b", 1, {"x": (0.2, 0.8)}, labels)
    write_run(tmp_path / "b", 2, {"x": (0.2, 0.8)}, labels)
    choice = tmp_path / "choose.json"
    chosen = [{"fold": 1, "chosen": str(a)}, {"fold": 2, "chosen": str(b)}]
    choice.write_text(json.dumps({"folds": chosen}))
    assert mod.member_runs(str(choice)) == {1: a, 2: b}
    assert mod.member_runs(str(b)) == {1: b, 2: b}
