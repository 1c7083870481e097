"""benchmarks/live_latency.py: utterances played through the live path, the latency of each."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import benchmark_module


def test_the_latency_of_every_utterance_is_written(trained_bundle: Path, tmp_path: Path) -> None:
    mod = benchmark_module("live_latency")
    out = tmp_path / "latency.json"
    args = ["--model", str(trained_bundle), "--utterances", "2", "--speed", "20", "--out", out]
    res = CliRunner().invoke(mod.main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    assert report["utterances_played"] == 2 and len(report["utterance_seconds"]) == 2
    assert report["utterances_detected"] == len(report["per_utterance_ms"])
    assert "s of quiet after the speech" in report["what"]
    assert report["latency_ms"]["target_ms"] == 150.0 and report["vad"] == "energy"
