"""Choose among recipes fold by fold on validation speakers, and report the chosen test scores.

Several ``emovox evaluate`` runs of the same protocol and folds that differ in one setting (a
corpus weight, a layer, ...) are candidates. In each fold the candidate with the highest
validation UA wins: the UA of the fold's validation speakers at its best epoch, all of them
pooled, or with ``--corpus`` only those of one corpus (``best_val_ua_by_corpus``, recorded when
the validation speakers come from several corpora). The validation speakers are drawn from the
fold's training side, so the test speakers never take part in the choice; only the winner's
test scores are reported, as one honest number for "the setting chosen on validation".

Reads each run's ``fold_N/metrics.json``, or the fused model of a ``functionals_fusion.py``
result given as a file (its ``C`` and share were chosen on the same validation speakers); a fold
missing from any candidate is left out (and named). Writes
``benchmarks/results/choose_<name>.json``:

    python benchmarks/choose_on_validation.py --run results/A --run results/B \\
        [--corpus ravdess] --out benchmarks/results/choose_A_B.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from emovox._fs import atomic_write_text

SCORES = ("ua", "wa", "macro_f1")


def fold_rows(run: Path) -> dict[int, dict]:
    """Each finished fold's ``metrics.json`` of ``run``, by fold number; or, when ``run`` is the
    JSON that ``functionals_fusion.py`` wrote, each of its folds as the fused model scores it."""
    if run.is_file():
        return fusion_rows(run)
    out = {}
    for path in sorted(run.glob("fold_*/metrics.json")):
        row = json.loads(path.read_text())
        out[int(row["fold"])] = row
    return out


def fusion_rows(path: Path) -> dict[int, dict]:
    """The fused model of a ``functionals_fusion.py`` result as fold rows: its test UA, and its
    validation UA on the speakers that chose its ``C`` and share (those of the fold's
    ``validation_corpus`` when it names one, so only that corpus's UA is known then)."""
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    folds = result.get("folds") if isinstance(result, dict) else None
    if not isinstance(folds, list) or not all("test_ua" in f for f in folds):
        raise ValueError(f"{path}: not a results folder nor a functionals_fusion.py result")
    out = {}
    for fold in folds:
        val = fold["validation_ua"]["fused"]
        corpus = fold.get("validation_corpus")
        row = {"fold": int(fold["fold"]), "ua": fold["test_ua"]["fused"]}
        if corpus:
            row["best_val_ua_by_corpus"] = {corpus: val}
        else:
            row["best_val_ua"] = val
        out[row["fold"]] = row
    return out


def validation_ua(row: dict, corpus: str | None) -> float | None:
    """The fold's validation UA (%) at its best epoch: pooled, or ``corpus``'s alone."""
    if corpus is None:
        return row.get("best_val_ua")
    by_corpus = {k.lower(): v for k, v in (row.get("best_val_ua_by_corpus") or {}).items()}
    return by_corpus.get(corpus.lower())


def choose(runs: dict[str, dict[int, dict]], corpus: str | None = None) -> dict:
    """Per fold the candidate with the highest validation UA (ties: the first given), and the
    mean and standard deviation of the winners' test scores over the folds every candidate has.

    Raises:
        ValueError: fewer than two candidates, no fold common to all, or a fold without the
            validation UA asked for (run and fold named).
    """
    if len(runs) < 2:
        raise ValueError("give two or more runs to choose among")
    common = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not common:
        raise ValueError("the runs have no finished fold in common")
    folds = []
    for k in common:
        vals = {}
        for name, rows in runs.items():
            v = validation_ua(rows[k], corpus)
            if v is None:
                what = f"{corpus}'s validation UA" if corpus else "pooled validation UA"
                raise ValueError(f"{name} fold {k} has no {what}")
            vals[name] = float(v)
        winner = max(vals, key=lambda n: vals[n])  # the first of equal ones
        chosen = runs[winner][k]
        folds.append(
            {
                "fold": k,
                "validation_ua": vals,
                "chosen": winner,
                **{s: chosen.get(s) for s in SCORES},
                "candidates_ua": {n: rows[k].get("ua") for n, rows in runs.items()},
            }
        )
    summary = {}
    for s in SCORES:
        values = [f[s] for f in folds if f[s] is not None]
        if values:
            summary[s] = float(np.mean(values))
            summary[f"{s}_std"] = float(np.std(values))
    return {
        "corpus": corpus,
        "runs": list(runs),
        "folds": folds,
        "left_out_folds": sorted(set().union(*(set(r) for r in runs.values())) - set(common)),
        **summary,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--run",
        action="append",
        required=True,
        type=Path,
        help="a results folder, or a functionals_fusion.py result (JSON)",
    )
    ap.add_argument("--corpus", help="choose on this corpus's validation speakers alone")
    ap.add_argument("--out", required=True, type=Path, help="the JSON to write")
    args = ap.parse_args(argv)
    try:
        runs = {str(r): fold_rows(r) for r in args.run}
        result = choose(runs, args.corpus)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result["command"] = ["python", "benchmarks/choose_on_validation.py", *(argv or sys.argv[1:])]
    atomic_write_text(args.out, json.dumps(result, indent=2))
    for f in result["folds"]:
        vals = ", ".join(f"{Path(n).name} {v:.1f}" for n, v in f["validation_ua"].items())
        print(f"fold {f['fold']}: validation {vals} -> {Path(f['chosen']).name}: UA {f['ua']:.2f}")
    print(f"chosen on validation: UA {result['ua']:.2f} ± {result['ua_std']:.2f}")
    if result["left_out_folds"]:
        print(f"left out (not finished by every run): {result['left_out_folds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
