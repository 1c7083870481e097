"""benchmarks/adapt_guard.py on synthetic predictions: biased speakers of every emotion, where
balancing helps, and speakers of one emotion, where it must not hurt."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_module

CLASSES = ["neutral", "angry", "happy", "sad", "fearful"]
FOUR = ["neutral", "angry", "happy", "sad"]


def _rows(corpus: str, fold: int, rng: np.random.Generator, n_speakers: int = 6) -> list[dict]:
    """Speakers of all four emotions, each with a voice bias towards one class (sure clips, so
    the spread stays high), plus speakers heard in one emotion only."""
    rows = []
    for s in range(n_speakers):
        bias = np.zeros(len(CLASSES))
        bias[s % 4] = 3.0
        one = s >= n_speakers - 2  # the last two speakers: one emotion
        labels = [FOUR[s % 4]] * 16 if one else [c for c in FOUR for _ in range(4)]
        for i, label in enumerate(labels):
            z = 3.0 * np.eye(len(CLASSES))[CLASSES.index(label)] + bias
            z = z + rng.normal(0, 0.3, len(CLASSES))
            p = np.exp(z - z.max())
            p /= p.sum()
            row = {"fold": fold, "corpus": corpus, "path": f"{corpus}/{s}/{i}.wav"}
            row |= {"speaker": f"{corpus}_{s}", "label": label, "predicted": CLASSES[p.argmax()]}
            rows.append(row | {f"p_{c}": f"{v:.6f}" for c, v in zip(CLASSES, p, strict=True)})
    return rows


def _run(folder: Path, rows: list[dict], by_fold: bool = False) -> Path:
    """A results folder: its ``predictions.csv``, or (``by_fold``) one per fold folder only."""
    parts = {"": rows}
    if by_fold:
        parts = {f"fold_{r['fold']}": [x for x in rows if x["fold"] == r["fold"]] for r in rows}
    for sub, part in parts.items():
        (folder / sub).mkdir(parents=True, exist_ok=True)
        with (folder / sub / "predictions.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(part[0]))
            w.writeheader()
            w.writerows(part)
    return folder


def test_adapt_guard_chooses_without_the_left_out_corpus_and_loses_nothing(
    tmp_path: Path,
) -> None:
    mod = benchmark_module("adapt_guard")
    rng = np.random.default_rng(0)
    corpora = ["a", "b", "c"]
    nested_rows = [r for k, c in enumerate(corpora) for r in _rows(c, k, rng)]
    nested = _run(tmp_path / "nested", nested_rows, by_fold=True)  # fold files only
    loco = _run(tmp_path / "loco", [r for k, c in enumerate(corpora) for r in _rows(c, k, rng)])
    out = tmp_path / "ag.json"
    assert mod.main(["--nested", str(nested), "--loco", str(loco), "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert set(got["loco_per_corpus"]) == set(corpora)
    for c, v in got["loco_per_corpus"].items():
        s = v["scores"][c]
        assert v["chosen"]["guard"] is not None
        assert s["all"]["adapted"] > s["all"]["per_utterance"]  # the biases are taken out
        assert s["all"]["guarded"] > s["all"]["per_utterance"]
        for draw in s["one_emotion_draws"]:  # speakers of one emotion lose nothing
            assert draw["guarded"] >= draw["per_utterance"] - 1e-9
        assert s["one_emotion"]["adapted"] < s["one_emotion"]["per_utterance"]  # unguarded: hurt
    assert got["overall"]["worst_one_emotion_change"] >= 0.0
    mean = got["loco_mean"]["all"]
    assert mean["guarded"] > mean["per_utterance"]


def test_the_choice_never_looks_at_the_left_out_corpus(tmp_path: Path) -> None:
    mod = benchmark_module("adapt_guard")
    rng = np.random.default_rng(1)
    rows = [r for k, c in enumerate(["a", "b"]) for r in _rows(c, k, rng)]
    nested = mod.Predictions.read(_run(tmp_path / "n", rows))
    table = {g: mod.both_tests(nested, g) for g in mod.candidates()[:6]}
    # spoiling corpus b's scores changes nothing in a choice made on corpus a alone
    bad = {
        "all": {"per_utterance": 0.0, "guarded": 100.0},
        "one_emotion_draws": [{"per_utterance": 100.0, "guarded": 0.0}],
    }
    spoiled = {g: dict(per, b=bad) for g, per in table.items()}
    assert mod.choose(spoiled, ["a"]) == mod.choose(table, ["a"])
    assert mod.choose(spoiled, ["a", "b"])["guard"] is None  # b's one-emotion loss: never safe


def test_the_shipped_guard_is_the_committed_choice() -> None:
    from emovox.inference.adaptation import BALANCE_GUARD

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "adapt_guard.json"
    chosen = json.loads(results.read_text())["overall"]["guard"]
    assert chosen == {
        "low": BALANCE_GUARD.low,
        "high": BALANCE_GUARD.high,
        "prior": BALANCE_GUARD.prior,
        "min_utterances": BALANCE_GUARD.min_utterances,
    }


@pytest.fixture(scope="module")
def speaker_norm_loco(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``speaker_norm`` LOCO run over three corpora (its fold models saved)."""
    from conftest import run_cli, tiny_cli, tone_corpora

    root = tmp_path_factory.mktemp("speaker-norm-guard")
    train = [f"ravdess:{synth_corpus}", *tone_corpora(root)]
    args = [a for c in train for a in ("--train", c)]
    args += ["--labels", "angry,happy,neutral,sad", "--protocol", "loco"]
    args += ["--train-param", "speaker_norm=true"]
    run_cli(tiny_cli("evaluate", args, root / "loco", epochs=1))
    return root / "loco"


def test_a_speaker_norm_run_is_adapted_again_on_each_one_emotion_test(
    speaker_norm_loco: Path, monkeypatch
) -> None:
    mod = benchmark_module("adapt_guard")
    p = mod.Predictions.read(speaker_norm_loco, speaker_norm=True)
    assert p.adapted is not None and p.adapted.shape == p.proba.shape
    tested = mod.adapt_one_emotion_tests(p, speaker_norm_loco, draws=2)
    for d in range(2):
        rows = mod.one_emotion_rows(p.group, p.label, d)
        assert rows and not np.isnan(tested.one_emotion[d][rows]).any()
        others = sorted(set(range(len(p.label))) - set(rows))
        assert np.isnan(tested.one_emotion[d][others]).all()
        one = tested.one_emotion_test(d)
        said = {}
        for g, y in zip(one.group, one.label, strict=True):
            said.setdefault(g, set()).add(y)
        assert said and all(len(labels) == 1 for labels in said.values())  # one emotion each
        np.testing.assert_array_equal(one.adapted, tested.one_emotion[d][rows])
    # with every clip of a speaker in its "test", the statistics are the run's own: the model
    # pass reproduces the adapted probabilities `emovox evaluate` wrote
    monkeypatch.setattr(mod, "one_emotion_rows", lambda g, y, d: list(range(len(g))))
    whole = mod.adapt_one_emotion_tests(p, speaker_norm_loco, draws=1)
    np.testing.assert_allclose(whole.one_emotion[0], p.adapted, atol=2e-5)


def test_the_speaker_norm_guard_is_chosen_on_the_other_left_out_corpora(
    speaker_norm_loco: Path, tmp_path: Path
) -> None:
    mod = benchmark_module("adapt_guard")
    out = tmp_path / "g.json"
    args = ["--loco", str(speaker_norm_loco), "--speaker-norm", "--out", str(out)]
    assert mod.main(args) == 0
    got = json.loads(out.read_text())
    assert got["nested"] is None and got["adaptation"].startswith("speaker_norm")
    assert "LOCO" in got["selection"]
    assert set(got["loco_per_corpus"]) == {"ravdess", "savee", "tess"}
    lows = {c["guard"]["low"] for c in got["nested_candidates"]}
    assert lows == set(mod.SPEAKER_NORM_LOWS)
    for v in got["loco_per_corpus"].values():
        worst = v["chosen"].get("worst_one_emotion_change")
        assert worst is None or worst >= 0.0  # safe wherever the others had a test


def test_speaker_norm_wants_a_speaker_norm_run(tmp_path: Path) -> None:
    mod = benchmark_module("adapt_guard")
    rows = _rows("a", 1, np.random.default_rng(2))  # no adapted_p_* columns
    run = _run(tmp_path / "plain", rows, by_fold=True)
    with pytest.raises(SystemExit, match="no speaker-adapted columns"):
        mod.main(["--loco", str(run), "--speaker-norm", "--out", str(tmp_path / "x.json")])


def test_the_shipped_speaker_norm_guard_is_the_committed_choice() -> None:
    from emovox.inference.adaptation import DEFAULT_GUARD

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    chosen = json.loads((results / "adapt_guard_speaker_norm.json").read_text())["overall"]
    assert chosen["guard"] == {
        "low": DEFAULT_GUARD.low,
        "high": DEFAULT_GUARD.high,
        "prior": DEFAULT_GUARD.prior,
        "min_utterances": DEFAULT_GUARD.min_utterances,
    }
