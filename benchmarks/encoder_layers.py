"""Fill the feature cache with every layer of a pretrained encoder in one pass per clip.

``emovox evaluate --arch encoder-svm --feature-param layer=K`` reads one hidden state of the
encoder (``encoder-pooled``: its frames' mean and standard deviation over the utterance). Which
layer carries emotion best to corpora the training never heard is chosen on nested validation
(``--protocol loco-pairs``), one run per layer; extracting each layer on its own would run the
encoder once per layer and clip. This script runs it once per clip and stores the pooled state
of every layer in the cache, under exactly the key each ``--feature-param layer=K`` run looks
up, so those runs start at the SVM. With ``--condition`` (as ``emovox evaluate`` spells it) the
changed copies of the test conditions are stored too, and with ``--augment KINDS
--augment-copies N --seed S`` the augmented training copies that ``--train-param augment=KINDS
--train-param augment_copies=N --train-param seed=S`` asks for. ``--up-to K`` keeps the states
0..K only and stops the encoder there (Whisper's layers above are not run). ``--join 2,3``
also stores the feature of ``--feature-param layers=2,3`` (several layers side by side;
``--join 1,2,3,4:mean`` averaged, as ``combine=mean``), built from the cached single layers
without running the encoder again.

Resumable (what is cached is skipped) and shardable (``--shard I/N`` takes every N-th file
from the I-th; run N processes side by side)::

    python benchmarks/encoder_layers.py --encoder /work/encoders/whisper-base \\
        --train ravdess:../shared/data/ravdess --train emodb:../corpora/emodb ... \\
        --cache-dir /tmp/fcache-loco [--condition gain:20 ...] [--join 2,3 ...] [--shard 0/2] \\
        [--up-to 3] [--augment noise,gain,telephone --augment-copies 1 --seed 0] \\
        [--level rms] [--denoise wiener] [--declip sparse]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

import click

from emovox.apps.cli.options import load_specs
from emovox.audio import AudioError
from emovox.augment import WaveTransform, augment_transform, condition_transform
from emovox.evaluate.conditions import parse_conditions
from emovox.features import FeatureCache, make_feature
from emovox.features.encoder import Encoder, encoder_shape, locate_encoder
from emovox.progress import progress_bar


def layer_features(
    encoder: str,
    pooling: str = "meanstd",
    up_to: int | None = None,
    settings: Mapping[str, object] | None = None,
) -> list[Encoder]:
    """One ``encoder-pooled`` feature per hidden state of ``encoder`` (0: the front end), or per
    state ``0..up_to``, each with the feature ``settings`` given (the waveform's ``level``,
    ``denoise``, ``declip``: as the feature's parameters).

    Raises:
        ValueError: ``up_to`` is not one of the encoder's states.
    """
    n = encoder_shape(locate_encoder(encoder)).n_layers + 1
    if up_to is not None:
        if not 0 <= up_to < n:
            raise ValueError(f"--up-to {up_to}: the encoder has hidden states 0-{n - 1}")
        n = up_to + 1
    return [
        make_feature(
            "encoder-pooled", path=encoder, layer=k, pooling=pooling, **(settings or {})
        )
        for k in range(n)
    ]


def joined_features(
    encoder: str,
    joins: Sequence[str],
    pooling: str = "meanstd",
    settings: Mapping[str, object] | None = None,
) -> list[Encoder]:
    """One ``encoder-pooled`` feature per ``--join`` comma list of layers (``LAYERS:mean``:
    averaged, ``combine=mean``; else side by side), each with the feature ``settings``."""
    out = []
    for spec in joins:
        layers, _, combine = spec.partition(":")
        out.append(
            make_feature(
                "encoder-pooled", path=encoder, layers=layers, combine=combine or "stack",
                pooling=pooling, **(settings or {}),
            )
        )  # fmt: skip
    return out


def fill(
    features: Sequence[Encoder],
    paths: Sequence[str],
    cache: FeatureCache,
    condition: str | WaveTransform | None = None,
    progress: bool = True,
    joined: Sequence[Encoder] = (),
) -> dict[str, str]:
    """Cache every feature of ``features`` (one per state ``0..K``, :func:`layer_features`) for
    every path (under the variant of ``condition``, a test condition as ``--condition`` spells
    it or any waveform transform, when given), then each feature of ``joined`` from them;
    returns the files that could not be read, with the reason."""
    transform = condition
    if isinstance(condition, str):
        transform = condition_transform(parse_conditions([condition])[-1])
    variant = transform.variant if transform is not None else ""
    todo = [p for p in paths if any(cache.get(f, p, variant) is None for f in features)]
    base, errors = features[0], {}
    label = f"encoder layers ({variant or 'clean'})"
    with progress_bar(len(todo), label, enabled=progress and bool(todo)) as bar:
        for path in todo:
            try:
                wave = base.load(path)
                clipped = 0
                if transform is not None:
                    wave, clipped = transform(wave, base.sample_rate, path)
            except AudioError as exc:
                errors[path] = exc.reason
                bar.advance(1)
                continue
            states = base.every_layer(base.front([wave])[0], up_to=len(features) - 1)
            info = {"clipped": int(clipped)} if transform is not None else None
            for feature in features:
                value = feature.from_states(feature.select(states))
                cache.put(feature, path, value, variant, info)
            bar.advance(1)
    for feature in joined:
        join(feature, features, [p for p in paths if p not in errors], cache, variant)
    return errors


def join(
    feature: Encoder,
    singles: Sequence[Encoder],
    paths: Sequence[str],
    cache: FeatureCache,
    variant: str = "",
) -> int:
    """Cache ``feature`` (several layers) for each path from the cached single-layer features
    ``singles`` (as :func:`layer_features` gives them); returns how many were added. A path
    lacking a single layer is left out."""
    parts = [singles[k] for k in feature.layer_indices()]
    added = 0
    for path in paths:
        if cache.get(feature, path, variant) is not None:
            continue
        summaries = [cache.get(f, path, variant) for f in parts]
        if any(s is None for s in summaries):
            continue
        cache.put(
            feature, path, feature.combine_summaries(summaries), variant,
            cache.info(parts[0], path, variant) if variant else None,
        )  # fmt: skip
        added += 1
    return added


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", required=True, help="the encoder's folder")
    ap.add_argument("--train", action="append", required=True, help="CORPUS:PATH (repeat)")
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--condition", action="append", default=[], help="as emovox evaluate")
    ap.add_argument("--pooling", default="meanstd")
    ap.add_argument("--level", default="recorded", help="as the feature's level: recorded, rms")
    ap.add_argument("--denoise", default="", help="as the feature's denoise: wiener (default off)")
    ap.add_argument("--declip", help="as the feature's declip, by this method (default off)")
    ap.add_argument(
        "--join", action="append", default=[], help="also cache LAYERS[:mean], e.g. 2,3"
    )
    ap.add_argument("--up-to", type=int, help="cache the states 0..K only (K: the last)")
    ap.add_argument("--augment", default="", help="training copies: KINDS, as the train-param")
    ap.add_argument("--augment-copies", type=int, default=0, help="as the train-param")
    ap.add_argument("--seed", type=int, default=0, help="as the train-param (the copies' draws)")
    ap.add_argument("--shard", default="0/1", help="I/N: every N-th file from the I-th")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    index, _, count = args.shard.partition("/")
    index, count = int(index), int(count or 1)
    if not 0 <= index < count:
        ap.error(f"--shard {args.shard}: I must be in 0..N-1")
    try:
        manifest = load_specs(args.train)  # the files `emovox evaluate --train` reads
    except click.UsageError as exc:
        ap.error(exc.format_message())
    paths = manifest.paths[index::count]
    try:
        settings: dict = {"level": args.level, "denoise": args.denoise}
        if args.declip:
            settings.update(declip=True, declip_method=args.declip)
        features = layer_features(args.encoder, args.pooling, args.up_to, settings)
        joined = joined_features(args.encoder, args.join, args.pooling, settings)
        outside = [j.layers for j in joined if max(j.layer_indices()) >= len(features)]
        if outside:
            raise ValueError(f"--join {outside[0]} reads states above --up-to {args.up_to}")
        copies = [
            augment_transform(args.augment, args.seed, copy)
            for copy in range(args.augment_copies if args.augment else 0)
        ]
    except ValueError as exc:
        ap.error(str(exc))
    cache = FeatureCache(args.cache_dir)
    for condition in [None, *args.condition, *copies]:
        errors = fill(features, paths, cache, condition, not args.quiet, joined)
        for path, why in errors.items():
            print(f"{path}: skipped ({why})", file=sys.stderr)
    print(
        f"{len(paths)} files, {len(features)} layers and {len(joined)} joins cached in "
        f"{args.cache_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
