"""Peak memory and time of ``emovox predict`` on batches that hold a long recording (issue 15).

Three measurements, each in a fresh child process that runs the CLI in-process and reports its
peak resident memory (``ru_maxrss``) and wall time:

- ``batch``: one 10-minute recording among 15 four-second clips, ``predict ... --output
  preds.jsonl`` (before issue 15 the long file padded every clip of its batch to 10 minutes:
  5.9 GB and 84 s on the 2-core reference machine);
- ``one-hour``: plain ``predict`` of a 60-minute recording (before: decoded whole, 3.05 GB);
- ``reference``: ``import torch, soundfile`` and nothing else, the floor every run pays.

The recordings are synthetic speech-like utterances between quiet pauses
(:func:`long_audio.make_recording`), written as FLAC into a temporary folder. Goal: the batch
peaks at no more than 1.5 GB. Writes ``benchmarks/results/batch_memory.json``.

    python benchmarks/batch_memory.py [--model DIR] [--long-minutes 10] [--hour-minutes 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "batch_memory.json"
GOAL_BATCH_MB = 1536


def child(spec: dict) -> dict:
    """One measurement in this fresh process."""
    import resource

    import soundfile  # noqa: F401
    import torch  # noqa: F401

    start = time.perf_counter()
    if spec["args"]:
        from emovox.apps.cli import main

        try:
            main(spec["args"], standalone_mode=False)
        except SystemExit as exc:  # a failed file makes predict exit 1; still measured
            if exc.code not in (0, 1, None):
                raise
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps({"args": args})],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model folder (default: the bundled model)")
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--hour-minutes", type=float, default=60.0)
    ap.add_argument("--clips", type=int, default=15)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(json.loads(a.child))))
        return
    from long_audio import make_recording

    from emovox.evaluate.machine import machine_info

    model = ["--model", a.model] if a.model else []
    with tempfile.TemporaryDirectory(prefix="emovox-batch-mem-") as tmp:
        root = Path(tmp)
        clips = []
        for i in range(a.clips):
            clips.append(root / f"clip_{i:02d}.flac")
            make_recording(clips[-1], 4 / 60, None, sr=16000, seed=i)
        long = root / "long.flac"
        make_recording(long, a.long_minutes, None, sr=16000, seed=100)
        hour = root / "hour.flac"
        make_recording(hour, a.hour_minutes, None, sr=16000, seed=200)
        files = [str(c) for c in clips[: a.clips // 2]] + [str(long)]
        files += [str(c) for c in clips[a.clips // 2 :]]
        runs = {
            "reference": measure([]),
            "batch": measure(
                ["predict", *model, *files, "--output", str(root / "p.jsonl"), "--quiet"]
            ),
            "one-hour": measure(["predict", *model, str(hour), "--format", "json"]),
        }
        lines = (root / "p.jsonl").read_text().splitlines()
        runs["batch"]["lines_written"] = len(lines)
    runs["batch"]["goal_peak_rss_mb"] = GOAL_BATCH_MB
    runs["batch"]["meets_goal"] = runs["batch"]["peak_rss_mb"] <= GOAL_BATCH_MB
    result = {
        "what": f"predict --output over {a.clips} four-second clips and one "
        f"{a.long_minutes:g}-minute recording; plain predict of a {a.hour_minutes:g}-minute "
        "recording; peak resident memory of each fresh process",
        "runs": runs,
        "command": ["python", "benchmarks/batch_memory.py", *sys.argv[1:]],
        "machine": machine_info(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
