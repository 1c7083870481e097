"""``emovox demo``: the whole pipeline on synthetic speech, with no user data.

Makes a small RAVDESS-named corpus of synthetic emotional speech, summarises it, trains the ``cnn``
model on seven speakers (validation speakers drawn from them), and predicts the emotions of the
recordings of an eighth speaker the model never heard. Last, the default model bundled with
emovox predicts a demo clip of synthetic sentences, segment by segment, as
``emovox demo-clip clip.wav && emovox predict clip.wav --segments --plot timeline.png`` does.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from emovox.data.corpora import scan_corpus
from emovox.data.labels import resolve_labels
from emovox.data.summary import print_summary
from emovox.data.synth import espeak_available, make_corpus, make_demo_clip
from emovox.inference.batch import render_predictions, render_segments
from emovox.inference.recognizer import Recognizer
from emovox.models import model_class
from emovox.train.config import TrainConfig
from emovox.train.pipeline import train
from emovox.train.recipe import Recipe

DEMO_EMOTIONS = ("neutral", "happy", "sad", "angry")
DEMO_PATIENCE = 10
"""Epochs without a better validation UA after which the demo's training stops."""


def run_demo(out: Path, progress: bool = True, epochs: int = 60, n_speakers: int = 8) -> dict:
    """Run the demo into ``out``.

    Returns how many of the unseen speaker's files were right (``correct``, ``total``), the
    trained ``model`` folder, and the bundled model's run on the demo clip (``clip``: its
    ``path``, ``segments`` found and the ``timeline`` PNG).
    """
    console = Console()
    out = Path(out)
    corpus = out / "corpus"
    engine = "espeak-ng" if espeak_available() else "numpy (install espeak-ng for real speech)"
    console.rule("1. a synthetic corpus")
    console.print(f"voice engine: {engine}")
    make_corpus(corpus, emotions=DEMO_EMOTIONS, n_speakers=n_speakers, repetitions=2)
    manifest = scan_corpus("ravdess", corpus)
    print_summary(manifest, console=console)

    held_out = f"Actor_{n_speakers:02d}"
    train_set = manifest.filter(lambda u: u.speaker != held_out)
    test_set = manifest.filter(lambda u: u.speaker == held_out)
    console.rule(f"2. train cnn on {len(train_set.speakers)} speakers")
    # early stopping on validation speakers held out of the training speakers
    config = TrainConfig.for_model(model_class("cnn"), epochs=epochs, patience=DEMO_PATIENCE)
    model_dir = train(
        train_set,
        resolve_labels(",".join(DEMO_EMOTIONS)),
        Recipe.for_model("cnn", training=config),
        out / "model",
        progress=progress,
        metadata={"command": ["emovox", "demo"]},
        overwrite=True,  # the demo's own model, remade with its corpus on every run
    )
    console.print(f"model saved in {model_dir}")

    console.rule(f"3. predict the unseen speaker {held_out}")
    rec = Recognizer.load(model_dir)
    preds = rec.predict_batch(test_set.paths)
    render_predictions(preds, rec.labels, "table")
    right = sum(p.label == u.label for p, u in zip(preds, test_set, strict=True))
    console.print(
        f"[bold]{right} of {len(preds)}[/bold] right on the unseen speaker "
        f"(chance: {100 / len(rec.labels):.0f} %)"
    )
    clip_result = _bundled_model_on_clip(out, console)
    return {"correct": right, "total": len(preds), "model": str(model_dir), "clip": clip_result}


def _bundled_model_on_clip(out: Path, console: Console) -> dict:
    """Step 4: the bundled default model on a demo clip, one prediction per speech segment."""
    from emovox.plots import plot_timeline

    console.rule("4. the bundled default model on a demo clip")
    clip = make_demo_clip(out / "clip.wav")
    console.print(
        f"{clip.path}: {clip.duration:.1f} s, {len(clip.sentences)} sentences ({clip.engine}); "
        f"the same as `emovox demo-clip {clip.path}` then "
        f"`emovox predict {clip.path} --segments --plot {out / 'timeline.png'}`"
    )
    rec = Recognizer.load()
    segments = rec.predict_segments(clip.path, vad="auto")
    render_segments({str(clip.path): segments}, {}, rec.labels, "table")
    timeline = plot_timeline(
        segments, rec.labels, out / "timeline.png", title=clip.path.name, duration=clip.duration
    )
    console.print(
        f"{len(segments)} segment(s), timeline in {timeline}. The bundled model learnt from "
        "acted human speech (RAVDESS); synthetic voices are new to it, so this shows the "
        "output, not its accuracy (see its MODEL_CARD.md)."
    )
    return {"path": str(clip.path), "segments": len(segments), "timeline": str(timeline)}
