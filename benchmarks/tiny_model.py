"""The tiny model of the serving benchmarks: the test suite's ``trained_bundle`` recipe.

A ``cnn`` with channels [4, 8, 8, 8], trained 3 epochs (batches of 8) on the synthetic corpus
(4 speakers x 4 emotions x 2 sentences, numpy "speech"). It measures the plumbing (server, live
path), not accuracy: a real model costs more per inference.

    python benchmarks/tiny_model.py OUT_DIR
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from emovox.train.recipe import Recipe

TINY_RECIPE = "cnn channels=[4,8,8,8], 3 epochs, batch 8, synthetic corpus 4 spk x 4 emo x 2 sent"


def train_tiny(out: str | Path) -> Path:
    """Train the tiny model into ``out`` (a bundle folder) and return it."""
    from emovox.data.corpora import scan_corpus
    from emovox.data.labels import resolve_labels
    from emovox.data.synth import make_corpus
    from emovox.models import model_class
    from emovox.train.config import TrainConfig
    from emovox.train.pipeline import train

    emotions = ("neutral", "happy", "sad", "angry")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        make_corpus(root, emotions=emotions, n_speakers=4, repetitions=1, engine="numpy")
        cfg = TrainConfig.for_model(model_class("cnn"), epochs=3, batch_size=8)
        return train(
            scan_corpus("ravdess", root),
            resolve_labels(",".join(emotions)),
            Recipe.for_model("cnn", training=cfg, params={"channels": [4, 8, 8, 8]}),
            Path(out),
            progress=False,
        )


if __name__ == "__main__":
    print(train_tiny(sys.argv[1]))
