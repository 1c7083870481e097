"""Datasets of features: a manifest under a label scheme, its features extracted (cached) and
the augmented variants the training settings ask for; subsets normalised per speaker."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from emovox.augment import augment_transform
from emovox.data.labels import NO_CLASS, LabelScheme, relabel
from emovox.data.manifest import Manifest
from emovox.features import Feature, FeatureCache, extract_files
from emovox.features.normalization import normalize_by_speaker
from emovox.train.config import TrainConfig


class BadFilesWarning(UserWarning):
    """Some files could not be read and were skipped."""


@dataclasses.dataclass
class Dataset:
    """Features ready for training: one array ``[S, F, T]`` and one class index per utterance."""

    manifest: Manifest
    features: list[np.ndarray]
    y: np.ndarray
    classes: list[str]
    feature: Feature
    errors: dict[str, str]
    dropped: int = 0
    extract_seconds: float = 0.0
    variants: list[list[np.ndarray]] = dataclasses.field(default_factory=list)
    cache: FeatureCache | None = None
    """Where the features were cached (other features of the same files, e.g. a teacher's, are
    cached there too)."""

    def subset(self, indices: Sequence[int], augmented: bool = False) -> tuple[list, np.ndarray]:
        """Features and labels of ``indices``; with ``augmented``, each item is a tuple of the
        original and its augmented variants (the trainer picks one per epoch)."""
        if augmented and self.variants:
            items = [(self.features[i], *self.variants[i]) for i in indices]
        else:
            items = [self.features[i] for i in indices]
        return items, self.y[list(indices)]


def load_dataset(
    manifest: Manifest,
    scheme: LabelScheme,
    feature: Feature,
    cache: FeatureCache | None = None,
    progress: bool = True,
    workers: int = 2,
    speeds: Sequence[float] = (),
    augment: Sequence[str] = (),
    augment_copies: int = 0,
    augment_seed: int = 0,
    variants_of: Collection[str] | None = None,
    dimension_rows: bool = False,
) -> Dataset:
    """Apply the label scheme and extract features; unreadable files are warned of and skipped.

    With ``dimension_rows`` (a model trained with the dimensions head), a row the scheme drops
    but whose arousal or valence is known (BAVED's arousal levels, EmoDB's boredom on the
    circumplex) is kept without a class (``y`` is -1, its label empty, its own label in
    ``fields["source_label"]``): it teaches the dimensions head only, and the evaluation
    protocols keep it on the training side (:data:`NO_CLASS`).

    Each of ``speeds`` and each of the ``augment_copies`` randomly augmented copies (``augment``
    kinds, :func:`emovox.augment.augment_transform` with ``augment_seed``) adds one variant per
    file to :attr:`Dataset.variants`; only training items use them (:meth:`Dataset.subset`), so
    ``variants_of`` (file paths) limits them to the files that some fold trains on.
    """
    kept, dropped = scheme.apply(manifest)
    if not len(kept):
        raise ValueError(
            f"no utterance is left after applying the labels {scheme.name!r} "
            f"(the data's labels: {manifest.labels})"
        )
    if dimension_rows:
        extra = dimension_only_rows(manifest, scheme)
        kept, dropped = Manifest([*kept, *extra]), dropped - len(extra)
    t0 = time.time()
    feats, errors = extract_files(
        feature, kept.paths, cache=cache, progress=progress, workers=workers
    )
    if errors:
        listed = "\n  ".join(f"{p}: {r}" for p, r in list(errors.items())[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        warnings.warn(
            f"skipped {len(errors)} unreadable file(s):\n  {listed}{more}",
            BadFilesWarning,
            stacklevel=2,
        )
    wanted = [i for i, p in enumerate(kept.paths) if variants_of is None or p in variants_of]
    paths = [kept.paths[i] for i in wanted]
    options = {"cache": cache, "progress": progress, "workers": workers}
    extra = []
    for speed in speeds:
        extra.append(_spread(extract_files(feature, paths, speed=speed, **options)[0], wanted))
    for copy in range(augment_copies if augment else 0):
        transform = augment_transform(augment, augment_seed, copy)
        more, _ = extract_files(feature, paths, transform=transform, **options)
        extra.append(_spread(more, wanted))
    seconds = time.time() - t0
    ok = [i for i, f in enumerate(feats) if f is not None]
    variants = [[m[i] for m in extra if m.get(i) is not None] for i in ok]
    kept = kept.take(ok)
    index = {c: i for i, c in enumerate(scheme.classes)}
    y = np.array([index.get(u.label, NO_CLASS) for u in kept], dtype=int)
    return Dataset(
        kept,
        [feats[i] for i in ok],
        y,
        list(scheme.classes),
        feature,
        errors,
        dropped,
        seconds,
        variants,
        cache,
    )


def dimension_only_rows(manifest: Manifest, scheme: LabelScheme) -> list:
    """The rows ``scheme`` drops whose arousal or valence is known, without a label."""
    from emovox.train.aux import has_dimension_target

    rows = []
    for u in manifest:
        if scheme.target_of(u) is None and has_dimension_target(u):
            rows.append(relabel(u, ""))
    return rows


def _spread(values: list, wanted: list[int]) -> dict[int, np.ndarray | None]:
    """Values computed for the items ``wanted``, by item index."""
    return dict(zip(wanted, values, strict=True))


def variant_options(config: TrainConfig) -> dict:
    """The :func:`load_dataset` arguments that ``config`` asks for: the training variants
    (speed perturbation and augmented copies), and the rows without a class that teach the
    dimensions head."""
    return {
        "speeds": config.speed_perturb,
        "augment": config.augment,
        "augment_copies": config.augment_copies,
        "augment_seed": config.seed,
        "dimension_rows": config.keeps_dimension_rows,
    }


def data_fingerprint(manifest: Manifest) -> str:
    """A SHA-256 over the training files' names, sizes and labels (order-independent)."""
    rows = []
    for u in manifest:
        try:
            size = os.path.getsize(u.path)
        except OSError:
            size = -1
        rows.append(f"{Path(u.path).name}|{size}|{u.label}|{u.speaker}")
    return hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()


def speaker_subset(
    data: Dataset,
    indices: Sequence[int],
    config: TrainConfig,
    augmented: bool = False,
    per_utterance: bool = False,
) -> tuple[list, np.ndarray]:
    """:meth:`Dataset.subset`, normalised per speaker when ``config.speaker_norm`` is on (each
    speaker's statistics from its own utterances among ``indices`` only); with
    ``per_utterance`` each utterance by its own statistics instead, as the recognizer does for
    one clip of an unknown speaker."""
    items, y = data.subset(indices, augmented=augmented)
    if config.speaker_norm:
        groups = (
            [f"#{i}" for i in indices]
            if per_utterance
            else [data.manifest[i].speaker for i in indices]
        )
        items = normalize_by_speaker(items, groups)
    return items, y
