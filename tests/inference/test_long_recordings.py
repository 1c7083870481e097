"""Long recordings in plain prediction (issue 15): predicted by their segments, read in blocks
(never decoded whole), their label the duration-weighted mean of the segments' probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_tone

from emovox.data.synth import make_demo_clip
from emovox.inference.batch import score_files
from emovox.inference.recognizer import (
    CLIP_BASIS,
    LONG_RECORDING_SECONDS,
    Recognizer,
    segments_prediction,
)


@pytest.fixture(scope="module")
def rec(trained_bundle: Path) -> Recognizer:
    return Recognizer.load(trained_bundle)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clip = make_demo_clip(tmp_path_factory.mktemp("long") / "talk.wav", engine="numpy")
    assert clip.duration > LONG_RECORDING_SECONDS
    return clip.path


def test_segments_prediction_is_the_duration_weighted_mean() -> None:
    labels = ["a", "b"]
    segs = [
        {"start": 0.0, "end": 1.0, "probabilities": {"a": 0.9, "b": 0.1}},
        {"start": 2.0, "end": 5.0, "probabilities": {"a": 0.3, "b": 0.7}},
    ]
    p = segments_prediction("x.wav", segs, labels)
    assert p.probabilities["a"] == pytest.approx((0.9 * 1 + 0.3 * 3) / 4)
    assert p.label == "b" and p.basis.startswith("2 speech segments")
    none = segments_prediction("x.wav", [], labels)
    assert not none.ok and "no speech" in none.error


def test_a_long_file_agrees_with_its_segments_and_is_never_decoded_whole(
    rec: Recognizer, long_clip: Path, tmp_path: Path, monkeypatch
) -> None:
    short = write_tone(tmp_path / "short.wav", seconds=2.0)
    segs = rec.predict_segments(long_clip, vad="energy")
    expected = segments_prediction(str(long_clip), segs, rec.labels)
    loaded: list[str] = []
    original = rec.feature.load

    def spy(path, **kwargs):
        wave = original(path, **kwargs)  # a long file raises LongAudio here, before decoding
        loaded.append(Path(path).name)
        return wave

    monkeypatch.setattr(rec.feature, "load", spy)
    got, alone = rec.predict_batch([long_clip, short])
    assert "talk.wav" not in loaded and "short.wav" in loaded
    assert alone.basis == CLIP_BASIS
    seg_labels = {s["label"] for s in segs}
    assert got.label in seg_labels and got.basis.endswith("duration-weighted")
    assert got.label == expected.label
    for c in rec.labels:
        assert got.probabilities[c] == pytest.approx(expected.probabilities[c], abs=1e-6)
    # batch scoring to a file takes the same path and writes what the label is of
    out = tmp_path / "p.jsonl"
    loaded.clear()
    score_files(rec, [str(short), str(long_clip)], out, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert "talk.wav" not in loaded
    assert rows[1]["label"] == expected.label and rows[1]["basis"] == got.basis
    assert rows[0]["basis"] == CLIP_BASIS


def test_a_long_silent_file_says_there_is_no_speech(rec: Recognizer, tmp_path: Path) -> None:
    import soundfile as sf

    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(int(16000 * (LONG_RECORDING_SECONDS + 2)), np.float32), 16000)
    (p,) = rec.predict_batch([path])
    assert not p.ok and "no speech" in p.error
