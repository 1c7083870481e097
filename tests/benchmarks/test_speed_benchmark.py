"""benchmarks/speed.py runs end to end on a few synthetic files and writes its JSON."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import benchmark_module


def test_speed_benchmark_on_a_synthetic_folder(
    synth_corpus: Path, trained_bundle: Path, tmp_path: Path
) -> None:
    module = benchmark_module("speed")
    out = tmp_path / "speed.json"
    args = ["--data", str(synth_corpus), "--model", str(trained_bundle), "--limit", "4"]
    assert module.main([*args, "--threads", "1,2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["files"] == 4 and result["audio_seconds"] > 0
    names = {(r["pipeline"], r["threads"]) for r in result["runs"]}
    assert {
        ("decode+resample", 1),
        ("emovox-torch", 1),
        ("emovox-torch", 2),
        ("tutorial", 1),
    } <= names
    assert all(r["rtf"] > 0 for r in result["runs"])
    assert "cpu" in result["machine"]
    assert "emovox-torch" in result["speedup_over_tutorial_1_thread"]
    for row in result["runs"]:  # each emovox row is timed in turn with decoding, for its ratio
        paired = row["pipeline"].startswith("emovox")
        assert ("decode_wall_s" in row) == paired
        if paired:
            assert abs(row["ratio_to_decode"] - row["decode_wall_s"] / row["wall_s"]) < 0.05
    if ("emovox-onnx", 1) in names:  # the onnx extras are installed
        assert ("emovox-onnx-int8", 1) in names
        int8 = result["int8"]
        assert 0 <= int8["label_agreement_with_float"] <= 100
        assert int8["files_compared"] + int8["calibration_files"] == 4
        assert result["ratio_to_decode_1_thread"]["emovox-onnx-int8"] > 0
