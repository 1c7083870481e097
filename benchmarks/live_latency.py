"""Latency of ``emovox live``: from the end of an utterance to its printed prediction.

Plays a recording of ``--utterances`` synthetic utterances (emovox.data.synth's numpy voice, a pause
after each) through the live path at real-time pace — the same LiveSession, VAD and terminal
display as ``emovox live`` — and writes the latency of every utterance. The clock starts when the
audio block that lets the VAD decide "the utterance has ended" arrives (``min_silence`` after the
speech stops) and stops once the prediction is printed.

    python benchmarks/live_latency.py --model models/cnn     # or no --model: the tiny model
"""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent


def make_recording(path: Path, n: int, sr: int = 16000, pause: float = 0.8) -> list[float]:
    """Write ``n`` utterances separated by ``pause`` s of quiet; return their lengths (s)."""
    from emovox.data.synth import PROSODY, SENTENCES, Prosody, numpy_voice

    rng = np.random.default_rng(0)
    emotions = list(PROSODY)
    parts, lengths = [np.zeros(round(pause * sr), np.float32)], []
    for i in range(n):
        p: Prosody = PROSODY[emotions[i % len(emotions)]]
        x = numpy_voice(SENTENCES[i % len(SENTENCES)], 1 + i % 4, p, sr, rng)
        parts += [x, np.zeros(round(pause * sr), np.float32)]
        lengths.append(x.size / sr)
    audio = np.concatenate(parts)
    audio += rng.normal(0, 1e-3, audio.size).astype(np.float32)
    sf.write(str(path), audio, sr, subtype="PCM_16")
    return lengths


@click.command()
@click.option("--model", "model_dir", type=click.Path(), help="Model bundle (default: tiny).")
@click.option("--utterances", default=10, show_default=True)
@click.option("--speed", default=1.0, show_default=True, help="Pace (1: real time).")
@click.option("--out", default=str(HERE / "results" / "live_latency.json"), show_default=True)
@click.option(
    "--vad",
    default="energy",
    show_default=True,
    help="As `emovox live --vad`; silero hears no speech in the synthetic voice, so energy.",
)
def main(model_dir, utterances, speed, out, vad) -> None:
    from rich.console import Console

    from emovox.apps.live import LATENCY_TARGET_MS, LiveDisplay, LiveSession, file_blocks, run_live
    from emovox.evaluate.runner import machine_info
    from emovox.inference.recognizer import Recognizer

    with tempfile.TemporaryDirectory() as tmp:
        model_note = "given"
        if model_dir is None:
            sys.path.insert(0, str(HERE))
            from tiny_model import TINY_RECIPE, train_tiny

            model_dir = str(train_tiny(Path(tmp) / "tiny"))
            model_note = f"tiny: {TINY_RECIPE}"
        rec = Recognizer.load(model_dir)
        wav = Path(tmp) / "utterances.wav"
        lengths = make_recording(wav, utterances, rec.sample_rate)
        session = LiveSession(rec, vad=vad)
        display = LiveDisplay(rec.labels, console=Console(file=io.StringIO(), width=100))
        t0 = time.perf_counter()
        with display:
            res = run_live(session, file_blocks(wav, rec.sample_rate, speed=speed), display)
        wall = time.perf_counter() - t0
    lat = res["latency"]
    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "model": {"path": model_dir, "note": model_note},
        "what": "ms from the arrival of the audio block that ends an utterance (VAD decision, "
        f"{session.stream.cfg.min_silence} s of quiet after the speech) to the printed prediction",
        "pace": speed,
        "vad": vad,
        "utterances_played": utterances,
        "utterance_seconds": [round(x, 2) for x in lengths],
        "utterances_detected": lat["count"],
        "latency_ms": {k: v for k, v in lat.items() if k != "count"},
        "per_utterance_ms": [u["latency_ms"] for u in res["utterances"]],
        "wall_s": round(wall, 2),
        "machine": machine_info(),
        "load_average_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
        "process_nice": os.nice(0),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    click.echo(
        f"{lat['count']} of {utterances} utterances; latency median {lat.get('median_ms')} ms, "
        f"p95 {lat.get('p95_ms')} ms, max {lat.get('max_ms')} ms "
        f"(target {LATENCY_TARGET_MS:.0f} ms)  -> {out}"
    )
    if lat["count"] != utterances:
        sys.exit(1)


if __name__ == "__main__":
    main()
