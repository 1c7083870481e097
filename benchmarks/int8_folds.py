"""int8 against float32 on the test folds of an evaluation: does quantisation keep accuracy?

For every finished fold of an ``emovox evaluate`` results folder (its saved ``fold_N/model`` and
``fold_N/predictions.csv``), in one run:

- ``float``: the fold's model, torch backend, on the fold's test files (each clip alone);
- ``int8``: the same model exported with ``emovox export --quantize int8`` (onnxruntime's static
  quantisation), calibrated on ``--calibration`` files of the fold's *training* side (test files
  of the other folds, every k-th), never on its test files.

Reported per fold and as the mean over the folds: UA of both, the drop (float - int8, points),
label agreement, and the UA the evaluation itself recorded for the fold (the float run must
reproduce it). Results are written after every fold; a rerun skips the folds already in
``--out`` (resumable). Writes ``benchmarks/results/int8_folds_<run>.json``.

    python benchmarks/int8_folds.py --run benchmarks/results/loco-cnn-augment-dims \\
        [--calibration 64] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from emovox._fs import atomic_write_text
from emovox.evaluate.machine import machine_info
from emovox.inference.onnx_backend import export_onnx
from emovox.inference.recognizer import Recognizer
from emovox.metrics import unweighted_accuracy

RESULTS = Path(__file__).resolve().parent / "results"


def fold_rows(run: Path) -> dict[int, list[dict]]:
    """Each finished fold's test rows (``fold_N/predictions.csv``), by fold number."""
    out = {}
    for folder in sorted(run.glob("fold_*")):
        pred, model = folder / "predictions.csv", folder / "model"
        if pred.is_file() and (model / "model.safetensors").is_file():
            out[int(folder.name.split("_")[1])] = list(csv.DictReader(pred.open()))
    return out


def calibration_files(rows: dict[int, list[dict]], fold: int, n: int) -> list[str]:
    """``n`` files of the other folds' test sets (the training side of ``fold``), evenly spaced."""
    pool = [r["path"] for k, rs in sorted(rows.items()) if k != fold for r in rs]
    if not pool:
        return []
    step = max(1, len(pool) // n)
    return pool[::step][:n]


def ua_of(rec: Recognizer, rows: list[dict]) -> tuple[float, list[str | None]]:
    preds = rec.predict_batch([r["path"] for r in rows])
    labels = [p.label for p in preds]
    index = {c: i for i, c in enumerate(rec.labels)}
    keep = [i for i, p in enumerate(labels) if p is not None and rows[i]["label"] in index]
    truth = np.array([index[rows[i]["label"]] for i in keep])
    guess = np.array([index[labels[i]] for i in keep])
    return 100 * unweighted_accuracy(truth, guess, len(rec.labels)), labels


def measure_fold(run: Path, fold: int, rows: dict[int, list[dict]], n_cal: int, tmp: Path) -> dict:
    model = run / f"fold_{fold}" / "model"
    test = rows[fold]
    cal = calibration_files(rows, fold, n_cal)
    ua_f, lab_f = ua_of(Recognizer.load(model), test)
    int8 = export_onnx(model, tmp / f"fold{fold}.int8.onnx", quantize="int8", calibrate=cal)
    ua_q, lab_q = ua_of(Recognizer.load(model, backend="onnx", onnx_path=int8), test)
    recorded = np.mean([r["label"] == r["predicted"] for r in test])  # WA, a cross-check
    same = np.mean([a == b for a, b in zip(lab_f, lab_q, strict=True)])
    pairs = list(zip(test, lab_f, strict=True))
    return {
        "fold": fold,
        "test_files": len(test),
        "test_corpora": sorted({r.get("corpus", "") for r in test}),
        "calibration_files": len(cal),
        "ua_float": round(ua_f, 2),
        "ua_int8": round(ua_q, 2),
        "drop": round(ua_f - ua_q, 2),
        "label_agreement": round(100 * float(same), 2),
        "recorded_wa": round(100 * float(recorded), 2),
        "float_wa": round(100 * float(np.mean([r["label"] == p for r, p in pairs])), 2),
        "int8_bytes": int8.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="An `emovox evaluate --out` folder.")
    ap.add_argument("--calibration", type=int, default=64, help="Calibration files per fold.")
    ap.add_argument("--out", help="JSON to write (default: results/int8_folds_<run>.json).")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1).")
    args = ap.parse_args(argv)
    return with_threads(args.threads, _main, args, argv)


def with_threads(threads: int, fn, *args):
    """``fn(*args)`` with torch on ``threads`` threads; the caller's count put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)  # the caller's (a test process) put back


def resumed_result(
    script: str, run: Path, out: Path, argv: list[str]
) -> tuple[dict[int, list[dict]], dict, set[int]] | None:
    """Where a per-fold benchmark of ``run`` starts: each finished fold's test rows
    (:func:`fold_rows`), the result so far (the folds already in ``out``, which a rerun skips,
    with the command, the run and the machine) and the numbers of those folds; ``None``, said
    on stderr, when ``run`` has no finished fold with a saved model."""
    rows = fold_rows(run)
    if not rows:
        print(f"{run}: no finished fold with a saved model", file=sys.stderr)
        return None
    done = json.loads(out.read_text())["folds"] if out.is_file() else []
    result = {
        "command": " ".join(["python", f"benchmarks/{script}", *argv]),
        "run": run.as_posix(),
        "machine": machine_info(),
        "folds": done,
    }
    return rows, result, {f["fold"] for f in done}


def measure_folds(
    rows: dict[int, list[dict]],
    have: set[int],
    result: dict,
    out: Path,
    limit: int,
    measure: Callable[[int, list[dict]], dict],
    summarise: Callable[[dict], None],
    lines: Callable[[dict], list[str]],
) -> None:
    """The per-fold loop of a resumable benchmark: every fold of ``rows`` not in ``have`` that
    has labelled test rows (a dimensions-only fold has none) is measured on them (at most
    ``limit``, spread evenly; 0: all) by ``measure(fold, test)``, added to ``result["folds"]``,
    summarised and written to ``out`` at once (atomically), and its ``lines`` printed; at the
    end ``result`` is summarised and written once more."""
    for fold in sorted(rows):
        test = [r for r in rows[fold] if r["label"]]
        if fold in have or not test:
            continue
        if limit and len(test) > limit:
            test = test[:: len(test) // limit][:limit]
        row = {"fold": fold, **measure(fold, test)}
        result["folds"] = sorted([*result["folds"], row], key=lambda f: f["fold"])
        summarise(result)
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
        for line in lines(row):
            print(line)
    summarise(result)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    run = Path(args.run)
    out = Path(args.out or RESULTS / f"int8_folds_{run.name}.json")
    start = resumed_result("int8_folds.py", run, out, argv)
    if start is None:
        return 2
    rows, result, have = start
    with tempfile.TemporaryDirectory(prefix="emovox-int8-") as tmp:
        for fold in sorted(rows):
            if fold in have or not any(r["label"] for r in rows[fold]):
                continue  # done, or a dimensions-only fold (no class to score; calibrates others)
            row = measure_fold(run, fold, rows, args.calibration, Path(tmp))
            result["folds"] = sorted([*result["folds"], row], key=lambda f: f["fold"])
            summarise(result)
            atomic_write_text(out, json.dumps(result, indent=2) + "\n")
            print(
                f"fold {fold}: UA float {row['ua_float']:.2f}, int8 {row['ua_int8']:.2f} "
                f"(drop {row['drop']:+.2f}), labels kept {row['label_agreement']:.1f} %"
            )
    summarise(result)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    m = result["mean"]
    print(f"mean over {m['folds']} folds: drop {m['drop']:+.2f} points; wrote {out}")
    return 0


def summarise(result: dict) -> None:
    """The mean over the folds so far, in place."""
    folds = result["folds"]
    result["mean"] = {
        "folds": len(folds),
        **{
            k: round(float(np.mean([f[k] for f in folds])), 2)
            for k in ("ua_float", "ua_int8", "drop", "label_agreement")
        },
    }


if __name__ == "__main__":
    sys.exit(main())
