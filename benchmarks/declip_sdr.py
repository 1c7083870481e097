"""How close does each declipping method come to the wave before it clipped?

Files of each corpus are read (at 16 kHz), scaled by a gain and clipped to [-1, 1], as a
recording made too loud; each method of :mod:`emovox.features.declip` then redraws the clipped
runs. Reported per corpus and overall: the signal-to-distortion ratio (SDR, dB) of the clipped
wave and of each method's result against the scaled wave, the share of samples clipped, and the
seconds each method took per file and per second of audio (one core, this machine, measured in
the same run). No emotion label is read: this is the measure the sparse method's settings were
chosen on.

    python benchmarks/declip_sdr.py --corpus emodb:../corpora/emodb --corpus nemo:../corpora/nemo \\
        [--gain 20] [--limit 20] [--out benchmarks/results/declip_sdr.json]
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from emovox._fs import atomic_write_text
from emovox.audio import SAMPLE_RATE, load_audio
from emovox.data.corpora import scan_corpus
from emovox.evaluate.machine import machine_info
from emovox.features.declip import METHODS, clipped_mask, declip

HERE = Path(__file__).parent


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio of ``estimate`` against ``reference`` in dB (inf if equal)."""
    error = float(np.sum((reference.astype(np.float64) - estimate) ** 2))
    power = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(power / error)


def measure(wave: np.ndarray, gain_db: float) -> dict:
    """One file: the SDR of the clipped wave and of each method, and each method's seconds."""
    scaled = wave * 10 ** (gain_db / 20)
    loud = np.clip(scaled, -1.0, 1.0).astype(np.float32)
    row = {"clipped_share": float(clipped_mask(loud).mean()), "sdr": {"clipped": sdr(scaled, loud)}}
    row["seconds"] = {}
    for method in METHODS:
        start = time.perf_counter()
        fixed = declip(loud, method)
        row["seconds"][method] = time.perf_counter() - start
        row["sdr"][method] = sdr(scaled, fixed)
    return row


def summary(rows: list[dict], seconds_of_audio: float) -> dict:
    """Means over the files that clip (an unclipped file's SDR is infinite for every method)."""
    clipped = [r for r in rows if r["clipped_share"] > 0]
    out: dict = {"files": len(rows), "files_clipped": len(clipped)}
    if not clipped:
        return out
    out["clipped_share"] = round(float(np.mean([r["clipped_share"] for r in clipped])), 4)
    out["sdr_db"] = {
        k: round(float(np.mean([r["sdr"][k] for r in clipped])), 2) for k in clipped[0]["sdr"]
    }
    total = {m: sum(r["seconds"][m] for r in rows) for m in METHODS}
    out["seconds_per_file"] = {m: round(t / len(rows), 4) for m, t in total.items()}
    out["seconds_per_audio_second"] = {m: round(t / seconds_of_audio, 4) for m, t in total.items()}
    return out


@click.command()
@click.option("--corpus", "corpora", multiple=True, required=True, help="NAME:DIR, repeatable.")
@click.option("--gain", "gain_db", default=20.0, show_default=True, help="dB past the recording.")
@click.option("--limit", default=20, show_default=True, help="Files per corpus, spread evenly.")
@click.option("--out", default=str(HERE / "results" / "declip_sdr.json"), show_default=True)
def main(corpora: tuple[str, ...], gain_db: float, limit: int, out: str) -> None:
    result: dict = {
        "command": ["python", *sys.argv],
        "gain_db": gain_db,
        "corpora": {},
        "machine": machine_info(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    every: list[dict] = []
    audio_seconds = 0.0
    for spec in corpora:
        name, sep, folder = spec.partition(":")
        if not sep:
            raise click.BadParameter(f"{spec!r}: give NAME:DIR", param_hint="--corpus")
        paths = scan_corpus(name, folder).paths
        if not paths:
            raise click.ClickException(f"{folder}: no {name} file found")
        paths = paths[:: max(1, len(paths) // limit)][:limit]
        waves = [load_audio(p, sr=SAMPLE_RATE) for p in paths]
        seconds = sum(len(w) for w in waves) / SAMPLE_RATE
        rows = [measure(w, gain_db) for w in waves]
        result["corpora"][name] = summary(rows, seconds)
        every += rows
        audio_seconds += seconds
        print(f"{name}: {result['corpora'][name]}")
    result["all"] = summary(every, audio_seconds)
    atomic_write_text(Path(out), json.dumps(result, indent=2) + "\n")
    print(f"all: {result['all']}\nwrote {out}")


if __name__ == "__main__":
    main()
