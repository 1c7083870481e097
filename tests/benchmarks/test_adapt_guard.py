"""benchmarks/adapt_guard.py on synthetic predictions: biased speakers of every emotion, where
balancing helps, and speakers of one emotion, where it must not hurt."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
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
