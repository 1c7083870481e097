"""benchmarks/long_audio.py on a short synthetic recording: segments, speed and memory recorded."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
from conftest import benchmark_module


def _module():
    return benchmark_module("long_audio")


def test_recording_is_flac_of_the_asked_length(tmp_path: Path) -> None:
    info = _module().make_recording(tmp_path / "r.flac", 0.5, None, sr=22050, seed=3)
    meta = sf.info(str(tmp_path / "r.flac"))
    assert meta.format == "FLAC" and meta.samplerate == 22050
    assert meta.frames == round(0.5 * 60 * 22050) and info["audio_seconds"] == 30.0
    assert info["utterances"] >= 3 and 0 < info["utterance_seconds"] < 30


def test_long_audio_benchmark_end_to_end(trained_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "long.json"
    args = ["--minutes", "0.4", "--sr", "16000", "--vad", "energy"]
    assert _module().main([*args, "--model", str(trained_bundle), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rec = result["recording"]
    (run,) = result["runs"]
    assert run["vad"] == "energy" and run["rtf"] > 0 and not run["errors"]
    # one segment per synthetic utterance, give or take a split or a merge
    assert abs(run["segments"] - rec["utterances"]) <= max(1, rec["utterances"] // 4)
    assert run["rss_peak_mb"] >= run["rss_after_imports_mb"] > 0
    assert run["vad_used"] == "energy" and 0 < run["max_audio_buffer_seconds"] < 60
    assert result["reference_whole_decode_16k"]["samples"] == round(rec["audio_seconds"] * 16000)
    assert "cpu" in result["machine"] and "--model" in result["cli"]


def test_segment_agreement_counts_both_ends_within_the_tolerance() -> None:
    within = _module().within
    ref = [(1.0, 2.0), (5.0, 7.5)]
    assert within([(1.05, 1.95), (5.0, 7.5)], ref) == 1.0
    assert within([(1.05, 2.2), (5.0, 7.5)], ref) == 0.5  # one end moved by 0.2 s
    assert within([(1.0, 7.5)], ref) == 0.0  # two segments merged: neither matches
    assert within([], []) == 1.0 and within([], ref) == 0.0


def test_silero_runs_are_compared_with_silero_s_own_loop(trained_bundle: Path, tmp_path) -> None:
    import pytest

    from emovox.segmentation import silero_available

    if not silero_available():
        pytest.skip("silero-vad is not installed")
    out = tmp_path / "long.json"
    args = ["--minutes", "0.3", "--sr", "16000", "--vad", "silero,silero-loop"]
    assert _module().main([*args, "--model", str(trained_bundle), "--out", str(out)]) == 0
    runs = {r["vad"]: r for r in json.loads(out.read_text())["runs"]}
    assert runs["silero"]["segments"] == runs["silero-loop"]["segments"]
    assert runs["silero"]["segments_within_0.1s_of_silero_loop"] == 1.0
