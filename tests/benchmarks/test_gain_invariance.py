"""benchmarks/gain_invariance.py on the synthetic corpus with a tiny trained bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import benchmark_module

pytestmark = pytest.mark.slow


def run(*args: str | Path):
    module = benchmark_module("gain_invariance")
    return CliRunner().invoke(module.main, [str(a) for a in args])


def test_gain_invariance_keeps_every_label_when_quieter_and_counts_the_clipped_files(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gain.json"
    args = ["--data", synth_corpus, "--model", trained_bundle, "--gains=-10,30", "--out", out]
    result = run(*args, "--limit", "8", "--declip", "sparse")
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    assert got["files"] == 8 and got["declip"] == "sparse" and got["corpus"] == "ravdess"
    rows = {r["gain_db"]: r for r in got["rows"]}
    assert rows[-10.0]["agreement"] == 100.0 and rows[-10.0]["files_clipped"] == 0
    assert rows[30.0]["files_clipped"] == 8 and 0 <= rows[30.0]["agreement"] <= 100
    result = run(*args)  # every file, the model as trained
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    assert got["files"] == 32 and got["declip"] is None


def test_gain_invariance_says_when_no_file_has_a_class_of_the_model(
    trained_bundle: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    result = run("--data", tmp_path / "empty", "--model", trained_bundle, "--out", tmp_path / "g")
    assert result.exit_code == 1 and "no file of ravdess" in result.output
