"""Training time per epoch on one process and on several (DistributedDataParallel), one run.

For each setting the same ``emovox train`` command runs in a fresh process group and its
``training_curves.csv`` gives the seconds of every epoch (training and validation; features come
from the cache, filled by a first run that is not measured):

- ``1 process, T threads`` for each ``T`` of ``--threads`` (what a user gets without DDP);
- ``N processes, 1 thread each`` for each ``N`` of ``--nproc`` (``emovox train --nproc N``:
  torchrun, gloo on CPU; each process takes ``1/N`` of every epoch, so the step count per epoch
  falls by ``N`` and the effective batch grows by ``N``).

Reported per setting: the median seconds per epoch (the first epoch left out: start-up), the
speed-up over ``1 process, 1 thread`` and the best validation UA (the runs must still learn).
Writes ``benchmarks/results/ddp_epoch.json`` with the machine and the command.

    python benchmarks/ddp_epoch.py --data ../shared/data/ravdess [--epochs 4] [--nproc 2] \\
        [--threads 1,2] [--cache-dir DIR] [--out benchmarks/results/ddp_epoch.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emovox._fs import atomic_write_text
from emovox.evaluate.machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results" / "ddp_epoch.json"


def train_command(args: argparse.Namespace, out: Path, epochs: int, nproc: int) -> list[str]:
    cmd = [sys.executable, "-m", "emovox", "train", "--corpus", args.corpus, "--data", args.data]
    cmd += ["--arch", args.arch, "--epochs", str(epochs), "--quiet", "--out", str(out)]
    cmd += ["--cache-dir", args.cache_dir]
    for p in args.train_param:
        cmd += ["--train-param", p]
    for p in args.param:
        cmd += ["--param", p]
    if args.labels:
        cmd += ["--labels", args.labels]
    return cmd + (["--nproc", str(nproc)] if nproc > 1 else [])


def epoch_seconds(out: Path) -> tuple[list[float], float | None]:
    """The seconds of every epoch and the best validation UA, from ``training_curves.csv``."""
    rows = list(csv.DictReader((out / "training_curves.csv").open()))
    val = [float(r["val_ua"]) for r in rows if r.get("val_ua")]
    return [float(r["seconds"]) for r in rows], (max(val) if val else None)


def run(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "EMOVOX_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="Corpus folder.")
    ap.add_argument("--corpus", default="ravdess", help="Corpus recipe (default ravdess).")
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--nproc", default="2", help="Process counts to measure (comma-separated).")
    ap.add_argument("--threads", default="1,2", help="Threads of the one-process runs.")
    ap.add_argument("--train-param", action="append", default=[], help="Passed to train.")
    ap.add_argument("--param", action="append", default=[], help="Model parameter, to train.")
    ap.add_argument("--labels", help="Passed to train (default: the corpus's emotions).")
    ap.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "emovox-ddp-cache"))
    ap.add_argument("--out", default=str(RESULTS), help="JSON to write.")
    args = ap.parse_args(argv)
    settings = [(1, int(t)) for t in args.threads.split(",")]
    settings += [(int(n), 1) for n in args.nproc.split(",") if int(n) > 1]
    rows = []
    with tempfile.TemporaryDirectory(prefix="emovox-ddp-") as tmp:
        run(train_command(args, Path(tmp) / "warm", 1, 1), 2)  # fills the feature cache
        for nproc, threads in settings:
            out = Path(tmp) / f"p{nproc}-t{threads}"
            wall = run(train_command(args, out, args.epochs, nproc), threads)
            secs, val = epoch_seconds(out)
            steady = secs[1:] or secs
            rows.append(
                {
                    "setting": f"{nproc} process{'es' if nproc > 1 else ''}, "
                    f"{threads} thread{'s' if threads > 1 else ''}"
                    + (" each" if nproc > 1 else ""),
                    "processes": nproc,
                    "threads_per_process": threads,
                    "epoch_seconds": [round(s, 2) for s in secs],
                    "median_epoch_s": round(statistics.median(steady), 2),
                    "best_val_ua": None if val is None else round(val, 1),
                    "wall_s": round(wall, 1),
                }
            )
            print(f"{rows[-1]['setting']:28s} {rows[-1]['median_epoch_s']:7.2f} s/epoch")
    ref = next((r for r in rows if r["processes"] == 1 and r["threads_per_process"] == 1), rows[0])
    for r in rows:
        r["speedup_over_1x1"] = round(ref["median_epoch_s"] / r["median_epoch_s"], 2)
    result = {
        "command": " ".join(["python", "benchmarks/ddp_epoch.py", *argv]),
        "train": " ".join(train_command(args, Path("OUT"), args.epochs, 1)[1:]),
        "runs": rows,
        "machine": machine_info(),
        "notes": [
            "median_epoch_s: the median over the epochs after the first (training + validation)",
            "N processes: torchrun + DistributedDataParallel (gloo); each process trains on 1/N "
            "of every epoch with the same per-process batch, gradients averaged",
        ],
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
