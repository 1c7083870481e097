"""Does a model follow the microphone's volume? Predictions on audio scaled by fixed gains.

Every file is read once, scaled by each gain (clipped to [-1, 1] as a real recording would be; the
clipped samples are counted), and predicted; the result is the share of files whose label equals
the label of the unscaled audio, and the UA against the true labels at each gain.

    python benchmarks/gain_invariance.py --data ../shared/data/ravdess [--model MODEL_DIR] \
        [--corpus NAME] [--gains -20,-10,10,20] [--declip sparse|spline] [--limit N] \
        [--out benchmarks/results/gain_invariance.json]

Without ``--model`` the default model bundled with emovox is measured. ``--declip`` measures the
model as ``emovox predict --declip`` runs it (clipped runs redrawn before the features);
``--limit`` keeps N files spread evenly over the corpus (every k-th in manifest order).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click
import numpy as np

from emovox._fs import atomic_write_text
from emovox.data.corpora import scan_corpus
from emovox.evaluate.runner import machine_info
from emovox.features.declip import METHODS
from emovox.inference.recognizer import Recognizer
from emovox.metrics import unweighted_accuracy

HERE = Path(__file__).parent


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True))
@click.option("--corpus", default="ravdess", show_default=True)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True),
    help="Model folder (default: the bundled default model).",
)
@click.option("--gains", default="-20,-10,10,20", show_default=True, help="dB, comma-separated.")
@click.option(
    "--declip", type=click.Choice(METHODS), help="Redraw clipped runs first."
)
@click.option("--limit", type=int, default=0, help="At most this many files, spread evenly.")
@click.option("--out", default=str(HERE / "results" / "gain_invariance.json"), show_default=True)
def main(
    data: str, corpus: str, model_dir: str, gains: str, declip: str | None, limit: int, out: str
) -> None:
    if model_dir is None:
        from emovox.pretrained import default_model_path

        model_dir = str(default_model_path())
    rec = Recognizer.load(model_dir, declip=declip)
    manifest = scan_corpus(corpus, data)
    manifest = manifest.filter(lambda u: u.label in rec.labels)
    if not len(manifest):
        raise click.ClickException(f"{data}: no file of {corpus} has one of {rec.labels}")
    if limit and len(manifest) > limit:
        keep = set(manifest.paths[:: len(manifest) // limit][:limit])
        manifest = manifest.filter(lambda u: u.path in keep)
    waves = [rec.feature.load(u.path) for u in manifest]
    truth = np.array([rec.labels.index(u.label) for u in manifest])
    index = {c: i for i, c in enumerate(rec.labels)}

    names = manifest.paths

    def labels_at(gain_db: float) -> tuple[np.ndarray, int, int]:
        factor = 10 ** (gain_db / 20)
        scaled = [w * factor for w in waves]
        over = [int(np.count_nonzero(np.abs(s) > 1.0)) for s in scaled]
        scaled = [np.clip(s, -1.0, 1.0) for s in scaled]
        preds = rec.predict_waveforms(scaled, names)
        return np.array([index[p.label] for p in preds]), sum(over), sum(n > 0 for n in over)

    base, base_clipped, base_files = labels_at(0.0)
    rows = [
        {
            "gain_db": 0.0,
            "agreement": 100.0,
            "clipped_samples": base_clipped,
            "files_clipped": base_files,
            "ua": 100 * unweighted_accuracy(truth, base, len(rec.labels)),
        }
    ]
    for g in (float(x) for x in gains.split(",")):
        pred, clipped, files = labels_at(g)
        rows.append(
            {
                "gain_db": g,
                "agreement": 100 * float(np.mean(pred == base)),
                "clipped_samples": clipped,
                "files_clipped": files,
                "ua": 100 * unweighted_accuracy(truth, pred, len(rec.labels)),
            }
        )
        print(
            f"{g:+5.0f} dB: agreement {rows[-1]['agreement']:.1f} %, UA {rows[-1]['ua']:.1f} %, "
            f"{files} files clipped ({clipped} samples)"
        )
    result = {
        "command": ["python", *sys.argv],
        "model": str(model_dir),
        "corpus": corpus,
        "declip": declip,
        "files": len(manifest),
        "note": "UA here is on the model's own training data when the model was trained on it: "
        "read the agreement, not the UA",
        "rows": rows,
        "machine": machine_info(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
