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


def fake_fusion(path: Path, folds: dict[int, tuple[float, float]], corpus: str = "ravdess") -> Path:
    """A ``functionals_fusion.py`` result with ``(test UA, validation UA)`` of the fused model."""
    rows = [
        {
            "fold": k,
            "validation_corpus": corpus,
            "validation_ua": {"cnn": 0.0, "regression": 0.0, "fused": val},
            "test_ua": {"cnn": 0.0, "regression": 0.0, "fused": ua},
        }
        for k, (ua, val) in folds.items()
    ]
    path.write_text(json.dumps({"folds": rows}))
    return path


def test_a_fusion_result_competes_on_its_own_validation_ua(tmp_path: Path, capsys) -> None:
    mod = benchmark_module("choose_on_validation")
    a = fake_run(tmp_path / "a", {1: (60.0, {"ravdess": 70.0}, 50.0),
                                  2: (50.0, {"ravdess": 55.0}, 70.0)})  # fmt: skip
    fused = fake_fusion(tmp_path / "fusion.json", {1: (40.0, 65.0), 2: (90.0, 56.0)})
    out = tmp_path / "choice.json"
    args = ["--run", str(a), "--run", str(fused), "--corpus", "ravdess", "--out", str(out)]
    assert mod.main(args) == 0
    result = json.loads(out.read_text())
    assert [f["chosen"] for f in result["folds"]] == [str(a), str(fused)]
    assert result["ua"] == pytest.approx(75.0)
    assert result["wa_std"] == pytest.approx(0.0)  # only the run's fold 1 has a WA
    # a fusion chosen on one corpus's speakers has no pooled validation UA to compare
    with pytest.raises(ValueError, match="fold 1 has no pooled validation UA"):
        mod.choose({"a": mod.fold_rows(a), "f": mod.fold_rows(fused)})
    (tmp_path / "bad.json").write_text("{not json")
    args = ["--run", str(a), "--run", str(tmp_path / "bad.json"), "--out", str(out)]
    assert mod.main(args) == 2 and "bad.json: not JSON" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(json.dumps({"folds": [{"fold": 1}]}))
    with pytest.raises(ValueError, match=r"nor a functionals_fusion\.py result"):
        mod.fold_rows(tmp_path / "other.json")
