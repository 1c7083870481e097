"""A 30-minute recording through the segmentation path of ``predict --segments``: speed, memory.

The recording is RAVDESS utterances (``--data``; shuffled, seeded) or synthetic speech-like
utterances (without ``--data``), separated by 0.5-2.5 s of quiet noise and written as one FLAC
file (48 kHz by default) in a temporary folder. For each VAD a fresh child process loads the
model and runs :func:`emovox.segmentation.predict_segments` on the file (what ``emovox predict
LONG --segments --vad VAD`` runs), writes one JSON line per segment and reports:

- the real-time factor (audio seconds / wall seconds of the prediction and writing);
- the segments found (against the utterances put in);
- its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after the imports
  and at the end; the increase is what predicting the file cost;
- the most audio held in memory at once (``max_buffer_seconds`` of
  :func:`emovox.segmentation.predict_segments`).

``silero-loop`` is the reference for silero: the same path with silero's TorchScript model
called on one chunk after another (silero's own loop, what emovox ran before its encoder was
batched over a block). Every other silero run (``silero``, ``auto``) reports how many of its
segments start and end within 0.1 s of a ``silero-loop`` segment.

A reference child decodes the whole file at once (``emovox.audio.load_audio`` at 16 kHz), to
compare the bounded streaming path with what decoding it whole costs; the decoded sizes of the
file (float32, native rate and 16 kHz) are reported too. Writes
``benchmarks/results/long_audio.json`` with the machine and the command.

    python benchmarks/long_audio.py [--data ../shared/data/ravdess] [--model DIR] \
        [--minutes 30] [--vad energy,silero,auto,silero-loop] \
        [--out benchmarks/results/long_audio.json]

Without ``--model`` the default model bundled with emovox is used, as by ``emovox predict``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RESULTS = Path(__file__).resolve().parent / "results" / "long_audio.json"
MODEL_SR = 16000


def _utterances(data: str | None, sr: int, seed: int):
    """An endless stream of (waveform at ``sr``, source name): RAVDESS files or synthetic."""
    rng = np.random.default_rng(seed)
    if data:
        from emovox.audio import load_audio
        from emovox.data.corpora import scan_corpus

        paths = scan_corpus("ravdess", data).paths
        if not paths:
            raise SystemExit(f"{data}: no RAVDESS speech files found")
        while True:
            for i in rng.permutation(len(paths)):
                yield load_audio(paths[i], sr=sr), Path(paths[i]).name
    from emovox.data.synth import PROSODY, SENTENCES, numpy_voice

    emotions = sorted(PROSODY)
    while True:
        emo = emotions[rng.integers(len(emotions))]
        text = SENTENCES[rng.integers(len(SENTENCES))]
        yield numpy_voice(text, int(rng.integers(1, 9)), PROSODY[emo], sr, rng), f"synthetic {emo}"


def make_recording(
    path: Path, minutes: float, data: str | None, sr: int = 48000, seed: int = 0
) -> dict:
    """Write utterances and pauses into one FLAC file, piece by piece; describe what went in."""
    rng = np.random.default_rng(seed + 1)
    total = round(minutes * 60 * sr)
    written, utterances, speech = 0, 0, 0
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, format="FLAC") as f:
        for wave, _name in _utterances(data, sr, seed):
            gap = (1e-4 * rng.standard_normal(round(rng.uniform(0.5, 2.5) * sr))).astype(np.float32)
            if written + gap.size + wave.size > total:
                break
            f.write(gap)
            f.write(np.clip(wave, -1.0, 1.0).astype(np.float32))
            written += gap.size + wave.size
            utterances += 1
            speech += wave.size
        tail = total - written
        f.write((1e-4 * rng.standard_normal(tail)).astype(np.float32))
    return {
        "source": f"ravdess: {data}" if data else "synthetic (emovox.data.synth.numpy_voice)",
        "minutes": minutes,
        "audio_seconds": round(total / sr, 3),
        "sample_rate": sr,
        "format": "FLAC, PCM_16, mono",
        "utterances": utterances,
        "utterance_seconds": round(speech / sr, 1),
        "flac_mb": round(path.stat().st_size / 1e6, 2),
        "decoded_float32_mb_native_rate": round(total * 4 / 1e6, 1),
        "decoded_float32_mb_16k": round(total / sr * MODEL_SR * 4 / 1e6, 1),
    }


def read_segments(path: Path) -> list[tuple[float, float]]:
    return [(r["start"], r["end"]) for r in map(json.loads, path.read_text().splitlines())]


def within(segments, reference, tolerance: float = 0.1) -> float:
    """The fraction of ``segments`` whose start and end are both within ``tolerance`` seconds of
    one segment of ``reference``."""
    if not segments:
        return 1.0 if not reference else 0.0
    ref = np.asarray(reference, dtype=float).reshape(-1, 2)
    ok = sum(
        bool(np.any((np.abs(ref[:, 0] - a) <= tolerance) & (np.abs(ref[:, 1] - b) <= tolerance)))
        for a, b in segments
    )
    return ok / len(segments)


def agreement(runs: list[dict], tmp: Path) -> None:
    """Each silero run's segments against ``silero-loop``'s (when it ran), in place."""
    if not any(r["vad"] == "silero-loop" for r in runs):
        return
    ref = read_segments(tmp / "silero-loop.jsonl")
    for r in runs:
        if r["vad"] in ("silero", "auto") and r.get("vad_used") == "silero":
            r["segments_within_0.1s_of_silero_loop"] = round(
                within(read_segments(tmp / f"{r['vad']}.jsonl"), ref), 4
            )
            print(
                f"{r['vad']}: {100 * r['segments_within_0.1s_of_silero_loop']:.1f} % "
                "of segments within 0.1 s of silero-loop's"
            )


# -- the child process ---------------------------------------------------------------------------


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


SILERO_RUNS = ("silero", "auto", "silero-loop")
"""The runs that use silero (``auto`` does where it is installed)."""


def _chunk_loop(self, chunks: np.ndarray) -> np.ndarray:
    """silero's own loop: its TorchScript model on one chunk after another (the reference)."""
    import torch

    if getattr(self, "_loop_reset", None) is None:
        self.model.reset_states()
        self._loop_reset = True
    with torch.inference_mode():
        return np.array(
            [float(self.model(torch.from_numpy(c.copy())[None], self.SR)) for c in chunks]
        )


def child(spec: dict) -> dict:
    """Run one measurement in this (fresh) process; returns its numbers."""
    import torch  # noqa: F401  (imports are part of the baseline, not of the measurement)

    from emovox import Recognizer
    from emovox.segmentation import make_vad, predict_segments
    from emovox.segmentation.silero import SileroVad

    rec = None
    if spec["vad"] != "whole-decode":
        rec = Recognizer.load(spec.get("model") or None)
    if spec["vad"] == "silero-loop":
        SileroVad.chunk_probabilities = _chunk_loop
    if spec["vad"] in SILERO_RUNS:
        make_vad("silero", MODEL_SR)  # load silero first
    base = _rss_mb()
    start = time.perf_counter()
    if rec is None:
        from emovox.audio import load_audio

        n = load_audio(spec["file"], sr=MODEL_SR).size
        extra = {"samples": n}
    else:
        stats: dict = {}
        vad = "silero" if spec["vad"] == "silero-loop" else spec["vad"]
        segs = predict_segments(rec, spec["file"], vad=vad, stats=stats)
        with open(spec["output"], "w") as f:
            for seg in segs:
                f.write(json.dumps({"file": spec["file"], **seg}) + "\n")
        extra = {
            "segments": len(segs),
            "segment_seconds": round(sum(s["end"] - s["start"] for s in segs), 1),
            "errors": [],
            "vad_used": stats.get("vad"),
            "max_audio_buffer_seconds": round(stats.get("max_buffer_seconds", float("nan")), 1),
        }
    wall = time.perf_counter() - start
    peak = _rss_mb()
    return {
        "wall_s": round(wall, 2),
        "rss_after_imports_mb": round(base, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_increase_mb": round(peak - base, 1),
        **extra,
    }


def run_child(spec: dict) -> dict:
    """:func:`child` in a fresh interpreter, so that each peak RSS is its own."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['vad']} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(child(json.loads(argv[1]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="RAVDESS folder (synthetic utterances without it).")
    ap.add_argument("--model", help="Model folder (default: the bundled default model).")
    ap.add_argument("--minutes", type=float, default=30.0, help="Length of the recording.")
    ap.add_argument("--sr", type=int, default=48000, help="Sample rate of the FLAC file.")
    ap.add_argument(
        "--vad",
        default="energy,silero,auto,silero-loop",
        help="VADs to measure (comma-separated; silero-loop: silero chunk by chunk, reference).",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS), help="JSON to write.")
    args = ap.parse_args(argv)
    vads = [v.strip() for v in args.vad.split(",") if v.strip()]
    bad = [v for v in vads if v not in ("energy", *SILERO_RUNS)]
    if bad:
        ap.error(f"--vad: {bad} not among energy, {', '.join(SILERO_RUNS)}")
    from emovox.segmentation import silero_available

    if not silero_available() and any(v in SILERO_RUNS for v in vads):
        print("silero-vad is not installed: measuring the energy VAD only", file=sys.stderr)
        vads = [v for v in vads if v not in SILERO_RUNS]
    from emovox.evaluate.runner import machine_info
    from emovox.pretrained import default_model_path

    model = args.model or str(default_model_path())
    with tempfile.TemporaryDirectory(prefix="emovox-long-") as tmp:
        long_file = Path(tmp) / "long.flac"
        start = time.perf_counter()
        recording = make_recording(long_file, args.minutes, args.data, args.sr, args.seed)
        recording["seconds_to_make"] = round(time.perf_counter() - start, 1)
        print(
            f"{long_file}: {recording['audio_seconds'] / 60:.1f} min, "
            f"{recording['utterances']} utterances, {recording['flac_mb']} MB FLAC"
        )
        runs = []
        for vad in vads:
            spec = {"vad": vad, "file": str(long_file), "output": str(Path(tmp) / f"{vad}.jsonl")}
            spec["model"] = args.model
            r = {"vad": vad, **run_child(spec)}
            r["rtf"] = round(recording["audio_seconds"] / r["wall_s"], 1)
            runs.append(r)
            print(
                f"{vad:7s}: {r['wall_s']:7.1f} s, RTF {r['rtf']:6.1f}, {r['segments']} segments, "
                f"peak RSS {r['rss_peak_mb']:.0f} MB (+{r['rss_increase_mb']:.0f} MB)"
            )
        agreement(runs, Path(tmp))
        whole = run_child({"vad": "whole-decode", "file": str(long_file)})
        print(
            f"decoding the whole file at 16 kHz: +{whole['rss_increase_mb']:.0f} MB "
            f"(float32 at 16 kHz: {recording['decoded_float32_mb_16k']} MB)"
        )
    result = {
        "command": " ".join(["python", "benchmarks/long_audio.py", *argv]),
        "cli": "emovox predict LONG --segments --vad VAD --format jsonl --output FILE"
        + (f" --model {args.model}" if args.model else " (the bundled default model)"),
        "model": model,
        "recording": recording,
        "runs": runs,
        "reference_whole_decode_16k": whole,
        "env": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "machine": machine_info(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "notes": [
            "rtf = audio seconds / wall seconds of the whole command in a fresh process "
            "(model and VAD loading included, Python and torch imports not)",
            "rss_increase_mb = peak RSS at the end minus the peak after the imports",
            "max_audio_buffer_seconds: the most audio (at 16 kHz) the streaming path held at once",
            "silero-loop: silero's TorchScript model called chunk by chunk (the reference); "
            "silero and auto batch its encoder over each block and run its LSTM in sequence",
        ],
    }
    from emovox._fs import atomic_write_text

    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
