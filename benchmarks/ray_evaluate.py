"""An evaluation's folds as Ray tasks against the sequential run, in one run, same command.

Runs ``emovox evaluate`` twice on the same folds, in fresh processes, into temporary folders:

- ``sequential-T``: the folds one after another, torch on ``T`` threads, for each ``T`` of
  ``--threads`` (1: the arithmetic of a Ray fold task, 2: the fastest local run here);
- ``ray-N``: ``--engine ray``, the local Ray that ``emovox evaluate`` starts on all ``N`` CPUs
  of the machine, one fold task per CPU (``--cpus-per-fold 1``: one torch thread each).

Reported: the wall seconds of each (Ray's start-up included), the speed-up over each sequential
run, and whether Ray's ``metrics.json`` agrees fold for fold (the per-fold UA, and the headline
UA/WA/macro-F1) with the sequential run on one thread. torch's reductions depend on its thread
count, so a run on 2 threads trains slightly different weights: only equal thread counts can
give equal numbers. Writes
``benchmarks/results/ray_evaluate.json`` with the machine and the command.

    python benchmarks/ray_evaluate.py --data ../shared/data/ravdess [--epochs 10] \\
        [--threads 1,2] [-- extra evaluate options]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emovox._fs import atomic_write_text
from emovox.evaluate.machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results" / "ray_evaluate.json"


def evaluate(cmd: list[str], threads: int) -> tuple[float, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    out = Path(cmd[cmd.index("--out") + 1])
    return wall, json.loads((out / "metrics.json").read_text())


def same_folds(a: dict, b: dict, tol: float = 1e-6) -> bool:
    """Whether two ``metrics.json`` have the same per-fold UA and the same headline numbers."""
    fa = [f["ua"] for f in a["folds"]]
    fb = [f["ua"] for f in b["folds"]]
    if len(fa) != len(fb) or any(abs(x - y) > tol for x, y in zip(fa, fb, strict=True)):
        return False
    return all(abs(a[k] - b[k]) <= tol for k in ("ua", "wa", "macro_f1"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="RAVDESS folder (or --corpus's).")
    ap.add_argument("--corpus", default="ravdess")
    ap.add_argument("--protocol", default="emobox")
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", default="1,2", help="torch threads of the sequential runs.")
    ap.add_argument("--out", default=str(RESULTS), help="JSON to write.")
    ap.add_argument("extra", nargs="*", help="More `emovox evaluate` options (after --).")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="emovox-ray-eval-") as tmp:
        base = [sys.executable, "-m", "emovox", "evaluate", "--corpus", args.corpus]
        base += ["--data", args.data, "--protocol", args.protocol, "--arch", args.arch]
        base += [
            "--epochs",
            str(args.epochs),
            "--quiet",
            "--cache-dir",
            f"{tmp}/cache",
            *args.extra,
        ]
        threads = [int(t) for t in args.threads.split(",")]
        evaluate([*base, "--folds", "1", "--epochs", "1", "--out", f"{tmp}/warm"], max(threads))
        rows, runs = [], {}
        for t in threads:
            wall, runs[t] = evaluate([*base, "--out", f"{tmp}/seq{t}"], t)
            rows.append({"engine": f"sequential-{t}", "threads": t, "wall_s": round(wall, 1)})
        ray_cmd = [*base, "--engine", "ray", "--cpus-per-fold", "1", "--out", f"{tmp}/ray"]
        ray_wall, ray = evaluate(ray_cmd, 1)
    rows.append(
        {"engine": f"ray-{os.cpu_count()}", "cpus_per_fold": 1, "wall_s": round(ray_wall, 1)}
    )
    for r in rows:
        for s in rows[: len(threads)]:
            r[f"speedup_over_{s['engine']}"] = round(s["wall_s"] / r["wall_s"], 2)
    seq = runs.get(1, runs[threads[0]])
    result = {
        "command": " ".join(["python", "benchmarks/ray_evaluate.py", *argv]),
        "evaluate": " ".join(["emovox", *base[3:]]),
        "folds": len(seq["folds"]),
        "runs": rows,
        "same_metrics_fold_for_fold": same_folds(seq, ray),
        "compared_with": f"sequential-{1 if 1 in runs else threads[0]}",
        "per_fold_ua": {
            **{f"sequential-{t}": [round(f["ua"], 2) for f in m["folds"]] for t, m in runs.items()},
            "ray": [round(f["ua"], 2) for f in ray["folds"]],
        },
        "ua": {
            **{f"sequential-{t}": round(m["ua"], 2) for t, m in runs.items()},
            "ray": round(ray["ua"], 2),
        },
        "machine": machine_info(),
        "notes": [
            "features cached by a first one-fold, one-epoch run that is not measured",
            "wall_s: the whole `emovox evaluate` process (Ray's start-up included for ray)",
        ],
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for r in rows:
        print(f"{r['engine']:14s} {r['wall_s']:8.1f} s")
    print(f"same metrics fold for fold: {result['same_metrics_fold_for_fold']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
