"""benchmarks/declip_sdr.py on the synthetic corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import benchmark_module


def test_declip_sdr_scores_every_method_on_the_files_that_clip(
    synth_corpus: Path, tmp_path: Path
) -> None:
    module = benchmark_module("declip_sdr")
    out = tmp_path / "sdr.json"
    args = ["--corpus", f"ravdess:{synth_corpus}", "--gain", "12", "--limit", "4"]
    result = CliRunner().invoke(module.main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    entry = got["corpora"]["ravdess"]
    assert entry["files"] == 4 and got["all"]["files"] == 4
    assert set(entry["sdr_db"]) == {"clipped", "spline", "sparse"}
    assert entry["files_clipped"] >= 1 and 0 < entry["clipped_share"] < 1
    assert set(entry["seconds_per_file"]) == {"spline", "sparse"}
    result = CliRunner().invoke(module.main, ["--corpus", str(synth_corpus), "--out", str(out)])
    assert result.exit_code == 2 and "NAME:DIR" in result.output


def test_sdr_is_infinite_for_an_exact_copy_and_falls_with_the_error() -> None:
    module = benchmark_module("declip_sdr")
    x = np.sin(np.linspace(0, 20, 1000)).astype(np.float32)
    assert module.sdr(x, x) == float("inf")
    assert abs(module.sdr(x, 0.9 * x) - 20) < 1e-4  # an error of a tenth: 20 dB
    assert module.sdr(x, 0.5 * x) < module.sdr(x, 0.9 * x)
