"""Does a model's int8 ONNX file answer as its float weights do, on this CPU?

onnxruntime's int8 kernels differ between CPUs: on x86 without VNNI instructions the uint8 x
int8 products are summed in pairs in 16 bits, which 8-bit weights can overflow. This script
scores the same files with the bundle's float weights (torch) and with an int8 file (its own
``model.int8.onnx``, or ``--int8 FILE``), each clip alone, and writes per corpus: the labels kept
(%), and the largest and median absolute difference of a class probability. The CPU, and whether
it has VNNI, are recorded with the numbers.

    python benchmarks/int8_agreement.py --data ravdess:../shared/data/ravdess \\
        --data emodb:../corpora/emodb [--model fast-7] [--int8 FILE] [--limit 100] \\
        --out benchmarks/results/int8_agreement.json
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np

from emovox._fs import atomic_write_text
from emovox.apps.cli.options import load_manifest, parse_spec
from emovox.evaluate.machine import machine_info
from emovox.inference.onnx_backend import INT8_FILE
from emovox.inference.recognizer import Recognizer


def cpu_has_vnni() -> bool | None:
    """Whether the CPU lists a VNNI instruction set (``None``: not known here)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return "vnni" in flags


def agreement(float_preds: Sequence, int8_preds: Sequence) -> dict:
    """Labels kept (%) and the largest / median absolute probability difference of paired
    predictions (files that failed in either are left out and counted)."""
    pairs = [(a, b) for a, b in zip(float_preds, int8_preds, strict=True) if a.ok and b.ok]
    if not pairs:
        return {"files": 0, "failed": len(float_preds)}
    diff = [max(abs(a.probabilities[c] - b.probabilities[c]) for c in a.probabilities)
            for a, b in pairs]  # fmt: skip
    return {
        "files": len(pairs),
        "failed": len(float_preds) - len(pairs),
        "labels_kept": round(100.0 * float(np.mean([a.label == b.label for a, b in pairs])), 2),
        "max_abs_diff": round(float(max(diff)), 4),
        "median_abs_diff": round(float(np.median(diff)), 4),
    }


def int8_recognizer(model: str, int8: str | None, workdir: Path) -> Recognizer:
    """The model on its int8 file, or on ``int8`` (the bundle copied beside it, never changed)."""
    if int8 is None:
        return Recognizer.load(model, backend="onnx-int8")
    copy = workdir / "bundle"
    shutil.copytree(Recognizer.load(model).bundle.path, copy)
    shutil.copyfile(int8, copy / INT8_FILE)
    return Recognizer.load(str(copy), backend="onnx-int8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, help="CORPUS:PATH (repeat)")
    ap.add_argument("--model", default="fast-7", help="a shipped name or a bundle folder")
    ap.add_argument("--int8", help="an int8 ONNX file to score instead of the bundle's own")
    ap.add_argument("--limit", type=int, default=100, help="files per corpus (random, seed 0)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    corpora = {}
    for spec in args.data:
        try:
            name, path = parse_spec(spec)
            paths = load_manifest(name, path).paths
        except click.UsageError as exc:
            ap.error(exc.format_message())
        random.Random(0).shuffle(paths)
        corpora[name] = paths[: args.limit]
    rec = Recognizer.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        rec_8 = int8_recognizer(args.model, args.int8, Path(tmp))
        per_corpus = {}
        all_f, all_q = [], []
        for name, paths in corpora.items():
            f, q = rec.predict_batch(paths), rec_8.predict_batch(paths)
            per_corpus[name] = agreement(f, q)
            all_f += f
            all_q += q
            print(f"{name}: {per_corpus[name]}", file=sys.stderr)
    result = {
        "command": "python benchmarks/int8_agreement.py " + " ".join(sys.argv[1:] if argv is None
                                                                      else argv),
        "model": args.model,
        "int8": args.int8 or f"the bundle's {INT8_FILE}",
        "machine": {**machine_info(), "vnni": cpu_has_vnni()},
        "per_corpus": per_corpus,
        "all": agreement(all_f, all_q),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"labels kept {result['all'].get('labels_kept')} %, max |dp| "
          f"{result['all'].get('max_abs_diff')}; wrote {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
