"""Guarded speaker adaptation: the spread of a speaker's per-utterance predictions decides how
far their statistics are used, so a speaker heard in one emotion is predicted per utterance."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, tiny_cli, train_tiny

from emovox.inference.adaptation import (
    DEFAULT_GUARD,
    AdaptationGuard,
    balance_priors,
    guard_speakers,
    spread,
)
from emovox.inference.recognizer import Recognizer


def test_spread_is_zero_for_alike_clips_and_one_for_sure_different_ones() -> None:
    one = np.tile([1.0, 0.0, 0.0, 0.0], (6, 1))
    unsure = np.full((6, 4), 0.25)  # a model that cannot tell: no spread either
    even = np.eye(4)
    assert spread(one) == pytest.approx(0.0)
    assert spread(unsure) == pytest.approx(0.0)
    assert spread(even) == pytest.approx(1.0)
    soft = np.eye(4) * 0.6 + 0.1
    assert 0 < spread(soft) < spread(even)
    assert spread(np.zeros((0, 4))) == 0.0


def test_the_weight_needs_spread_and_material() -> None:
    guard = AdaptationGuard(low=0.1, high=0.5, prior=2.0, min_utterances=3)
    even = np.tile(np.eye(4), (2, 1))  # 8 clips over all four classes
    assert guard.weight(even) == pytest.approx(8 / 10)
    assert guard.weight(even[:2]) == 0.0  # too few clips
    assert guard.weight(np.tile([0.9, 0.05, 0.03, 0.02], (20, 1))) == 0.0  # all sound alike
    many = np.tile(np.eye(4), (25, 1))
    assert guard.weight(many) > guard.weight(even)  # shrinkage fades with material
    with pytest.raises(ValueError, match="low < high"):
        AdaptationGuard(low=0.9, high=0.5)
    with pytest.raises(ValueError, match="prior"):
        AdaptationGuard(prior=-1)


def test_a_one_emotion_speaker_keeps_the_per_utterance_prediction() -> None:
    rng = np.random.default_rng(0)
    per_utt = np.tile([0.8, 0.1, 0.05, 0.05], (10, 1))  # speaker A: all one class
    adapted = rng.dirichlet(np.ones(4), size=10)  # what standardising with A's stats gives
    mixed = np.tile(np.eye(4) * 0.85 + 0.05, (3, 1))  # speaker B: every class
    adapted_b = np.roll(mixed, 1, axis=1)
    p = np.vstack([per_utt, mixed])
    a = np.vstack([adapted, adapted_b])
    out = guard_speakers(p, a, ["A"] * 10 + ["B"] * 12)
    np.testing.assert_allclose(out[:10], per_utt, rtol=1e-6)
    w = DEFAULT_GUARD.weight(mixed)  # the spread trusted fully, shrunk by 12 clips of material
    assert w == pytest.approx(12 / (12 + DEFAULT_GUARD.prior))
    assert AdaptationGuard().weight(mixed) > 0.5
    assert AdaptationGuard().weight(np.full((10, 4), 0.25)) == 0.0  # cannot tell: no adaptation
    np.testing.assert_allclose(out[10:], w * adapted_b + (1 - w) * mixed, rtol=1e-5)


@pytest.fixture(scope="module")
def norm_bundle(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(synth_corpus, tmp_path_factory.mktemp("norm") / "model", speaker_norm=True)


def test_the_recognizer_blends_by_the_guard_weight(norm_bundle: Path, synth_corpus: Path) -> None:
    files = sorted(synth_corpus.glob("Actor_01/*.wav"))
    full = Recognizer.load(norm_bundle, guard=None)
    stats = full.speaker_stats(files)
    assert stats.weight is None  # no guard, nothing measured
    adapted = np.array(
        [
            [p.probabilities[c] for c in full.labels]
            for p in full.predict_batch(files, speaker_stats=stats)
        ]
    )
    alone = np.array([[p.probabilities[c] for c in full.labels] for p in full.predict_batch(files)])
    never = Recognizer.load(norm_bundle, guard=AdaptationGuard(min_utterances=10_000))
    got = never.predict_batch(files, speaker_stats=never.speaker_stats(files))
    np.testing.assert_allclose(
        [[p.probabilities[c] for c in full.labels] for p in got], alone, atol=1e-6
    )
    rec = Recognizer.load(norm_bundle)
    guarded_stats = rec.speaker_stats(files)
    w = guarded_stats.weight
    assert w is not None and 0.0 <= w <= 1.0
    assert w == pytest.approx(rec.guard.weight(alone))
    got = rec.predict_batch(files, speaker_stats=guarded_stats)
    mixed = [[p.probabilities[c] for c in rec.labels] for p in got]
    np.testing.assert_allclose(mixed, w * adapted + (1 - w) * alone, atol=1e-5)
    # "batch" measures the weight on the call's items: the same files give the same blend
    batch = rec.predict_batch(files, speaker_stats="batch")
    np.testing.assert_allclose(
        [[p.probabilities[c] for c in rec.labels] for p in batch], mixed, atol=1e-5
    )


def test_cli_one_speaker_uses_the_guard(
    norm_bundle: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    files = [str(f) for f in sorted(synth_corpus.glob("Actor_02/*.wav"))]
    out = tmp_path / "p.jsonl"
    run_cli(["predict", "--model", str(norm_bundle), "--one-speaker", *files, "--out", str(out)])
    rec = Recognizer.load(norm_bundle)
    want = rec.predict_batch(files, speaker_stats=rec.speaker_stats(files))
    got = [json.loads(line) for line in out.read_text().splitlines()]
    for g, w in zip(got, want, strict=True):
        assert g["probabilities"] == pytest.approx(w.probabilities, abs=1e-5)


def test_evaluation_writes_guarded_columns(synth_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    run_cli(
        tiny_cli(
            "evaluate",
            ["--data", synth_corpus, "--labels", "neutral,happy,sad,angry"],
            out,
            *("--protocol", "speakers-kfold", "--k", "2", "--train-param", "speaker_norm=true"),
            epochs=1,
        )
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"guarded", "one_emotion_per_speaker"} <= set(metrics["speaker_adapted"])
    with (out / "fold_1" / "predictions.csv").open() as f:
        header = next(csv.reader(f))
    assert "guarded_predicted" in header and "adapted_predicted" in header


def _one_recording(files: list[Path], tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """The clips one after another with 1.5 s of silence between: one speaker's recording."""
    import soundfile as sf

    from emovox.audio import load_audio

    clips = [load_audio(f, sr=16000) for f in files]
    gap = np.zeros(24000, dtype=np.float32)
    audio = np.concatenate([x for c in clips for x in (gap, c)] + [gap])
    path = tmp_path / "session.wav"
    sf.write(path, audio, 16000)
    return path, clips


def test_the_segments_of_one_recording_adapt_to_its_statistics(
    norm_bundle: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    files = sorted(synth_corpus.glob("Actor_03/*.wav"))
    path, _ = _one_recording(files, tmp_path)
    rec = Recognizer.load(norm_bundle)
    alone = rec.predict_segments(path, vad="energy")
    adapted = rec.predict_segments(path, vad="energy", one_speaker=True)
    assert [(s["start"], s["end"]) for s in adapted] == [(s["start"], s["end"]) for s in alone]
    assert len(adapted) >= 3
    # the same as predicting the segments' features with the statistics of all of them
    from emovox.audio import load_audio

    audio = load_audio(path, sr=rec.sample_rate)
    waves = [audio[round(s["start"] * 16000) : round(s["end"] * 16000)] for s in adapted]
    feats = rec.feature(waves)
    stats = rec.stats_of_features(feats)
    want = rec.predict_features(feats, [str(i) for i in range(len(feats))], speaker_stats=stats)
    for got, w in zip(adapted, want, strict=True):
        assert got["probabilities"] == pytest.approx(w.probabilities, abs=1e-4)
    # fully adapted (no guard) the segments move away from their per-utterance predictions
    full = Recognizer.load(norm_bundle, guard=None)
    moved = full.predict_segments(path, vad="energy", one_speaker=True)
    diff = max(
        abs(m["probabilities"][c] - a["probabilities"][c])
        for m, a in zip(moved, alone, strict=True)
        for c in rec.labels
    )
    assert diff > 1e-3


def test_cli_segments_one_speaker_and_a_plain_model(
    norm_bundle: Path, trained_bundle: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    path, _ = _one_recording(sorted(synth_corpus.glob("Actor_03/*.wav")), tmp_path)
    out = tmp_path / "segs.json"
    args = ["predict", str(path), "--segments", "--vad", "energy", "--one-speaker"]
    run_cli([*args, "--model", str(norm_bundle), "--format", "json", "--out", str(out)])
    rec = Recognizer.load(norm_bundle)
    want = rec.predict_segments(path, vad="energy", one_speaker=True)
    got = json.loads(out.read_text())[0]["segments"]
    assert [g["probabilities"] for g in got] == [
        pytest.approx(w["probabilities"], abs=1e-5) for w in want
    ]
    # a model without speaker_norm balances the segments' predictions with their mean instead
    plain = Recognizer.load(trained_bundle, guard=None)
    alone = plain.predict_segments(path, vad="energy")
    balanced = plain.predict_segments(path, vad="energy", one_speaker=True)
    per_utt = np.array([[s["probabilities"][c] for c in plain.labels] for s in alone])
    want = balance_priors(per_utt)
    got = np.array([[s["probabilities"][c] for c in plain.labels] for s in balanced])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(got, per_utt, atol=1e-3)


def test_a_one_speaker_live_session_adapts_as_it_goes(
    norm_bundle: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    from emovox.apps.live import LiveSession

    path, _ = _one_recording(sorted(synth_corpus.glob("Actor_04/*.wav")), tmp_path)
    from emovox.audio import load_audio

    rec = Recognizer.load(norm_bundle, guard=None)
    audio = load_audio(path, sr=rec.sample_rate)

    def run(one_speaker: bool):
        session = LiveSession(rec, vad="energy", one_speaker=one_speaker)
        out = []
        for i in range(0, len(audio), 1600):
            out += session.feed(audio[i : i + 1600], arrived=0.0)
        out += session.close(arrived=0.0)
        return {r.index: r for r in out if r.final}

    alone, adapted = run(False), run(True)
    assert sorted(alone) == sorted(adapted) and len(adapted) >= 3
    first = min(adapted)
    last = max(adapted)
    feats = []
    for k in sorted(adapted):
        r = adapted[k]
        (f,) = rec.feature([audio[round(r.start * 16000) : round(r.end * 16000)]])
        feats.append(f)
    stats = rec.stats_of_features(feats)  # the whole session, as the last utterance saw it
    want = rec.predict_features([feats[-1]], ["last"], speaker_stats=stats)[0]
    assert adapted[last].probabilities == pytest.approx(want.probabilities, abs=1e-4)
    # the first utterance's session is itself: the same as its own per-utterance statistics
    assert adapted[first].probabilities == pytest.approx(alone[first].probabilities, abs=1e-5)
    assert adapted[last].probabilities != pytest.approx(alone[last].probabilities, abs=1e-4)
