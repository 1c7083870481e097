"""Long recordings: block-wise reading, VAD across block edges, bounded memory, the CLI."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import make_speech

from emovox.apps.cli import main
from emovox.inference.recognizer import Recognizer
from emovox.segmentation import (
    SegmentationConfig,
    SegmentShaper,
    VadEvent,
    iter_file_blocks,
    predict_segments,
    silero_available,
)

FILE_SR = 22050
BURSTS = (1.6, 3.2, 0.9, 2.4, 4.1)
"""Durations (s) of the speech-like bursts, cycled; each is followed by a silence."""
GAPS = (2.5, 3.0, 2.2)


def burst(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A speech-like burst: a harmonic tone with a 4 Hz syllable envelope that stays voiced."""
    t = np.arange(round(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.25 * env * x + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def write_long(path: Path, minutes: float, sr: int = FILE_SR) -> list[tuple[float, float]]:
    """Write bursts separated by quiet noise, chunk by chunk; return the bursts' true times."""
    rng = np.random.default_rng(0)
    truth: list[tuple[float, float]] = []
    t = 0.0
    total = minutes * 60
    i = 0
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        while True:
            gap = GAPS[i % len(GAPS)]
            dur = BURSTS[i % len(BURSTS)]
            if t + gap + dur + 1.0 > total:
                break
            f.write((1e-4 * rng.standard_normal(round(gap * sr))).astype(np.float32))
            f.write(burst(dur, sr, rng))
            truth.append((t + gap, t + gap + dur))
            t += gap + dur
            i += 1
        f.write((1e-4 * rng.standard_normal(round((total - t) * sr))).astype(np.float32))
    return truth


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    path = tmp_path_factory.mktemp("long") / "ten_minutes.wav"
    truth = write_long(path, 10.0)
    return path, truth


@pytest.fixture(scope="module")
def rec(trained_bundle: Path) -> Recognizer:
    return Recognizer.load(trained_bundle)


def test_blocks_are_resampled_as_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    x = burst(7.3, 44100, np.random.default_rng(1))
    sf.write(path, x, 44100)
    blocks = list(iter_file_blocks(path, 16000, block_seconds=1.0))
    assert len(blocks) >= 7
    joined = np.concatenate(blocks)
    assert abs(joined.size - round(7.3 * 16000)) <= 2
    import soxr

    ref = soxr.resample(x, 44100, 16000, quality="HQ")
    n = min(ref.size, joined.size)
    assert np.max(np.abs(ref[:n] - joined[:n])) < 1e-3


def test_ten_minutes_segments_have_the_right_times(rec: Recognizer, long_file) -> None:
    path, truth = long_file
    stats: dict = {}
    cfg = SegmentationConfig()
    segs = predict_segments(rec, path, vad="energy", config=cfg, block_seconds=7.0, stats=stats)
    assert stats["vad"] == "energy"
    assert abs(stats["duration"] - 600.0) < 0.01
    assert len(segs) == len(truth), (len(segs), len(truth))
    for seg, (start, end) in zip(segs, truth, strict=True):
        assert abs(seg["start"] - (start - cfg.pad)) < 0.15, (seg, start)
        assert abs(seg["end"] - (end + cfg.pad)) < 0.4, (seg, end)
        assert seg["label"] in rec.labels
        assert abs(sum(seg["probabilities"].values()) - 1) < 1e-5
    # block edges do not change the result
    other = predict_segments(rec, path, vad="energy", config=cfg, block_seconds=2.9)
    assert [(s["start"], s["end"]) for s in other] == [(s["start"], s["end"]) for s in segs]


def _peak(rec: Recognizer, path: Path) -> tuple[int, dict]:
    stats: dict = {}
    tracemalloc.start()
    try:
        predict_segments(rec, path, vad="energy", block_seconds=10.0, stats=stats)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, stats


def test_memory_stays_bounded_for_a_longer_file(rec: Recognizer, tmp_path: Path) -> None:
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    write_long(short, 2.0)
    write_long(long, 8.0)
    peak_short, _ = _peak(rec, short)
    peak_long, st_long = _peak(rec, long)
    decoded_long = 8 * 60 * FILE_SR * 4  # bytes of the long file decoded whole (float32)
    assert peak_long < 1.5 * peak_short + 2_000_000, (peak_short, peak_long)
    assert peak_long < decoded_long / 4
    assert st_long["max_buffer_seconds"] < 2 * 10.0 + 10.0 + 5.0


def test_long_speech_is_cut_and_short_pieces_merged() -> None:
    cfg = SegmentationConfig(max_segment=10.0, pad=0.0, min_segment=1.0, merge_gap=1.0)
    shaper = SegmentShaper(cfg)
    out = []
    out += shaper.update([VadEvent("start", 1.0, 1.3)], now=2.0)
    out += shaper.update([], now=25.0)  # 24 s of speech so far: one 10 s piece is cut
    out += shaper.update([VadEvent("end", 35.0, 35.3)], now=36.0)
    out += shaper.update([VadEvent("start", 40.0, 40.3), VadEvent("end", 42.0, 42.3)], now=43)
    out += shaper.update([VadEvent("start", 42.5, 42.8), VadEvent("end", 43.0, 43.3)], now=44)
    out += shaper.finish(60.0)
    durations = [round(s.duration, 3) for s in out]
    assert all(d <= 10.0 + 1e-9 for d in durations)
    assert [round(s.start, 3) for s in out[:4]] == [1.0, 11.0, 19.0, 27.0]  # 24 s left: 3 x 8 s
    assert round(out[-1].start, 3) == 40.0 and round(out[-1].end, 3) == 43.0  # merged


def test_array_input_gives_the_same_segments(rec: Recognizer, tmp_path: Path) -> None:
    path = tmp_path / "one_minute.wav"
    write_long(path, 1.0)
    from_file = rec.predict_segments(path, vad="energy")
    audio, sr = sf.read(path, dtype="float32")
    from_array = rec.predict_segments(audio, sr=sr, vad="energy")
    assert [(s["start"], s["end"]) for s in from_file] == [
        (s["start"], s["end"]) for s in from_array
    ]
    assert len(from_file) >= 3


@pytest.mark.skipif(not silero_available(), reason="silero-vad is not installed")
def test_silero_finds_spoken_sentences(rec: Recognizer, tmp_path: Path) -> None:
    speech = make_speech(tmp_path / "s.wav", "The quick brown fox jumps over the lazy dog.")
    y, sr = sf.read(speech, dtype="float32")
    quiet = np.zeros(round(2.0 * sr), dtype=np.float32)
    audio = np.concatenate([quiet, y, quiet, y, quiet])
    segs = rec.predict_segments(audio, sr=sr, vad="silero")
    assert 1 <= len(segs) <= 4
    assert abs(segs[0]["start"] - 2.0) < 0.5
    assert segs[-1]["end"] < audio.size / sr - 1.0


def test_cli_segments_table_json_csv_and_plot(trained_bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "talk.wav"
    truth = write_long(path, 0.5)
    base = ["predict", "--model", str(trained_bundle), str(path), "--segments", "--vad", "energy"]
    r = CliRunner().invoke(main, [*base, "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc[0]["file"] == str(path) and len(doc[0]["segments"]) == len(truth)
    r = CliRunner().invoke(main, [*base, "--format", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("file,start,end,label,") and len(lines) == 1 + len(truth)
    png = tmp_path / "timeline.png"
    r = CliRunner().invoke(main, [*base, "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "segment(s)" in r.output
    missing = CliRunner().invoke(main, [*base[:3], str(tmp_path / "nope.wav"), "--segments"])
    assert missing.exit_code == 1
