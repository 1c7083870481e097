"""What cleaning the audio at prediction only does to a model that was not trained with it.

A user with a noisy recording and a model trained on clean speech can switch the clean-up on
when predicting (``emovox predict --denoise wiener``, ``--declip sparse``;
``Recognizer.load(..., denoise=, declip=)``). This measures what that is worth: for every
finished fold of an ``emovox evaluate`` results folder (its saved ``fold_N/model`` and
``fold_N/predictions.csv``), each test file is predicted clean and under each test condition
(the same noise, room or codec as ``emovox evaluate --condition``, file by file:
:func:`emovox.augment.condition_transform`), twice: by the model as trained (``plain``) and with
the clean-up switched on (``cleaned``). Reported per test corpus and condition, for each front
end: the UA, the UA change from its own clean UA, and the share of files whose label equals its
own clean label; and how many clean files the clean-up changes at all. Results are written after
every fold; a rerun skips the folds already in ``--out`` (resumable).

With ``--model DIR`` (``default``: the bundled default model) and ``--data CORPUS:PATH``
instead of ``--run``, one trained model is measured on the files of each corpus given (``--limit``
of each, spread evenly; each corpus a "fold" of the result, resumable the same way). A model that
heard those corpora in training is scored on its own training data there: read the changes and
the labels kept, not the UA.

    python benchmarks/cleanup_folds.py --run benchmarks/results/<run> --denoise wiener \\
        [--declip sparse] [--conditions white:10,speech:10] [--limit N] [--out FILE]
    python benchmarks/cleanup_folds.py --model default --data emodb:../corpora/emodb \\
        [--data ...] --denoise wiener --limit 300 --out FILE
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from declip_folds import labels_of, ua
from int8_folds import measure_folds, resumed_result, with_threads

from emovox.augment import condition_transform, parse_condition
from emovox.data.corpora import scan_corpus
from emovox.evaluate.machine import machine_info
from emovox.features import declip as declip_module
from emovox.features import denoise as denoise_module
from emovox.inference.recognizer import Recognizer

RESULTS = Path(__file__).resolve().parent / "results"
FRONT_ENDS = ("plain", "cleaned")
DEFAULT_CONDITIONS = "white:10,speech:10"


def measure_fold(
    model: Path,
    rows: list[dict],
    conditions: list[str],
    denoise: str | None,
    declip: str | None,
) -> dict:
    """UA, UA change and labels kept of one fold's test files under each condition, by the
    model as trained and with the clean-up on."""
    recs = {"plain": Recognizer.load(model), "cleaned": Recognizer.load(model)}
    recs["cleaned"].feature = recs["cleaned"].feature.cleaned_up(declip, denoise)
    plain = recs["plain"]
    names = [r["path"] for r in rows]
    waves = [plain.feature.load(n) for n in names]
    corpora = np.array([r.get("corpus", "") for r in rows])
    truth = [r["label"] for r in rows]
    clean = {k: labels_of(rec, waves, names) for k, rec in recs.items()}
    out: dict = {"test_files": len(rows), "corpora": {}}
    for corpus in sorted(set(corpora)):
        sel = np.flatnonzero(corpora == corpus)
        t = [truth[i] for i in sel]
        out["corpora"][corpus] = {
            "files": len(sel),
            "unchanged_clean": round(
                100 * float(np.mean(clean["plain"][sel] == clean["cleaned"][sel])), 2
            ),
            "ua_clean": {k: round(ua(plain, t, clean[k][sel]), 2) for k in FRONT_ENDS},
            "conditions": {},
        }
    for name in conditions:
        transform = condition_transform(name)
        changed = [transform(w, plain.sample_rate, n)[0] for w, n in zip(waves, names, strict=True)]
        got = {k: labels_of(rec, changed, names) for k, rec in recs.items()}
        for corpus, entry in out["corpora"].items():
            sel = np.flatnonzero(corpora == corpus)
            t = [truth[i] for i in sel]
            cell: dict = {}
            for k in FRONT_ENDS:
                cell[f"ua_{k}"] = round(ua(plain, t, got[k][sel]), 2)
                cell[f"ua_change_{k}"] = round(cell[f"ua_{k}"] - entry["ua_clean"][k], 2)
                cell[f"agreement_{k}"] = round(
                    100 * float(np.mean(got[k][sel] == clean[k][sel])), 2
                )
            entry["conditions"][name] = cell
    return out


def corpus_rows(labels: list[str], spec: str, limit: int) -> list[dict]:
    """The files of ``CORPUS:PATH`` labelled with one of ``labels`` (at most ``limit``, spread
    evenly over the corpus in manifest order) as prediction rows.

    Raises:
        SystemExit: a malformed spec, or no such file.
    """
    corpus, sep, path = spec.partition(":")
    if not sep or not corpus or not path:
        raise SystemExit(f"--data {spec!r}: give CORPUS:PATH")
    manifest = scan_corpus(corpus, path).filter(lambda u: u.label in labels)
    if not len(manifest):
        raise SystemExit(f"{path}: no file of {corpus} has one of {labels}")
    rows = [{"path": u.path, "label": u.label, "corpus": corpus} for u in manifest]
    return rows[:: len(rows) // limit][:limit] if limit and len(rows) > limit else rows


def summarise(result: dict, conditions: list[str]) -> None:
    """The mean over the test corpora so far, clean and per condition, in place."""
    entries = [c for f in result["folds"] for c in f["corpora"].values()]
    mean: dict = {"corpora": len(entries)}
    if entries:
        mean["unchanged_clean"] = round(float(np.mean([e["unchanged_clean"] for e in entries])), 2)
        mean["ua_clean"] = {
            k: round(float(np.mean([e["ua_clean"][k] for e in entries])), 2) for k in FRONT_ENDS
        }
    for name in conditions:
        cells = [e["conditions"][name] for e in entries if name in e["conditions"]]
        if cells:
            mean[name] = {k: round(float(np.mean([c[k] for c in cells])), 2) for k in cells[0]}
    result["mean"] = mean


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="An `emovox evaluate --out` folder.")
    source.add_argument(
        "--model", help="A model folder or name, with --data (default model: default)."
    )
    ap.add_argument("--data", action="append", default=[], help="CORPUS:PATH, with --model.")
    ap.add_argument(
        "--conditions", default=DEFAULT_CONDITIONS,
        help=f"Test conditions, comma list (default {DEFAULT_CONDITIONS}).",
    )  # fmt: skip
    ap.add_argument("--denoise", choices=denoise_module.METHODS, help="Filter switched on.")
    ap.add_argument("--declip", choices=declip_module.METHODS, help="Declipper switched on.")
    ap.add_argument(
        "--limit", type=int, default=0, help="At most this many files per fold (or corpus)."
    )
    ap.add_argument(
        "--out", help="JSON to write (default: results/cleanup_folds_<run>_<clean-up>.json)."
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1).")
    args = ap.parse_args(argv)
    if not args.denoise and not args.declip:
        ap.error("name a clean-up: --denoise and/or --declip")
    if bool(args.model) != bool(args.data):
        ap.error("--model and --data go together")
    if args.model and not args.out:
        ap.error("--model needs --out FILE")
    conditions = [parse_condition(c).name for c in args.conditions.split(",") if c]
    if not conditions or "clean" in conditions:
        ap.error("--conditions: one or more conditions other than clean")
    main_fn = _main_model if args.model else _main
    return with_threads(args.threads, main_fn, args, argv, conditions)


def _main(args: argparse.Namespace, argv: list[str], conditions: list[str]) -> int:
    run = Path(args.run)
    what = "+".join(x for x in (args.declip and f"declip-{args.declip}", args.denoise) if x)
    out = Path(args.out or RESULTS / f"cleanup_folds_{run.name}_{what}.json")
    start = resumed_result("cleanup_folds.py", run, out, argv)
    if start is None:
        return 2
    rows, result, have = start
    models = {fold: run / f"fold_{fold}" / "model" for fold in rows}
    return _measure(args, conditions, out, result, have, rows, models)


def _main_model(args: argparse.Namespace, argv: list[str], conditions: list[str]) -> int:
    from emovox.pretrained import resolve_model

    model = resolve_model(None if args.model == "default" else args.model)
    labels = Recognizer.load(model).labels
    rows = {k: corpus_rows(labels, spec, 0) for k, spec in enumerate(args.data, 1)}
    out = Path(args.out)
    done = json.loads(out.read_text())["folds"] if out.is_file() else []
    result = {
        "command": " ".join(["python", "benchmarks/cleanup_folds.py", *argv]),
        "model": str(model),
        "note": "UA here is on the model's own training data when the model was trained on it: "
        "read the changes and the labels kept, not the UA",
        "machine": machine_info(),
        "folds": done,
    }
    have = {f["fold"] for f in done}
    return _measure(args, conditions, out, result, have, rows, dict.fromkeys(rows, model))


def _measure(
    args: argparse.Namespace,
    conditions: list[str],
    out: Path,
    result: dict,
    have: set[int],
    rows: dict[int, list[dict]],
    models: dict[int, Path],
) -> int:
    """Each fold not yet in ``result``: measured, added, and written out."""
    result["clean_up"] = {"denoise": args.denoise, "declip": args.declip}

    def lines(row: dict) -> list[str]:
        return [
            f"fold {row['fold']} {corpus}: "
            + ", ".join(
                f"{c} UA change {v['ua_change_plain']:+.1f} -> {v['ua_change_cleaned']:+.1f}"
                for c, v in entry["conditions"].items()
            )
            + f"; clean {entry['unchanged_clean']:.1f} % same"
            for corpus, entry in row["corpora"].items()
        ]

    measure_folds(
        rows, have, result, out, args.limit,
        lambda fold, test: measure_fold(
            models[fold], test, conditions, args.denoise, args.declip
        ),
        lambda r: summarise(r, conditions),
        lines,
    )  # fmt: skip
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
