"""Batch scoring on Ray against the local engine, in one run on the same files.

For the files of ``--data`` (and the same list repeated ``--repeat`` times, to see how it
scales), each measured from a cold start of its engine:

- ``local``: :func:`emovox.inference.batch.score_files` (what ``emovox predict ... -o x.jsonl``
  runs) on one thread;
- ``ray-N``: :func:`emovox.inference.ray_scoring.score_with_ray` with ``N`` inference actors on a
  local Ray of ``--cpus`` CPUs (Ray's start-up included).

Reported: wall seconds, files per second, the speed-up over ``local``, and Ray's overhead per
file (``(wall_ray_1 - wall_local) / files``: what one actor costs beyond the local engine). The
label agreement of every Ray run with the local one is checked. Writes
``benchmarks/results/ray_scoring.json`` with the machine and the command.

    python benchmarks/ray_scoring.py --data ../shared/data/ravdess [--model DIR] \\
        [--repeat 10] [--actors 1,2] [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from emovox._fs import atomic_write_text
from emovox.evaluate.machine import machine_info
from emovox.inference.batch import expand_inputs, score_files
from emovox.inference.ray_scoring import score_with_ray
from emovox.inference.recognizer import Recognizer

RESULTS = Path(__file__).resolve().parent / "results" / "ray_scoring.json"


def labels_of(path: Path) -> dict[str, str | None]:
    return {r["file"]: r["label"] for r in map(json.loads, path.read_text().splitlines())}


def measure(model: str, files: list[str], actors: list[int], cpus: int, tmp: Path) -> dict:
    """The runs of one file list: local, then Ray with each number of actors (the local engine
    on one thread; the caller's thread count is put back)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(model, files, actors, cpus, tmp)
    finally:
        torch.set_num_threads(threads)


def _measure(model: str, files: list[str], actors: list[int], cpus: int, tmp: Path) -> dict:
    rows = []
    t0 = time.perf_counter()
    score_files(Recognizer.load(model), files, tmp / "local.jsonl", progress=False, workers=1)
    local = time.perf_counter() - t0
    want = labels_of(tmp / "local.jsonl")
    rows.append({"engine": "local", "wall_s": round(local, 3)})
    for n in actors:
        out = tmp / f"ray{n}.jsonl"
        t0 = time.perf_counter()
        score_with_ray(model, files, out, actors=n, num_cpus=cpus, progress=False)
        wall = time.perf_counter() - t0
        got = labels_of(out)
        same = sum(got.get(f) == lab for f, lab in want.items()) / max(len(want), 1)
        rows.append({"engine": f"ray-{n}", "wall_s": round(wall, 3), "agreement": same})
    for r in rows:
        r["files_per_s"] = round(len(files) / r["wall_s"], 2)
        r["speedup_over_local"] = round(local / r["wall_s"], 3)
    ray1 = next((r for r in rows if r["engine"] == "ray-1"), None)
    overhead = None if ray1 is None else round(1000 * (ray1["wall_s"] - local) / len(files), 2)
    return {"files": len(files), "runs": rows, "ray_overhead_ms_per_file": overhead}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="Folder (searched recursively) of audio files.")
    ap.add_argument("--model", help="emovox model folder (default: the bundled default model).")
    ap.add_argument("--repeat", type=int, default=10, help="Also the list this many times over.")
    ap.add_argument("--actors", default="1,2", help="Inference actors to measure (default 1,2).")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (default 2).")
    ap.add_argument("--limit", type=int, help="Use the first N files only.")
    ap.add_argument("--out", default=str(RESULTS), help="JSON to write.")
    args = ap.parse_args(argv)
    if args.model is None:
        from emovox.pretrained import default_model_path

        args.model = str(default_model_path())
    files, _ = expand_inputs([args.data])
    files = files[: args.limit] if args.limit else files
    if not files:
        print(f"no audio files under {args.data}", file=sys.stderr)
        return 2
    actors = [int(a) for a in args.actors.split(",")]
    lists = {"files": files}
    if args.repeat > 1:  # the same files again under other names (links), so none is skipped
        lists[f"files x{args.repeat}"] = None
    result = {
        "command": " ".join(["python", "benchmarks/ray_scoring.py", *(argv or sys.argv[1:])]),
        "model": args.model,
        "machine": machine_info(),
        "cpus": args.cpus,
        "lists": {},
    }
    with tempfile.TemporaryDirectory(prefix="emovox-ray-") as tmp:
        tmp = Path(tmp)
        for name, chosen in lists.items():
            if chosen is None:
                chosen = []
                for k in range(args.repeat):
                    folder = tmp / f"copy{k}"
                    folder.mkdir()
                    for i, f in enumerate(files):
                        link = folder / f"{i:05d}{Path(f).suffix}"
                        link.symlink_to(Path(f).resolve())
                        chosen.append(str(link))
            print(f"{name}: {len(chosen)} files")
            outs = tmp / f"out-{len(result['lists'])}"  # each list writes its own outputs
            outs.mkdir()
            result["lists"][name] = measure(args.model, chosen, actors, args.cpus, outs)
            for r in result["lists"][name]["runs"]:
                print(f"  {r['engine']:8s} {r['wall_s']:8.2f} s  {r['files_per_s']:7.1f} files/s")
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
