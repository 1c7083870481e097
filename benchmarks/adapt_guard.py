"""Speaker adaptation at the output, guarded: how much it adds, and which guard is safe.

A model trained without ``speaker_norm`` adapts to a speaker by dividing each clip's
probabilities by the speaker's mean prediction (:func:`emovox.inference.adaptation.
balance_priors`), as far as a guard allows (:class:`~emovox.inference.adaptation.
AdaptationGuard`: none for a speaker whose clips all sound alike). This reads finished
``emovox evaluate`` runs (their ``predictions.csv``; no model is run) and

1. scores every candidate guard on the **nested** run (``--nested``: leave two corpora out,
   each scored by a model that never saw it): the gain in 4-class UA of the guarded prediction
   over the per-utterance one on each corpus, and the same on the one-emotion-per-speaker test
   (each speaker keeps the clips of one emotion, :func:`emovox.evaluate.runner.
   one_emotion_rows`), where adaptation has most to lose;
2. for each corpus left out by the **LOCO** run (``--loco``), chooses the guard on the nested
   scores of the *other* corpora (the largest mean gain among the guards that lose nothing on
   any of those corpora's one-emotion tests; the left-out corpus is never looked at) and
   reports that corpus per utterance, adapted in full and guarded, on all of its clips and on
   its one-emotion test;
3. chooses the guard the same way over all the nested corpora (``overall``: the guard shipped
   as :data:`~emovox.inference.adaptation.BALANCE_GUARD`).

``--speaker-norm`` does the same for a model trained with ``speaker_norm``, which adapts by
standardising each clip with its speaker's feature statistics: the adapted probabilities are the
run's own (its ``adapted_p_*`` columns), and each one-emotion test is adapted again by the fold's
saved model with the statistics of that test's clips alone (:func:`adapt_one_emotion_tests`),
since a speaker heard in one emotion has that emotion's statistics. Without ``--nested`` the
candidates are scored on the LOCO run's own clips (each corpus by a model that never heard it)
and each corpus's guard is chosen on the other corpora, as above. ``overall`` is then the
guard of ``speaker_norm`` models (:data:`~emovox.inference.adaptation.DEFAULT_GUARD`).

``--extra RUN`` scores more runs (e.g. the RAVDESS EmoBox folds) on their own classes with the
guard chosen without their corpora. A speaker's clips are grouped per fold (a speaker scored by
two models is two groups). The results go to ``--out`` (JSON, atomically).

    python benchmarks/adapt_guard.py \\
        --nested benchmarks/results/loco-pairs-cnn-augment-dims-cb-rows-clip \\
        --loco benchmarks/results/loco-cnn-augment-dims-cb-rows-clip \\
        [--extra benchmarks/results/emobox-...] [--out benchmarks/results/adapt_guard.json]
    python benchmarks/adapt_guard.py --loco benchmarks/results/loco-cnn-functionals-guard \\
        --speaker-norm [--cache-dir DIR] --out benchmarks/results/adapt_guard_speaker_norm.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox._fs import atomic_write_text
from emovox.evaluate.runner import ADAPTED, COMMON_FOUR, one_emotion_rows
from emovox.inference.adaptation import AdaptationGuard, balance_speakers, guard_speakers
from emovox.metrics import unweighted_accuracy

RESULTS = Path(__file__).resolve().parent / "results"
LOWS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
"""The candidate spreads below which a speaker is not adapted."""
WIDTHS = (0.05, 0.1, 0.15, 0.2)
"""The candidate distances from ``low`` to the spread of full adaptation."""
SPEAKER_NORM_LOWS = (0.0, 0.02, *LOWS)
"""The candidate lows of a ``speaker_norm`` run: its per-utterance predictions spread less (a
clip standardised with its own statistics), so the grid reaches lower."""
PRIORS = (2.0, 10.0, 30.0)
"""The candidate shrinkage pseudo-counts (``n / (n + prior)``)."""
DRAWS = 3
"""One-emotion tests drawn per corpus (each speaker's emotion drawn again): a guard must be
safe on every one of them."""
SAFETY = 0.0
"""The most a chosen guard may lose (UA points) on any validation corpus's one-emotion test."""


@dataclasses.dataclass
class Predictions:
    """A run's scored clips: corpus, speaker group (fold and speaker), label, file and the
    model's probabilities over its classes; for a ``speaker_norm`` run also its adapted ones."""

    corpus: list[str]
    group: list[str]
    label: list[str]
    classes: list[str]
    proba: np.ndarray
    path: list[str] = dataclasses.field(default_factory=list)
    adapted: np.ndarray | None = None
    """Speaker-adapted probabilities of a ``speaker_norm`` run (each clip standardised with its
    speaker's statistics); ``None``: the outputs are balanced instead (:func:`balance_speakers`)."""
    one_emotion: dict[int, np.ndarray] | None = None
    """For a ``speaker_norm`` run, per draw of the one-emotion test: each of its clips adapted
    with the statistics of that test's clips of the speaker alone (NaN on the other rows)."""

    @classmethod
    def read(cls, run: Path, speaker_norm: bool = False) -> Predictions:
        """The labelled clips of a run's finished folds (``fold_N/predictions.csv``; the run's
        own ``predictions.csv`` where it has no fold folders); with ``speaker_norm``, their
        speaker-adapted probabilities too (the ``adapted_p_*`` columns such a run writes)."""
        from emovox.evaluate.results import read_predictions

        paths = sorted(run.glob("fold_*/predictions.csv")) or [run / "predictions.csv"]
        rows = [r for path in paths for r in read_predictions(path) if r["label"]]
        if not rows:
            raise SystemExit(f"{run}: no labelled clips in its predictions")
        classes = [k[2:] for k in rows[0] if k.startswith("p_")]
        proba = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows], dtype=np.float32)
        adapted = None
        if speaker_norm:
            if not all(f"{ADAPTED}p_{c}" in rows[0] for c in classes):
                raise SystemExit(f"{run}: its predictions have no speaker-adapted columns")
            adapted = np.array(
                [[float(r[f"{ADAPTED}p_{c}"]) for c in classes] for r in rows], dtype=np.float32
            )
        return cls(
            [r["corpus"] for r in rows],
            [f"{r['fold']}/{r['speaker']}" for r in rows],
            [r["label"] for r in rows],
            classes,
            proba,
            [r.get("path", "") for r in rows],
            adapted,
        )

    def subset(self, rows: Sequence[int]) -> Predictions:
        rows = list(rows)
        return dataclasses.replace(
            self,
            corpus=[self.corpus[i] for i in rows],
            group=[self.group[i] for i in rows],
            label=[self.label[i] for i in rows],
            proba=self.proba[rows],
            path=[self.path[i] for i in rows] if self.path else [],
            adapted=None if self.adapted is None else self.adapted[rows],
            one_emotion=None
            if self.one_emotion is None
            else {d: a[rows] for d, a in self.one_emotion.items()},
        )

    def corpora(self) -> list[str]:
        return sorted(set(self.corpus))

    def one_emotion_test(self, draw: int) -> Predictions:
        """The clips of one draw of the one-emotion test; a ``speaker_norm`` run's adapted with
        the statistics of those clips alone (:attr:`one_emotion`)."""
        sub = self.subset(one_emotion_rows(self.group, self.label, draw))
        if self.adapted is None:
            return sub  # balanced outputs: scores() balances the subset's own
        if self.one_emotion is None or draw not in self.one_emotion:
            raise ValueError(f"the one-emotion test's draw {draw} was not adapted")
        chosen = sub.one_emotion[draw]  # type: ignore[index]
        if np.isnan(chosen).any():
            raise ValueError(f"draw {draw}: clips of the one-emotion test were not adapted")
        return dataclasses.replace(sub, adapted=chosen)


def adapt_one_emotion_tests(
    p: Predictions, run: Path, draws: int = DRAWS, cache_dir: Path | None = None
) -> Predictions:
    """``p`` (a ``speaker_norm`` run's clips, read with :meth:`Predictions.read`) with its
    :attr:`~Predictions.one_emotion` filled: every draw's clips of each speaker adapted with
    the statistics of those clips alone, by the fold's saved model (``fold_N/model``)."""
    from emovox.features.cache import FeatureCache, extract_files
    from emovox.inference.recognizer import Recognizer

    if p.adapted is None:
        raise ValueError("read the run with speaker_norm=True first")
    out = {d: np.full(p.proba.shape, np.nan, dtype=np.float32) for d in range(draws)}
    tests = {d: one_emotion_rows(p.group, p.label, d) for d in range(draws)}
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    for fold in sorted({g.split("/", 1)[0] for g in p.group}, key=int):
        model = Recognizer.load(run / f"fold_{fold}" / "model", guard=None)
        if not model.speaker_norm:
            raise SystemExit(f"{run}/fold_{fold}/model: not a speaker_norm model")
        if list(model.labels) != p.classes:
            raise SystemExit(f"{run}/fold_{fold}/model predicts {model.labels}, not {p.classes}")
        rows = sorted({r for t in tests.values() for r in t if p.group[r].startswith(f"{fold}/")})
        files = [p.path[r] for r in rows]
        feats, errors = extract_files(model.feature, files, cache, progress=False)
        if errors:
            raise SystemExit(f"{run}: unreadable test files: {sorted(errors)[:3]}")
        feat_of = dict(zip(rows, feats, strict=True))
        for d, test in tests.items():
            by_group: dict[str, list[int]] = {}
            for r in test:
                if r in feat_of:
                    by_group.setdefault(p.group[r], []).append(r)
            for members in by_group.values():
                xs = [feat_of[r] for r in members]
                stats = model.stats_of_features(xs)
                said = model.predict_features(xs, [p.path[r] for r in members], 32, stats)
                out[d][members] = [[q.probabilities[c] for c in p.classes] for q in said]
    return dataclasses.replace(p, one_emotion=out)


def four_class_ua(p: Predictions, proba: np.ndarray, corpus: str) -> float | None:
    """4-class UA of ``corpus``'s clips of the common four classes (the argmax of the
    probabilities restricted to them); ``None`` without such clips."""
    four = [c for c in p.classes if c in COMMON_FOUR]
    rows = [i for i, (c, y) in enumerate(zip(p.corpus, p.label, strict=True)) if c == corpus]
    rows = [i for i in rows if p.label[i] in four]
    if not rows or len(four) != len(COMMON_FOUR):
        return None
    cols = [p.classes.index(c) for c in four]
    pred = proba[np.ix_(rows, cols)].argmax(axis=1)
    y = np.array([four.index(p.label[i]) for i in rows])
    return 100.0 * unweighted_accuracy(y, pred, len(four))


def own_class_ua(p: Predictions, proba: np.ndarray, corpus: str) -> float:
    """UA of ``corpus``'s clips over the classes it has (the argmax of the probabilities
    restricted to them; the protocol's own number, e.g. 8 classes for RAVDESS EmoBox)."""
    rows = [i for i, c in enumerate(p.corpus) if c == corpus]
    own = [c for c in p.classes if c in {p.label[i] for i in rows}]
    cols = [p.classes.index(c) for c in own]
    pred = proba[np.ix_(rows, cols)].argmax(axis=1)
    y = np.array([own.index(p.label[i]) for i in rows])
    return 100.0 * unweighted_accuracy(y, pred, len(own))


def scores(p: Predictions, guard: AdaptationGuard, ua=four_class_ua) -> dict[str, dict]:
    """Per corpus: UA (by default of 4 classes) per utterance, adapted in full and guarded (a
    ``speaker_norm`` run's adapted probabilities as it gave them; any other run's balanced)."""
    adapted = balance_speakers(p.proba, p.group) if p.adapted is None else p.adapted
    guarded = guard_speakers(p.proba, adapted, p.group, guard)
    return {
        c: {
            "per_utterance": ua(p, p.proba, c),
            "adapted": ua(p, adapted, c),
            "guarded": ua(p, guarded, c),
        }
        for c in p.corpora()
    }


def both_tests(p: Predictions, guard: AdaptationGuard, draws: int = DRAWS) -> dict[str, dict]:
    """:func:`scores` on all the clips (``all``) and on the one-emotion tests (``one_emotion``:
    the first draw, the one ``emovox evaluate`` reports; ``one_emotion_draws``: every draw)."""
    full = scores(p, guard)
    single = [scores(p.one_emotion_test(d), guard) for d in range(draws)]
    return {
        c: {
            "all": full[c],
            "one_emotion": single[0].get(c, {}),
            "one_emotion_draws": [s.get(c, {}) for s in single],
        }
        for c in p.corpora()
    }


def candidates(lows: Sequence[float] = LOWS) -> list[AdaptationGuard]:
    return [
        AdaptationGuard(low=lo, high=round(lo + w, 4), prior=pr)
        for lo in lows
        for w in WIDTHS
        for pr in PRIORS
    ]


def choose(table: dict[AdaptationGuard, dict], corpora: Sequence[str]) -> dict:
    """The guard with the largest mean gain on ``corpora`` among those losing at most
    :data:`SAFETY` points on each of their one-emotion tests, every draw (ties: the more
    cautious: higher ``low``, ``high``, ``prior``). ``None`` when none is safe (then adapt
    nothing)."""
    best = None
    for guard, per in table.items():
        gains, safe = [], []
        for c in corpora:
            a = per[c]["all"]
            if a.get("per_utterance") is None:
                continue
            gains.append(a["guarded"] - a["per_utterance"])
            for o in per[c]["one_emotion_draws"]:
                if o.get("per_utterance") is not None:
                    safe.append(o["guarded"] - o["per_utterance"])
        if not gains or (safe and min(safe) < -SAFETY):
            continue
        key = (float(np.mean(gains)), guard.low, guard.high, guard.prior)
        if best is None or key > best[0]:
            best = (key, guard, min(safe) if safe else None)
    if best is None:
        return {"guard": None}
    return {
        "guard": _guard_dict(best[1]),
        "mean_gain": round(best[0][0], 2),
        "worst_one_emotion_change": None if best[2] is None else round(best[2], 2),
    }


def _guard_dict(g: AdaptationGuard) -> dict:
    return dataclasses.asdict(g)


def chosen_guard(choice: dict) -> AdaptationGuard:
    """The guard :func:`choose` chose, or one that never adapts when none was safe."""
    if choice["guard"] is None:
        return AdaptationGuard(min_utterances=sys.maxsize)
    return AdaptationGuard(**choice["guard"])


def held_out_scores(p: Predictions, choice: dict) -> dict:
    """``p`` scored with the chosen guard (no adaptation when none was safe)."""
    return {"chosen": choice, "scores": both_tests(p, chosen_guard(choice))}


def _mean(rows: list[dict], test: str, key: str) -> float | None:
    vals = [r[test][key] for r in rows if r[test].get(key) is not None]
    return round(float(np.mean(vals)), 2) if vals else None


def summary(per_corpus: dict[str, dict]) -> dict:
    rows = [v["scores"][c] for c, v in per_corpus.items()]
    keys = ("per_utterance", "adapted", "guarded")
    return {t: {k: _mean(rows, t, k) for k in keys} for t in ("all", "one_emotion")}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nested", type=Path, help="a loco-pairs results folder")
    ap.add_argument("--loco", type=Path, required=True, help="a loco results folder")
    ap.add_argument("--extra", type=Path, action="append", default=[], help="more runs to score")
    ap.add_argument(
        "--speaker-norm",
        action="store_true",
        help="the runs are of a speaker_norm model: adapted with feature statistics (their "
        "adapted_p_* columns; the one-emotion tests adapted again by the saved fold models)",
    )
    ap.add_argument("--cache-dir", type=Path, help="feature cache of --speaker-norm's model runs")
    ap.add_argument("--out", type=Path, default=RESULTS / "adapt_guard.json")
    args = ap.parse_args(argv)

    def read(run: Path) -> Predictions:
        p = Predictions.read(run, speaker_norm=args.speaker_norm)
        return adapt_one_emotion_tests(p, run, DRAWS, args.cache_dir) if args.speaker_norm else p

    loco = read(args.loco)
    nested = read(args.nested) if args.nested else loco
    lows = SPEAKER_NORM_LOWS if args.speaker_norm else LOWS
    table = {g: both_tests(nested, g) for g in candidates(lows)}
    per_corpus = {}
    for c in loco.corpora():
        others = [x for x in nested.corpora() if x != c]
        one = loco.subset([i for i, x in enumerate(loco.corpus) if x == c])
        per_corpus[c] = held_out_scores(one, choose(table, others))
        s = per_corpus[c]["scores"][c]
        print(f"{c}: {json.dumps(s)}  guard {per_corpus[c]['chosen']['guard']}")
    extra = {}
    for run in args.extra:
        p = read(run)
        others = [x for x in nested.corpora() if x not in set(p.corpora())]
        choice = choose(table, others)
        guard = chosen_guard(choice)
        extra[str(run)] = {"chosen": choice, "own_classes": scores(p, guard, own_class_ua)}
        print(f"{run}: {json.dumps(extra[str(run)])}")
    where = "nested" if args.nested else "LOCO (each scored by a model that never heard it)"
    out = {
        "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
        "nested": str(args.nested) if args.nested else None,
        "loco": str(args.loco),
        "adaptation": "speaker_norm (feature statistics)" if args.speaker_norm else "balance",
        "selection": f"largest mean 4-class gain on the other corpora's {where} clips among "
        f"guards losing at most {SAFETY} points on each of {DRAWS} one-emotion tests per corpus",
        "overall": choose(table, nested.corpora()),
        "loco_per_corpus": per_corpus,
        "loco_mean": summary(per_corpus),
        "extra": extra,
        "nested_candidates": [
            {"guard": _guard_dict(g), "scores": per} for g, per in table.items()
        ],
    }
    atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print("mean over the left-out corpora:", json.dumps(out["loco_mean"]))
    print("overall guard:", json.dumps(out["overall"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
