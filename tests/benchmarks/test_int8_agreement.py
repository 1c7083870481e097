"""benchmarks/int8_agreement.py: a model's int8 file against its float weights, file by file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import benchmark_module

from emovox.pretrained import PRETRAINED_DIR

pytest.importorskip("onnxruntime")


def pred(label: str, p: float, ok: bool = True) -> SimpleNamespace:
    return SimpleNamespace(ok=ok, label=label, probabilities={"a": p, "b": 1 - p})


def test_agreement_counts_kept_labels_and_leaves_failures_out() -> None:
    mod = benchmark_module("int8_agreement")
    f = [pred("a", 0.9), pred("b", 0.4), pred("a", 0.8), pred("a", 0.7, ok=False)]
    q = [pred("a", 0.85), pred("a", 0.6), pred("a", 0.8), pred("a", 0.7)]
    out = mod.agreement(f, q)
    assert out["files"] == 3 and out["failed"] == 1
    assert out["labels_kept"] == pytest.approx(66.67)
    assert out["max_abs_diff"] == pytest.approx(0.2)
    assert out["median_abs_diff"] == pytest.approx(0.05)
    assert mod.agreement([pred("a", 0.5, ok=False)], [pred("a", 0.5)]) == {"files": 0, "failed": 1}


def test_the_fast_model_on_its_own_int8_file_and_on_a_given_one(
    synth_corpus: Path, tmp_path: Path
) -> None:
    mod = benchmark_module("int8_agreement")
    data = ["--data", f"ravdess:{synth_corpus}", "--limit", "4"]
    mod.main([*data, "--out", str(tmp_path / "own.json")])
    own = json.loads((tmp_path / "own.json").read_text())
    assert own["per_corpus"]["ravdess"]["files"] == 4 and "vnni" in own["machine"]
    assert 0 <= own["all"]["labels_kept"] <= 100 and own["all"]["max_abs_diff"] < 0.1
    given = tmp_path / "given.int8.onnx"
    given.write_bytes((PRETRAINED_DIR / "fast-7" / "model.int8.onnx").read_bytes())
    mod.main([*data, "--int8", str(given), "--out", str(tmp_path / "given.json")])
    again = json.loads((tmp_path / "given.json").read_text())
    assert again["per_corpus"] == own["per_corpus"] and again["int8"] == str(given)


def test_a_bad_corpus_spec_is_refused_by_name(tmp_path: Path, capsys) -> None:
    mod = benchmark_module("int8_agreement")
    with pytest.raises(SystemExit):
        mod.main(["--data", f"nosuch:{tmp_path}", "--out", str(tmp_path / "x.json")])
    assert "'nosuch:" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
