"""Does redrawing clipped runs keep a clip's label when it is recorded too loud?

For every finished fold of an ``emovox evaluate`` results folder (its saved ``fold_N/model`` and
``fold_N/predictions.csv``): each test file is read, scaled by each gain and clipped to [-1, 1]
(as a recording that hits full scale), and predicted by the fold's model twice: as trained, and
with the feature's ``declip`` on (:mod:`emovox.features.declip`, no retraining; ``--method``
picks how it redraws the runs, the spline by default). Reported per
test corpus and gain: the share of files whose label equals their label at the recorded level
(each front end against itself), the UA, and how many files of the recorded level declip
changes at all (clean files must keep their label: ``unchanged_at_0db``). Results are written
after every fold; a rerun skips the folds already in ``--out`` (resumable).

With ``--anatomy`` the model as trained also hears the two halves of what clipping does, apart
(the question being which half moves the label): ``compressed``, the loud waveform unclipped
but with the clipped one's loudness contour (each 10-ms frame scaled to the clipped frame's
RMS: the flattened dynamics without the distortion), and ``distorted``, the clipped waveform
with each frame scaled back to the unclipped frame's RMS (the distortion without the
flattening).

    python benchmarks/declip_folds.py --run benchmarks/results/loco-cnn-augment-dims-cb-rows-clip \\
        [--gains=10,20] [--limit N] [--method spline|sparse] [--anatomy] [--out FILE]
        (negative gains: --gains=-10,10; the default --out names the method unless spline)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from int8_folds import measure_folds, resumed_result, with_threads

from emovox.features.declip import METHODS
from emovox.inference.recognizer import Recognizer
from emovox.metrics import unweighted_accuracy

RESULTS = Path(__file__).resolve().parent / "results"
FRAME_SECONDS = 0.01
"""The frames over which ``--anatomy`` matches loudness."""
KINDS = ("plain", "declip", "compressed", "distorted")


def frame_rms(x: np.ndarray, frame: int) -> np.ndarray:
    """RMS of each whole ``frame``-sample frame of ``x``."""
    n = len(x) // frame * frame
    return np.sqrt(np.mean(x[:n].reshape(-1, frame) ** 2, axis=1) + 1e-12)


def with_loudness_of(x: np.ndarray, y: np.ndarray, frame: int) -> np.ndarray:
    """``x`` with each whole frame scaled to the RMS of the same frame of ``y``."""
    gain = frame_rms(y, frame) / frame_rms(x, frame)
    out = x.astype(np.float32).copy()
    out[: len(gain) * frame] *= np.repeat(gain, frame).astype(np.float32)
    return out


def labels_of(rec: Recognizer, waves: list[np.ndarray], names: list[str]) -> np.ndarray:
    return np.array([p.label for p in rec.predict_waveforms(waves, names)])


def ua(rec: Recognizer, truth: list[str], pred: np.ndarray) -> float:
    index = {c: i for i, c in enumerate(rec.labels)}
    keep = [i for i, t in enumerate(truth) if t in index]
    y = np.array([index[truth[i]] for i in keep])
    p = np.array([index[pred[i]] for i in keep])
    return 100 * unweighted_accuracy(y, p, len(rec.labels))


def measure_fold(
    model: Path,
    rows: list[dict],
    gains: list[float],
    anatomy: bool = False,
    method: str = "spline",
) -> dict:
    """Labels and UA of one fold's test files at each gain, with and without declipping by
    ``method`` (and with ``anatomy``, of the compressed and the distorted halves of clipping)."""
    plain = Recognizer.load(model)
    fixed = Recognizer.load(model)
    fixed.feature = dataclasses.replace(fixed.feature, declip=True, declip_method=method)
    names = [r["path"] for r in rows]
    waves = [plain.feature.load(n) for n in names]
    corpora = np.array([r.get("corpus", "") for r in rows])
    truth = [r["label"] for r in rows]
    base = {"plain": labels_of(plain, waves, names), "declip": labels_of(fixed, waves, names)}
    out: dict = {"test_files": len(rows), "corpora": {}}
    for corpus in sorted(set(corpora)):
        sel = np.flatnonzero(corpora == corpus)
        out["corpora"][corpus] = {
            "files": len(sel),
            "unchanged_at_0db": round(
                100 * float(np.mean(base["plain"][sel] == base["declip"][sel])), 2
            ),
            "gains": {},
        }
    frame = int(FRAME_SECONDS * plain.sample_rate)
    for g in gains:
        factor = 10 ** (g / 20)
        loud = [np.clip(w * factor, -1.0, 1.0).astype(np.float32) for w in waves]
        clipped = np.array([np.count_nonzero(np.abs(w * factor) > 1.0) > 0 for w in waves])
        got = {"plain": labels_of(plain, loud, names), "declip": labels_of(fixed, loud, names)}
        if anatomy:
            scaled = [w * factor for w in waves]
            pairs = list(zip(scaled, loud, strict=True))
            halves = {
                "compressed": [with_loudness_of(s, c, frame) for s, c in pairs],
                "distorted": [with_loudness_of(c, s, frame) for s, c in pairs],
            }
            got.update({k: labels_of(plain, v, names) for k, v in halves.items()})
        for corpus, entry in out["corpora"].items():
            sel = np.flatnonzero(corpora == corpus)
            t = [truth[i] for i in sel]
            entry["gains"][f"{g:+g}"] = {
                "files_clipped": int(clipped[sel].sum()),
                **{
                    f"agreement_{k}": round(
                        100 * float(np.mean(got[k][sel] == base.get(k, base["plain"])[sel])), 2
                    )
                    for k in got
                },
                **{f"ua_{k}": round(ua(plain, t, got[k][sel]), 2) for k in got},
            }
    return out


def summarise(result: dict, gains: list[float]) -> None:
    """The mean over the test corpora so far, per gain, in place."""
    entries = [c for f in result["folds"] for c in f["corpora"].values()]
    mean: dict = {"corpora": len(entries)}
    if entries:
        same = [e["unchanged_at_0db"] for e in entries]
        mean["unchanged_at_0db"] = round(float(np.mean(same)), 2)
    for g in (f"{g:+g}" for g in gains):
        rows = [e["gains"][g] for e in entries if g in e["gains"]]
        if rows:
            keys = [f"{m}_{k}" for m in ("agreement", "ua") for k in KINDS if f"{m}_{k}" in rows[0]]
            mean[g] = {k: round(float(np.mean([r[k] for r in rows])), 2) for k in keys}
    result["mean"] = mean


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="An `emovox evaluate --out` folder.")
    ap.add_argument("--gains", default="10,20", help="dB above the recorded level, comma list.")
    ap.add_argument("--limit", type=int, default=0, help="At most this many files per fold.")
    ap.add_argument(
        "--anatomy", action="store_true", help="Also the compressed and distorted halves."
    )
    ap.add_argument(
        "--method", choices=METHODS, default="spline", help="How declip redraws clipped runs."
    )
    ap.add_argument(
        "--out", help="JSON to write (default: results/declip_folds_<run>[_<method>].json)."
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1).")
    args = ap.parse_args(argv)
    return with_threads(args.threads, _main, args, argv)


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    run = Path(args.run)
    gains = [float(g) for g in args.gains.split(",")]
    suffix = "" if args.method == "spline" else f"_{args.method}"
    out = Path(args.out or RESULTS / f"declip_folds_{run.name}{suffix}.json")
    start = resumed_result("declip_folds.py", run, out, argv)
    if start is None:
        return 2
    rows, result, have = start
    result["declip_method"] = args.method

    def lines(row: dict) -> list[str]:
        return [
            f"fold {row['fold']} {corpus}: "
            + ", ".join(
                f"{g} dB kept {v['agreement_plain']:.1f} -> {v['agreement_declip']:.1f} %"
                for g, v in entry["gains"].items()
            )
            + f"; at 0 dB {entry['unchanged_at_0db']:.1f} % same"
            for corpus, entry in row["corpora"].items()
        ]

    measure_folds(
        rows, have, result, out, args.limit,
        lambda fold, test: measure_fold(
            run / f"fold_{fold}" / "model", test, gains, args.anatomy, args.method
        ),
        lambda r: summarise(r, gains),
        lines,
    )  # fmt: skip
    return 0

if __name__ == "__main__":
    sys.exit(main())
