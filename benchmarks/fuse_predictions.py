"""The fold scores of a fused model, from the saved test predictions of its members' runs.

``emovox fuse`` averages the probabilities of several models; on a protocol's folds that is the
mean, clip by clip, of the members' ``fold_N/predictions.csv`` (each run of the same protocol,
folds and clips), with weights fixed before any run. A member may also be a
``choose_on_validation.py`` result: in each fold, the run it chose on that fold's validation
speakers. No choice is made here, so the fused scores are as honest as their members'.

Writes, per fold and as mean ± std over the folds, UA, WA and macro-F1 on every class (and the
pooled UA), with the command and the machine::

    python benchmarks/fuse_predictions.py --run benchmarks/results/A \\
        --run benchmarks/results/choose_B.json [--weight 1 --weight 1] --out results/X.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox._fs import atomic_write_text
from emovox.evaluate.results import read_predictions
from emovox.evaluate.runner import machine_info
from emovox.metrics import classification_metrics

ROOT = Path(__file__).resolve().parents[1]


def member_runs(spec: str, folds: Sequence[int] | None = None) -> dict[int, Path]:
    """The run folder of each fold for a member: an ``emovox evaluate --out`` folder (every fold
    it finished), or a ``choose_on_validation.py`` JSON (the run chosen in each fold)."""
    path = Path(spec)
    if path.is_file():
        chosen = json.loads(path.read_text())["folds"]
        return {int(f["fold"]): _resolve(f["chosen"]) for f in chosen}
    return {
        int(p.parent.name.removeprefix("fold_")): path
        for p in sorted(path.glob("fold_*/predictions.csv"))
    }


def _resolve(run: str) -> Path:
    p = Path(run)
    return p if p.is_absolute() or p.exists() else ROOT / p


def _shown(run: Path) -> str:
    return str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run)


def fold_probabilities(run: Path, fold: int) -> tuple[dict[str, dict], list[str]]:
    """The test rows of one fold of ``run`` by clip, and the classes (its ``p_<class>``)."""
    rows = read_predictions(run / f"fold_{fold}" / "predictions.csv")
    classes = sorted(c[2:] for c in rows[0] if c.startswith("p_")) if rows else []
    return {r["path"]: r for r in rows}, classes


def fuse_fold(members: list[dict[int, Path]], weights: list[float], fold: int) -> dict:
    """Scores of the weighted mean of the members' probabilities on one fold's test clips (those
    every member predicted)."""
    per, classes = zip(*(fold_probabilities(m[fold], fold) for m in members), strict=True)
    if any(c != classes[0] for c in classes):
        raise SystemExit(f"fold {fold}: the members' classes differ: {classes}")
    classes = list(classes[0])
    clips = [p for p in per[0] if all(p in other for other in per[1:])]
    p = sum(
        w * np.array([[float(rows[c][f"p_{k}"]) for k in classes] for c in clips])
        for w, rows in zip(weights, per, strict=True)
    )
    labelled = [i for i, c in enumerate(clips) if per[0][c]["label"] in classes]
    y = [classes.index(per[0][clips[i]]["label"]) for i in labelled]
    pred = np.argmax(p[labelled], axis=1)
    m = classification_metrics(y, pred, classes)
    return {
        "fold": fold,
        "members": [_shown(mm[fold]) for mm in members],
        "n": len(labelled),
        "ua": m["ua"],
        "wa": m["wa"],
        "macro_f1": m["macro_f1"],
        "y": y,
        "pred": pred.tolist(),
        "classes": classes,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, help="A member (repeat).")
    ap.add_argument("--weight", action="append", type=float, help="One per --run (default 1).")
    ap.add_argument("--out", required=True, help="JSON to write.")
    args = ap.parse_args(argv)
    if len(args.run) < 2:
        ap.error("a fusion needs two or more --run")
    weights = args.weight or [1.0] * len(args.run)
    if len(weights) != len(args.run) or any(not w > 0 for w in weights):
        ap.error("give one positive --weight per --run")
    weights = [w / sum(weights) for w in weights]
    members = [member_runs(r) for r in args.run]
    folds = sorted(set(members[0]).intersection(*members[1:]))
    if not folds:
        ap.error("the members share no finished fold")
    rows = [fuse_fold(members, weights, f) for f in folds]
    classes = rows[0]["classes"]
    pooled = classification_metrics(
        [y for r in rows for y in r["y"]], [p for r in rows for p in r["pred"]], classes
    )
    result = {
        "command": ["python", "benchmarks/fuse_predictions.py", *argv],
        "runs": args.run,
        "weights": weights,
        "classes": classes,
        "folds": [{k: v for k, v in r.items() if k not in ("y", "pred", "classes")} for r in rows],
        "machine": machine_info(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    for key in ("ua", "wa", "macro_f1"):
        values = [r[key] for r in rows]
        result[key], result[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
    result["pooled"] = {k: pooled[k] for k in ("ua", "wa", "macro_f1", "n")}
    out = Path(args.out)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    folds_text = ", ".join(f"{r['ua']:.1f}" for r in rows)
    print(f"UA {result['ua']:.2f} ± {result['ua_std']:.2f} (folds {folds_text}); wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
