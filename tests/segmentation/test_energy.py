"""The energy detector of emovox.segmentation: segments of a recording, events of a stream,
and the segment predictions."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from conftest import tone

from emovox.segmentation import (
    EnergyVad,
    Segment,
    SegmentationConfig,
    frame_energy_db,
    merge_segments,
    predict_segments,
    split_long,
)
from emovox.segmentation import segment_audio as _segment_audio

SR = 16000
RAW = SegmentationConfig(pad=0.0, min_segment=0.0, merge_gap=0.0, min_speech=0.2)
"""The detector's own segments: no padding, no merging of short pieces."""


def segment_audio(x: np.ndarray, sr: int, config: SegmentationConfig = RAW) -> list[Segment]:
    return _segment_audio(x, sr, config, vad="energy")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SR), dtype=np.float32)


def tones_with_gaps(noise: float = 1e-3) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Three tones (1.0, 0.8, 1.5 s) separated by silences, with a little noise everywhere."""
    parts, truth, t = [silence(0.5)], [], 0.5
    for dur, gap, freq in ((1.0, 0.7, 220.0), (0.8, 1.0, 330.0), (1.5, 0.4, 440.0)):
        parts += [tone(dur, SR, freq), silence(gap)]
        truth.append((t, t + dur))
        t += dur + gap
    x = np.concatenate(parts)
    x = x + np.random.default_rng(0).normal(0, noise, x.size).astype(np.float32)
    return x, truth


def assert_matches(segs: list[Segment], truth: list[tuple[float, float]], tol: float = 0.1):
    assert len(segs) == len(truth), segs
    for seg, (start, end) in zip(segs, truth, strict=True):
        assert seg.start == pytest.approx(start, abs=tol)
        assert seg.end == pytest.approx(end, abs=tol)


def test_tones_separated_by_silence_give_one_segment_each():
    x, truth = tones_with_gaps()
    assert_matches(segment_audio(x, SR), truth)


@pytest.mark.parametrize("gain", [1e-3, 0.1, 1.9])
def test_segmentation_does_not_depend_on_the_gain(gain):
    x, truth = tones_with_gaps()
    assert segment_audio(x * gain, SR) == segment_audio(x, SR)
    assert_matches(segment_audio(x * gain, SR), truth)


def test_short_bursts_are_dropped_and_short_pauses_bridged():
    x = np.concatenate(
        [silence(0.5), tone(0.08, SR), silence(0.8), tone(0.6, SR), silence(0.1), tone(0.6, SR),
         silence(0.5)]
    )
    segs = segment_audio(x, SR, RAW)
    assert_matches(segs, [(1.38, 2.68)], tol=0.05)  # 80 ms click gone, 0.1 s pause bridged


def test_long_segments_are_cut_into_equal_pieces():
    x = np.concatenate([silence(0.3), tone(5.0, SR), silence(0.6)])
    segs = segment_audio(x, SR, SegmentationConfig(max_segment=2.0, pad=0.0, min_segment=0.0))
    assert len(segs) == 3
    lengths = [s.duration for s in segs]
    # pieces of max_segment while the speech goes on, the rest in equal pieces: none is short
    assert max(lengths) <= 2.0 + 1e-9 and min(lengths) >= 1.0
    assert segs[0].start == pytest.approx(0.3, abs=0.05)
    assert segs[-1].end == pytest.approx(5.3, abs=0.05)
    assert all(a.end == b.start for a, b in itertools.pairwise(segs))


def test_silence_and_empty_audio_have_no_segments():
    assert segment_audio(silence(2.0), SR) == []
    assert segment_audio(np.zeros(0, np.float32), SR) == []


def test_helpers():
    assert merge_segments([Segment(0, 1), Segment(1.1, 2), Segment(3, 3.05)], 0.2, 0.1) == [
        Segment(0, 2)
    ]
    assert split_long([Segment(0, 3)], 1.0) == [Segment(0, 1), Segment(1, 2), Segment(2, 3)]
    db = frame_energy_db(np.ones(SR, np.float32), SR)
    assert db.shape == (98,) and np.allclose(db, 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="hop"):
        SegmentationConfig(hop=0.05, frame=0.03)


@pytest.mark.parametrize("block", [160, 320, 4096])
def test_events_do_not_depend_on_the_block_size_or_gain(block):
    x, truth = tones_with_gaps()
    for gain in (1.0, 0.01):
        vad = EnergyVad(SR, RAW)
        events = []
        for i in range(0, x.size, block):
            events += vad.feed(gain * x[i : i + block])
        starts = [e.time for e in events if e.kind == "start"]
        ends = [e for e in events if e.kind == "end"]
        assert len(starts) == len(ends) == 3
        for s, e, (t0, t1) in zip(starts, ends, truth, strict=True):
            assert s == pytest.approx(t0, abs=0.05)
            assert e.time == pytest.approx(t1, abs=0.05)
            # the VAD knows an utterance ended after min_silence of quiet
            assert e.decided == pytest.approx(t1 + 0.3, abs=0.05)


def test_predict_segments(trained_bundle: Path):
    from emovox.inference.recognizer import Recognizer

    rec = Recognizer.load(trained_bundle)
    x, _truth = tones_with_gaps()
    rows = predict_segments(rec, x, SR, vad="energy", config=RAW)
    assert [(r["start"], r["end"]) for r in rows] == [
        (round(s.start, 3), round(s.end, 3)) for s in segment_audio(x, SR)
    ]
    for r in rows:
        assert r["label"] in rec.labels
        assert set(r["probabilities"]) == set(rec.labels)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert predict_segments(rec, silence(1.0), SR) == []
