"""Speaker adaptation at the output (models without ``speaker_norm``): each clip's
probabilities divided by the speaker's mean prediction, as far as the guard allows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from emovox.inference.adaptation import (
    BALANCE_GUARD,
    DEFAULT_GUARD,
    AdaptationGuard,
    balance_priors,
    balance_speakers,
    guard_speakers,
)
from emovox.inference.recognizer import Recognizer


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _biased_speaker(bias: list[float], n_per_class: int = 6, seed: int = 0, margin: float = 1.5):
    """Clips of every class (clear margins) heard through a voice that pulls towards ``bias``."""
    rng = np.random.default_rng(seed)
    c = len(bias)
    y = np.repeat(np.arange(c), n_per_class)
    logits = margin * np.eye(c)[y] + rng.normal(0, 0.2, (len(y), c))
    return y, _softmax(logits + np.asarray(bias))


def test_balancing_takes_a_voice_bias_out() -> None:
    y, p = _biased_speaker([2.5, 0.0, 0.0, 0.0])
    assert np.mean(p.argmax(1) == y) < 0.5  # the voice makes most clips class 0
    q = balance_priors(p)
    assert np.mean(q.argmax(1) == y) == 1.0
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)
    assert np.ptp(q.mean(0)) < np.ptp(p.mean(0)) / 4  # the mean prediction about uniform


def test_balancing_strength_mean_and_floor() -> None:
    _, p = _biased_speaker([1.0, 0.0, -1.0])
    np.testing.assert_allclose(balance_priors(p, strength=0.0), p, rtol=1e-5)
    half = balance_priors(p, strength=0.5)
    full = balance_priors(p)
    assert np.ptp(full.mean(0)) < np.ptp(half.mean(0)) < np.ptp(p.mean(0))
    # the mean of all the speaker's clips may be given when only some are predicted now
    np.testing.assert_allclose(balance_priors(p[:3], mean=p.mean(0)), full[:3], rtol=1e-5)
    # a class the speaker never gets stays unlikely: its mean is floored, not divided by ~0
    never = np.tile([0.5, 0.5, 0.0], (4, 1))
    assert balance_priors(never)[:, 2].max() == 0.0
    assert balance_priors(np.zeros((0, 3))).shape == (0, 3)
    with pytest.raises(ValueError, match=r"\[n, C\]"):
        balance_priors(np.ones(3))
    with pytest.raises(ValueError, match="does not fit"):
        balance_priors(p, mean=np.ones(4) / 4)


def test_each_speaker_is_balanced_with_its_own_mean() -> None:
    _, a = _biased_speaker([2.0, 0.0, 0.0], seed=1)
    _, b = _biased_speaker([0.0, 0.0, 2.0], seed=2)
    p = np.vstack([a, b])
    out = balance_speakers(p, ["a"] * len(a) + ["b"] * len(b))
    np.testing.assert_allclose(out[: len(a)], balance_priors(a), rtol=1e-5)
    np.testing.assert_allclose(out[len(a) :], balance_priors(b), rtol=1e-5)
    # rows in any order: interleaving the speakers changes nothing
    order = np.argsort(np.arange(len(p)) % 2, kind="stable")
    speakers = ["a"] * len(a) + ["b"] * len(b)
    mixed = balance_speakers(p[order], [speakers[i] for i in order])
    np.testing.assert_allclose(mixed, out[order], rtol=1e-5)


def test_the_balance_guard_keeps_a_one_emotion_speaker_per_utterance() -> None:
    rng = np.random.default_rng(3)
    one = _softmax(np.tile([2.0, 0.0, 0.0, 0.0], (40, 1)) + rng.normal(0, 0.3, (40, 4)))
    # sure of its clips, yet pulled towards class 0 (a speaker too biased to tell from one
    # emotion is left alone too: the guard only sees the spread of the predictions)
    y, mixed = _biased_speaker([3.0, 0.0, 0.0, 0.0], n_per_class=10, margin=3.0)
    p = np.vstack([one, mixed])
    speakers = ["one"] * 40 + ["mixed"] * 40
    guarded = guard_speakers(p, balance_speakers(p, speakers), speakers, BALANCE_GUARD)
    np.testing.assert_allclose(guarded[:40], one, rtol=1e-5)  # balancing it would erase it
    assert np.mean(guarded[40:].argmax(1) == y) > np.mean(mixed.argmax(1) == y)
    # the default guards differ: each was chosen for its own kind of adaptation
    assert BALANCE_GUARD != DEFAULT_GUARD


def test_the_recognizer_balances_a_plain_model(trained_bundle: Path, synth_corpus: Path) -> None:
    files = sorted(synth_corpus.glob("Actor_01/*.wav"))
    plain = Recognizer.load(trained_bundle)
    assert not plain.speaker_norm and plain.guard == BALANCE_GUARD

    def proba(rec: Recognizer, **kw) -> np.ndarray:
        got = rec.predict_batch(files, **kw)
        return np.array([[p.probabilities[c] for c in rec.labels] for p in got])

    alone = proba(plain)
    full = Recognizer.load(trained_bundle, guard=None)
    stats = full.speaker_stats(files)
    assert stats.weight is None
    np.testing.assert_allclose(stats.mean_proba, alone.mean(0), atol=1e-5)
    np.testing.assert_allclose(proba(full, speaker_stats=stats), balance_priors(alone), atol=1e-5)
    np.testing.assert_allclose(proba(full, speaker_stats="batch"), balance_priors(alone), atol=1e-5)
    # guarded: blended by the guard's weight for these clips
    guard = AdaptationGuard(low=0.0, high=1.0, prior=1.0)  # the tiny model is unsure: low spread
    rec = Recognizer.load(trained_bundle, guard=guard)
    w = rec.speaker_stats(files).weight
    assert w == pytest.approx(guard.weight(alone), abs=1e-6) and 0 < w < 1
    want = w * balance_priors(alone) + (1 - w) * alone
    np.testing.assert_allclose(proba(rec, speaker_stats="batch"), want, atol=1e-5)
    never = Recognizer.load(trained_bundle, guard=AdaptationGuard(min_utterances=10_000))
    np.testing.assert_allclose(proba(never, speaker_stats="batch"), alone, atol=1e-6)
    with pytest.raises(ValueError, match="guard must be"):
        Recognizer.load(trained_bundle, guard="strict")


def test_cli_one_speaker_balances_a_plain_model(
    trained_bundle: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    files = [str(f) for f in sorted(synth_corpus.glob("Actor_02/*.wav"))]
    out = tmp_path / "p.jsonl"
    args = ["predict", "--model", str(trained_bundle), *files, "--out", str(out)]
    result = run_cli([*args, "--one-speaker", "--full-adaptation"])
    assert "does not apply" not in result.output
    rec = Recognizer.load(trained_bundle, guard=None)
    alone = rec.predict_batch(files)
    want = balance_priors(np.array([[p.probabilities[c] for c in rec.labels] for p in alone]))
    got = [json.loads(line) for line in out.read_text().splitlines()]
    got = np.array([[g["probabilities"][c] for c in rec.labels] for g in got])
    np.testing.assert_allclose(got, want, atol=1e-5)


def _strip_adaptation(out: Path) -> None:
    """The evaluation folder as a run of an earlier emovox left it: no adapted scores or columns."""
    import csv

    for fold in ("fold_1", "fold_2"):
        m = json.loads((out / fold / "metrics.json").read_text())
        m.pop("speaker_adapted")
        (out / fold / "metrics.json").write_text(json.dumps(m))
        with (out / fold / "predictions.csv").open() as f:
            rows = list(csv.DictReader(f))
        keep = [k for k in rows[0] if not k.startswith(("adapted_", "guarded_"))]
        with (out / fold / "predictions.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keep, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)


def test_evaluation_balances_each_test_speaker_and_resume_adds_it_to_older_runs(
    synth_corpus: Path, tmp_path: Path
) -> None:
    import csv

    from conftest import tiny_cli

    out = tmp_path / "eval"
    data = ["--data", synth_corpus, "--labels", "neutral,happy,sad,angry"]
    args = tiny_cli("evaluate", data, out, "--protocol", "speakers-kfold", "--k", "2", epochs=1)
    run_cli(args)
    want = json.loads((out / "metrics.json").read_text())
    assert {"guarded", "one_emotion_per_speaker"} <= set(want["speaker_adapted"])
    with (out / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    classes = ["neutral", "happy", "sad", "angry"]
    p = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    adapted = np.array([[float(r[f"adapted_p_{c}"]) for c in classes] for r in rows])
    groups = [f"{r['fold']}/{r['speaker']}" for r in rows]
    np.testing.assert_allclose(adapted, balance_speakers(p, groups), atol=2e-5)
    guarded = np.array([[float(r[f"guarded_p_{c}"]) for c in classes] for r in rows])
    balanced = balance_speakers(p, groups)
    want_g = guard_speakers(p.astype(np.float32), balanced, groups, BALANCE_GUARD)
    np.testing.assert_allclose(guarded, want_g, atol=2e-5)

    # --resume on a run finished before every recipe was adapted adds it from its predictions
    header = (out / "fold_1" / "predictions.csv").read_text().splitlines()[0]
    _strip_adaptation(out)
    run_cli([*args, "--resume"])
    got = json.loads((out / "metrics.json").read_text())
    for key in ("ua", "wa", "macro_f1"):
        assert got["speaker_adapted"][key] == pytest.approx(want["speaker_adapted"][key], abs=1e-6)
    assert got["speaker_adapted"]["guarded"]["ua"] == pytest.approx(
        want["speaker_adapted"]["guarded"]["ua"], abs=1e-6
    )
    g1 = got["speaker_adapted"]["one_emotion_per_speaker"]
    w1 = want["speaker_adapted"]["one_emotion_per_speaker"]
    for kind in ("per_utterance", "adapted", "guarded"):
        assert g1[kind]["ua"] == pytest.approx(w1[kind]["ua"], abs=1e-6)
    lines = (out / "fold_1" / "predictions.csv").read_text().splitlines()
    assert lines[0] == header  # the columns back in their place
