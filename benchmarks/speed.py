"""End-to-end prediction speed: audio files on disk -> probabilities, as real-time factors.

Measured in one run on the same files:

- ``decode+resample``: reading and resampling alone (``emovox.audio.load_audio`` at the model's
  rate), the ceiling of any pipeline that reads these files; it is timed again in turn with
  every emovox row, whose ``ratio_to_decode`` divides the two (the machine's speed drifts);
- ``emovox-torch``, ``emovox-onnx`` and ``emovox-onnx-int8``: ``Recognizer.predict_batch`` end
  to end (decode, feature, model) with the torch and the onnxruntime backends (float, and the
  int8 export calibrated on every ``len/64``-th file, at most half), on 1 and on 2 threads; the
  int8 labels' agreement with float on the files it was not calibrated on, and the sizes;
- ``tutorial``: the reference tutorial pipeline, ``librosa.load`` at 44.1 kHz (0.5 s offset,
  2.5 s) + the ``tutorial-mfcc`` feature + ``tutorial-cnn1d`` (the ``--tutorial-model`` bundle,
  or an untrained network of the same shape: the speed is the same).

A real-time factor is audio seconds / wall seconds (higher is faster). Writes
``benchmarks/results/speed.json`` with the machine.

    python benchmarks/speed.py --data DIR [--model MODEL_DIR] [--tutorial-model DIR] [--limit N]

Without ``--model`` the default model bundled with emovox is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from emovox._fs import atomic_write_text
from emovox.audio import load_audio
from emovox.evaluate.runner import machine_info
from emovox.inference.batch import expand_inputs
from emovox.inference.recognizer import Recognizer

RESULTS = Path(__file__).resolve().parent / "results" / "speed.json"


def audio_seconds(files: list[str]) -> float:
    return float(sum(sf.info(f).duration for f in files))


REPEAT = [3]


def timed(fn) -> float:
    """The best wall time (s) of ``REPEAT[0]`` runs of ``fn``."""
    return timed_with(fn)[0]


def timed_with(fn, reference=None) -> tuple[float, float | None]:
    """The best wall times (s) of ``REPEAT[0]`` runs of ``fn`` and of ``reference``, run in
    turn, so that a ratio of the two is not skewed by the machine's speed drifting between
    measurements (on a shared virtual machine it moves by 20 % over minutes)."""
    best, best_ref = float("inf"), float("inf")
    for _ in range(max(1, REPEAT[0])):
        if reference is not None:
            start = time.perf_counter()
            reference()
            best_ref = min(best_ref, time.perf_counter() - start)
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best, (best_ref if reference is not None else None)


def tutorial_pipeline(files: list[str], tutorial_model: str | None):
    """A callable running the tutorial's pipeline on ``files``, and a note on its model."""
    import librosa

    from emovox.features import TutorialMFCC
    from emovox.models import build_model

    feature = TutorialMFCC()
    if tutorial_model:
        rec = Recognizer.load(tutorial_model)
        model, note = rec.model, f"bundle {tutorial_model}"
    else:
        model = build_model("tutorial-cnn1d", 8, (1, 1)).eval()
        note = "untrained tutorial-cnn1d (8 classes): same computation as a trained one"

    def run() -> np.ndarray:
        rows = []
        for f in files:
            y, _ = librosa.load(
                f, sr=feature.sample_rate, offset=feature.offset, duration=feature.duration
            )
            if y.size < 2048:  # too short for the offset: read from the start, as emovox does
                y, _ = librosa.load(f, sr=feature.sample_rate, duration=feature.duration)
            rows.append(feature.summary(y))
        x = torch.from_numpy(np.stack(rows))[:, None, None, :]
        with torch.no_grad():
            return torch.softmax(model(x), dim=1).numpy()

    return run, note


def main(argv: list[str] | None = None) -> int:
    """Entry point; the caller's torch thread count is restored afterwards (it runs in-process
    in the tests)."""
    threads = torch.get_num_threads()
    try:
        return measure(argv)
    finally:
        torch.set_num_threads(threads)


def measure(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="Folder (searched recursively) of audio files.")
    ap.add_argument(
        "--model", help="emovox model folder or shipped name (default: the bundled default model)."
    )
    ap.add_argument("--tutorial-model", help="A trained tutorial-cnn1d bundle (optional).")
    ap.add_argument("--limit", type=int, help="Use the first N files only.")
    ap.add_argument("--threads", default="1,2", help="Thread counts to measure (default 1,2).")
    ap.add_argument("--repeat", type=int, default=3, help="Runs per measurement (best kept).")
    ap.add_argument("--out", default=str(RESULTS), help="JSON to write.")
    args = ap.parse_args(argv)
    REPEAT[0] = args.repeat
    from emovox.pretrained import resolve_model

    args.model = str(resolve_model(args.model))  # the default model, a shipped name, or a folder

    files, _ = expand_inputs([args.data])
    files = files[: args.limit] if args.limit else files
    if not files:
        print(f"no audio files under {args.data}", file=sys.stderr)
        return 2
    seconds = audio_seconds(files)
    threads = [int(t) for t in args.threads.split(",")]
    warm = files[: min(2, len(files))]
    runs: list[dict] = []

    def record(name: str, n: int, walls: tuple[float, float | None], **extra) -> None:
        wall, decode = walls
        paired = {}
        if decode is not None:
            paired = {"decode_wall_s": round(decode, 4), "ratio_to_decode": round(decode / wall, 3)}
        runs.append(
            {
                "pipeline": name,
                "threads": n,
                "wall_s": round(wall, 4),
                "rtf": round(seconds / wall, 2),
                **paired,
                **extra,
            }
        )
        ratio = f"  {decode / wall:.3f} of decoding" if decode is not None else ""
        print(f"{name:18s} {n} thread(s): {wall:8.3f} s  RTF {seconds / wall:8.1f}{ratio}")

    print(f"{len(files)} files, {seconds:.1f} s of audio")
    onnx_dir = Path(tempfile.mkdtemp(prefix="emovox-speed-"))
    onnx_file: Path | None = None
    onnx_note = None
    try:
        from emovox.inference.onnx_backend import export_onnx

        onnx_file = export_onnx(args.model, onnx_dir / "model.onnx")
        calibration = files[:: max(2, len(files) // 64)]  # at most half: the rest is compared
        int8_file = export_onnx(
            args.model, onnx_dir / "model.int8.onnx", quantize="int8", calibrate=calibration
        )
    except Exception as exc:  # onnx extras missing, or the export failed: measure the rest
        onnx_note = f"onnx backend not measured: {exc}"
        print(onnx_note, file=sys.stderr)
        int8_file, calibration = None, []

    rec = Recognizer.load(args.model)
    torch.set_num_threads(1)
    rec.predict_batch(warm)

    def decode() -> None:
        for f in files:
            load_audio(f, sr=rec.sample_rate)

    record("decode+resample", 1, (timed(decode), None))
    for n in threads:
        torch.set_num_threads(n)
        rec.predict_batch(warm)
        # Each emovox row is timed in turn with decoding (one thread), for its ratio.
        record("emovox-torch", n, timed_with(lambda: rec.predict_batch(files), decode))
        if onnx_file is not None:
            rec_o = Recognizer.load(args.model, backend="onnx", onnx_path=onnx_file)
            rec_o.predict_batch(warm)
            record("emovox-onnx", n, timed_with(lambda r=rec_o: r.predict_batch(files), decode))
        if int8_file is not None:
            rec_8 = Recognizer.load(args.model, backend="onnx", onnx_path=int8_file)
            rec_8.predict_batch(warm)
            record(
                "emovox-onnx-int8", n, timed_with(lambda r=rec_8: r.predict_batch(files), decode)
            )
    torch.set_num_threads(1)
    run_tutorial, tutorial_note = tutorial_pipeline(files, args.tutorial_model)
    run_tutorial_warm, _ = tutorial_pipeline(warm, args.tutorial_model)
    run_tutorial_warm()
    record("tutorial", 1, (timed(run_tutorial), None), model=tutorial_note)

    by = {(r["pipeline"], r["threads"]): r["rtf"] for r in runs}
    tutorial_rtf = by[("tutorial", 1)]
    int8 = None
    if int8_file is not None and onnx_file is not None:
        held_out = [f for f in files if f not in set(calibration)]
        torch.set_num_threads(1)
        a = Recognizer.load(args.model, backend="onnx", onnx_path=onnx_file).predict_batch(held_out)
        b = Recognizer.load(args.model, backend="onnx", onnx_path=int8_file).predict_batch(held_out)
        same = [x.label == y.label for x, y in zip(a, b, strict=True) if x.ok and y.ok]
        int8 = {
            "label_agreement_with_float": round(100 * float(np.mean(same)), 2),
            "files_compared": len(same),
            "calibration_files": len(calibration),
            "float_bytes": onnx_file.stat().st_size,
            "int8_bytes": int8_file.stat().st_size,
            "speedup_over_float_1_thread": round(
                by[("emovox-onnx-int8", 1)] / by[("emovox-onnx", 1)], 2
            ),
        }
        print(f"int8: {int8}")
    result = {
        "command": " ".join(["python", "benchmarks/speed.py", *(argv or sys.argv[1:])]),
        "data": str(args.data),
        "model": str(args.model),
        "files": len(files),
        "audio_seconds": round(seconds, 3),
        "machine": machine_info(),
        "runs": runs,
        "speedup_over_tutorial_1_thread": {
            name: round(by[(name, 1)] / tutorial_rtf, 2)
            for name in ("emovox-torch", "emovox-onnx", "emovox-onnx-int8", "decode+resample")
            if (name, 1) in by
        },
        "ratio_to_decode_1_thread": {
            r["pipeline"]: r["ratio_to_decode"]
            for r in runs
            if r["threads"] == 1 and "ratio_to_decode" in r
        },
        "int8": int8,
        "notes": [n for n in (onnx_note, f"tutorial: {tutorial_note}") if n],
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
