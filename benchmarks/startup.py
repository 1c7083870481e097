"""Start-up time of ``emovox predict`` on one 3-s clip, as a ratio to the import floor (issue 15).

In one run, alternating, ``--repeats`` times each: ``python -c "import torch, soundfile"`` (the
reference: what any torch program that reads audio pays) and ``emovox predict CLIP --format
json`` (the whole command: imports, loading the bundled model, reading, predicting, printing),
each a fresh process. The median of each and their ratio go to
``benchmarks/results/startup.json``; the goal is a ratio of at most 1.5. A heavy import on the
way (scikit-learn, librosa, matplotlib, fastapi, onnx) shows up here first.

    python benchmarks/startup.py [--repeats 7] [--model DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RESULTS = Path(__file__).resolve().parent / "results" / "startup.json"
GOAL_RATIO = 1.5
HEAVY = ("sklearn", "librosa", "matplotlib", "fastapi", "onnx", "onnxruntime", "opensmile")


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def heavy_imports(cmd: list[str]) -> list[str]:
    """The heavy modules the command imports (from ``python -X importtime``)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd], check=True, capture_output=True, text=True
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    return sorted(h for h in HEAVY if h in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--model", help="model folder (default: the bundled model)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    from emovox.evaluate.machine import machine_info

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        t = np.arange(3 * 16000) / 16000
        sf.write(clip, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
        reference = [sys.executable, "-c", "import torch, soundfile"]
        model = ["--model", a.model] if a.model else []
        predict = [sys.executable, "-m", "emovox", "predict", str(clip), "--format", "json", *model]
        timed(reference), timed(predict)  # warm the file cache
        ref, pred = [], []
        for _ in range(a.repeats):
            ref.append(timed(reference))
            pred.append(timed(predict))
        heavy = heavy_imports(predict[1:])
    ratio = statistics.median(pred) / statistics.median(ref)
    result = {
        "what": "emovox predict on one 3-s clip (fresh process) / python -c 'import torch, "
        "soundfile' (fresh process), medians over alternating runs",
        "reference_seconds": round(statistics.median(ref), 3),
        "predict_seconds": round(statistics.median(pred), 3),
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "meets_goal": ratio <= GOAL_RATIO,
        "heavy_imports_of_predict": heavy,
        "runs": {"reference": [round(x, 3) for x in ref], "predict": [round(x, 3) for x in pred]},
        "command": ["python", "benchmarks/startup.py", *sys.argv[1:]],
        "machine": machine_info(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in list(result)[1:8]}, indent=2))


if __name__ == "__main__":
    main()
