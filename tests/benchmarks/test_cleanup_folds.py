"""benchmarks/cleanup_folds.py on a fake evaluation folder (two folds of a tiny trained bundle)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import benchmark_module, fake_fold_run


def test_cleanup_folds_scores_each_front_end_under_each_condition_and_resumes(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path
) -> None:
    module = benchmark_module("cleanup_folds")
    labels = json.loads((trained_bundle / "config.json").read_text())["labels"]
    files = sorted(synth_corpus.rglob("*.wav"))
    run = fake_fold_run(tmp_path, trained_bundle, files, labels)
    out = tmp_path / "cleanup.json"
    args = ["--run", str(run), "--denoise", "wiener", "--conditions", "white:0,gain:-10"]
    args += ["--limit", "6", "--out", str(out)]
    assert module.main(args) == 0
    result = json.loads(out.read_text())
    assert result["clean_up"] == {"denoise": "wiener", "declip": None}
    assert [f["fold"] for f in result["folds"]] == [1, 2]  # the dimensions-only fold is skipped
    for fold, corpus in ((1, "ravdess"), (2, "emodb")):
        entry = result["folds"][fold - 1]["corpora"][corpus]
        assert entry["files"] == 6 and 0 <= entry["unchanged_clean"] <= 100
        quiet, noisy = entry["conditions"]["gain:-10"], entry["conditions"]["white:0"]
        # 10 dB quieter, nothing clips: the filter follows the gain, so no label moves
        assert quiet["agreement_plain"] == quiet["agreement_cleaned"] == 100.0
        assert quiet["ua_change_plain"] == quiet["ua_change_cleaned"] == 0.0
        for front in ("plain", "cleaned"):
            assert noisy[f"ua_change_{front}"] == pytest.approx(
                noisy[f"ua_{front}"] - entry["ua_clean"][front], abs=0.02
            )
            assert 0 <= noisy[f"agreement_{front}"] <= 100
    mean = result["mean"]
    assert mean["corpora"] == 2 and set(mean) >= {"white:0", "gain:-10", "ua_clean"}
    before = out.read_text()
    assert module.main(args) == 0  # resumed: nothing left to do
    assert json.loads(out.read_text())["folds"] == json.loads(before)["folds"]


def test_cleanup_folds_refuses_a_run_without_clean_up_or_conditions(tmp_path: Path) -> None:
    module = benchmark_module("cleanup_folds")
    with pytest.raises(SystemExit):
        module.main(["--run", str(tmp_path)])  # no clean-up named
    with pytest.raises(SystemExit):
        module.main(["--run", str(tmp_path), "--denoise", "wiener", "--conditions", "clean"])
    assert module.main(["--run", str(tmp_path), "--denoise", "wiener"]) == 2  # no fold models


def test_cleanup_folds_measures_one_model_on_each_corpus_given(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path
) -> None:
    module = benchmark_module("cleanup_folds")
    out = tmp_path / "model.json"
    args = ["--model", str(trained_bundle), "--data", f"ravdess:{synth_corpus}", "--denoise"]
    args += ["wiener", "--conditions", "white:0", "--limit", "5", "--out", str(out)]
    assert module.main(args) == 0
    result = json.loads(out.read_text())
    assert result["model"] == str(trained_bundle) and "not the UA" in result["note"]
    (fold,) = result["folds"]
    assert fold["fold"] == 1 and fold["corpora"]["ravdess"]["files"] == 5
    assert set(fold["corpora"]["ravdess"]["conditions"]["white:0"]) >= {"ua_change_cleaned"}
    assert module.main(args) == 0  # resumed: the corpus is done
    assert json.loads(out.read_text())["folds"] == result["folds"]
    with pytest.raises(SystemExit):  # a model without its files
        module.main(["--model", str(trained_bundle), "--denoise", "wiener", "--out", str(out)])
    with pytest.raises(SystemExit):
        module.main([*args[:2], "--data", "ravdess", "--denoise", "wiener", "--out", str(out)])
