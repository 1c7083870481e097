"""benchmarks/ray_scoring.py runs end to end on a few synthetic files and writes its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import benchmark_module

pytest.importorskip("ray")


def test_ray_benchmark_on_a_synthetic_folder(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path
) -> None:
    module = benchmark_module("ray_scoring")
    out = tmp_path / "ray.json"
    args = ["--data", str(synth_corpus), "--model", str(trained_bundle), "--limit", "4"]
    assert module.main([*args, "--repeat", "2", "--actors", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["lists"]) == {"files", "files x2"}
    assert result["lists"]["files x2"]["files"] == 8
    for part in result["lists"].values():
        engines = [r["engine"] for r in part["runs"]]
        assert engines == ["local", "ray-1"]
        assert part["runs"][1]["agreement"] == 1.0
        assert part["ray_overhead_ms_per_file"] is not None
