"""benchmarks/choose_on_validation.py: each fold's recipe chosen on validation speakers only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import benchmark_module


def fake_run(root: Path, folds: dict[int, tuple[float, dict, float]]) -> Path:
    """Fold folders with ``(test UA, validation UA per corpus, pooled validation UA)``."""
    for k, (ua, by_corpus, pooled) in folds.items():
        folder = root / f"fold_{k}"
        folder.mkdir(parents=True)
        row = {"fold": k, "ua": ua, "wa": ua + 1, "macro_f1": ua - 1, "best_val_ua": pooled}
        row["best_val_ua_by_corpus"] = by_corpus
        (folder / "metrics.json").write_text(json.dumps(row))
    return root


def test_each_fold_takes_the_candidate_its_validation_speakers_prefer(tmp_path: Path) -> None:
    mod = benchmark_module("choose_on_validation")
    # the test UAs would pick the other candidate in both folds: they must not decide
    a = fake_run(tmp_path / "a", {1: (60.0, {"ravdess": 70.0, "emodb": 40.0}, 50.0),
                                  2: (50.0, {"ravdess": 55.0, "emodb": 80.0}, 70.0),
                                  3: (99.0, {"ravdess": 99.0}, 99.0)})  # fmt: skip
    b = fake_run(tmp_path / "b", {1: (70.0, {"ravdess": 65.0, "emodb": 90.0}, 80.0),
                                  2: (40.0, {"ravdess": 60.0, "emodb": 20.0}, 40.0)})  # fmt: skip
    out = tmp_path / "choice.json"
    args = ["--run", str(a), "--run", str(b), "--corpus", "RAVDESS", "--out", str(out)]
    assert mod.main(args) == 0
    result = json.loads(out.read_text())
    assert [f["chosen"] for f in result["folds"]] == [str(a), str(b)]
    assert [f["ua"] for f in result["folds"]] == [60.0, 40.0]
    assert result["ua"] == pytest.approx(50.0) and result["ua_std"] == pytest.approx(10.0)
    assert result["left_out_folds"] == [3]  # b never finished it
    assert result["command"][:2] == ["python", "benchmarks/choose_on_validation.py"]
    pooled = mod.choose({"a": mod.fold_rows(a), "b": mod.fold_rows(b)})
    assert [f["chosen"] for f in pooled["folds"]] == ["b", "a"]  # pooled validation UA decides


def test_clear_errors(tmp_path: Path, capsys) -> None:
    mod = benchmark_module("choose_on_validation")
    a = fake_run(tmp_path / "a", {1: (60.0, {"ravdess": 70.0}, 50.0)})
    b = fake_run(tmp_path / "b", {2: (60.0, {"ravdess": 70.0}, 50.0)})
    with pytest.raises(ValueError, match="two or more runs"):
        mod.choose({"a": mod.fold_rows(a)})
    with pytest.raises(ValueError, match="no finished fold in common"):
        mod.choose({"a": mod.fold_rows(a), "b": mod.fold_rows(b)})
    c = fake_run(tmp_path / "c", {1: (60.0, {"ravdess": 70.0}, 50.0)})
    args = ["--run", str(a), "--run", str(c), "--corpus", "tess", "--out", str(tmp_path / "x")]
    code = mod.main(args)
    assert code == 2 and "fold 1 has no tess's validation UA" in capsys.readouterr().err
