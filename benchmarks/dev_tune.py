"""Development runs for choosing a recipe, without touching any test fold of the benchmark.

Trains on the training side of EmoBox fold 1 (20 actors) and scores on the validation actors that
:func:`emovox.data.protocols.validation_split` draws from that side. Fold 1's test actors (01, 11,
20, 21) are never read. Prints one JSON line per run: the final-epoch and best validation UA.

    python benchmarks/dev_tune.py --data ../shared/data/ravdess --model cnn \
        --train-param epochs=30 --feature-param n_mels=64
"""

from __future__ import annotations

import json
import time

import click
import torch

from emovox.apps.cli.options import parse_assignments, training_settings
from emovox.data.corpora import scan_corpus
from emovox.data.labels import resolve_labels
from emovox.data.protocols import make_folds
from emovox.features import FeatureCache
from emovox.inference.predict import crop_frames, predict_proba
from emovox.metrics import unweighted_accuracy
from emovox.train.dataset import load_dataset, speaker_subset, variant_options
from emovox.train.pipeline import fit
from emovox.train.recipe import Recipe


@click.command()
@click.option("--data", required=True)
@click.option("--model", default="cnn")
@click.option("--param", multiple=True)
@click.option("--feature-param", multiple=True)
@click.option("--train-param", multiple=True)
@click.option("--tag", default="")
@click.option("--threads", type=int, default=0, help="torch threads (0: torch's default)")
def main(data, model, param, feature_param, train_param, tag, threads) -> None:
    if threads:
        torch.set_num_threads(threads)
    manifest = scan_corpus("ravdess", data)
    scheme = resolve_labels("emotion")
    recipe = Recipe.for_model(
        model,
        params=parse_assignments(param),
        feature=parse_assignments(feature_param),
        training=training_settings(parse_assignments(train_param)),
    )
    feature, config = recipe.feature, recipe.training
    ds = load_dataset(
        manifest, scheme, feature, FeatureCache(), progress=False, **variant_options(config)
    )
    fold1 = make_folds(ds.manifest, "emobox")[0]
    t0 = time.time()
    net, result, val_speakers = fit(ds, fold1.train, recipe, progress=False)
    last = result.history[-1]
    # The selected model's validation UA when predicting on 1 (full length), 3, 5 or 10 windows.
    val = [i for i in fold1.train if ds.manifest[i].speaker in set(val_speakers)]
    vx, vy = speaker_subset(ds, val, config)
    crop = crop_frames(config.crop_seconds, ds.feature.hop_seconds or 0.01)
    by_crops = {
        n: round(
            100
            * unweighted_accuracy(
                vy, predict_proba(net, vx, 32, n, crop).argmax(1), len(ds.classes)
            ),
            2,
        )
        for n in (1, 3, 5, 10)
        if n == 1 or crop
    }
    print(
        json.dumps(
            {
                "tag": tag,
                "model": model,
                "params": parse_assignments(param),
                "feature": parse_assignments(feature_param),
                "train": parse_assignments(train_param),
                "val_speakers": val_speakers,
                "final_val_ua": round(last.get("val_ua", 0), 2),
                "best_val_ua": result.best_val_ua,
                "best_epoch": result.best_epoch,
                "seconds": round(time.time() - t0, 1),
                "val_ua_by_test_crops": by_crops,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
