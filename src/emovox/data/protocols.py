"""Evaluation protocols: how utterances are split into folds.

Every protocol except ``random`` is speaker-independent: no speaker is on both sides of a fold.
Validation speakers for early stopping are drawn from each fold's training side
(:func:`validation_split`), so nothing about the test speakers steers any choice.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np

from emovox.data.manifest import Manifest

EMOBOX_RAVDESS_FOLDS: tuple[tuple[int, ...], ...] = (
    (1, 11, 20, 21),
    (4, 10, 12, 14),
    (8, 9, 19, 23),
    (3, 5, 7, 24),
    (2, 15, 16, 18),
    (6, 13, 17, 22),
)
"""Test actors of the EmoBox 6-fold speaker-independent split of RAVDESS (Ma et al., 2024)."""

PROTOCOLS = ("emobox", "loso", "loco", "loco-pairs", "sessions", "speakers-kfold", "random")

LOCO_PAIRS = "loco-pairs"
"""Leave two corpora out: the nested validation of a ``loco`` run (:func:`corpus_pair_folds`)."""


class SpeakerLeakWarning(UserWarning):
    """A split that puts the same speaker in training and test (accuracy is inflated)."""


@dataclasses.dataclass(frozen=True)
class Fold:
    """One train/test split: indices into the manifest, the test speakers and, when the test
    side is whole corpora (cross-corpus), their names.

    A ``dimensions_only`` fold tests a corpus that has no class of the label scheme, only
    arousal or valence (BAVED's levels under 7 emotions): it is scored on the dimensions head
    alone, never on classes."""

    index: int
    train: tuple[int, ...]
    test: tuple[int, ...]
    test_speakers: tuple[str, ...]
    test_corpora: tuple[str, ...] = ()
    dimensions_only: bool = False


def make_folds(
    manifest: Manifest, protocol: str, k: int | None = None, seed: int = 0
) -> list[Fold]:
    """Split ``manifest`` into folds.

    Args:
        protocol: ``emobox`` (RAVDESS's six folds of actors; other corpora in the manifest
            are on the training side of every fold), ``loso`` (leave one speaker out),
            ``loco`` (leave one corpus out: one fold per corpus, trained on the others),
            ``loco-pairs`` (leave two corpora out: :func:`corpus_pair_folds`),
            ``sessions``
            (leave one session out: IEMOCAP, whose sessions group its speakers),
            ``speakers-kfold`` (``k`` speaker-disjoint folds) or ``random`` (``k`` stratified
            utterance-level folds; speakers leak, a :class:`SpeakerLeakWarning` says so).
        k: number of folds for ``speakers-kfold`` and ``random`` (default 5).

    A row without a label (kept for the dimensions head only) is never tested on classes: it
    stays on the training side of the folds that do not test its speaker, and is left out of
    the others (it would bring a test speaker, or a left-out corpus, into training). A
    speaker fold that would test only such rows is left out (the others are numbered on); a
    corpus fold of ``loco`` that would (a corpus with arousal levels and no class) becomes a
    ``dimensions_only`` fold, numbered after the folds scored on classes.
    """
    return _untested_unlabelled(manifest, _folds(manifest, protocol, k, seed))


def _untested_unlabelled(manifest: Manifest, folds: list[Fold]) -> list[Fold]:
    unlabelled = {i for i, u in enumerate(manifest) if not u.label}
    if not unlabelled:
        return folds
    scored: list[Fold] = []
    dimensional: list[Fold] = []
    for fold in folds:
        test = tuple(i for i in fold.test if i not in unlabelled)
        if test:
            scored.append(dataclasses.replace(fold, index=len(scored) + 1, test=test))
        elif fold.test_corpora:
            dimensional.append(dataclasses.replace(fold, dimensions_only=True))
    return scored + [
        dataclasses.replace(f, index=len(scored) + n) for n, f in enumerate(dimensional, 1)
    ]


def _folds(manifest: Manifest, protocol: str, k: int | None, seed: int) -> list[Fold]:
    speakers = np.array([u.speaker for u in manifest])
    if protocol == "emobox":
        corpora = {u.corpus for u in manifest}
        if "ravdess" not in corpora:
            raise ValueError(
                f"the emobox protocol is defined for RAVDESS (its folds of actors), got "
                f"{sorted(corpora)}"
            )
        groups = [[f"Actor_{a:02d}" for a in actors] for actors in EMOBOX_RAVDESS_FOLDS]
        speakers = np.array([u.speaker if u.corpus == "ravdess" else "" for u in manifest])
    elif protocol == "loso":
        groups = [[s] for s in sorted(set(speakers))]
    elif protocol == "sessions":
        sessions = {u.fields.get("session", "") for u in manifest}
        if "" in sessions:
            raise ValueError(
                "the sessions protocol needs a session on every utterance (IEMOCAP's "
                "fields['session']); use loso or speakers-kfold for other corpora"
            )
        groups = [
            sorted({u.speaker for u in manifest if u.fields["session"] == s})
            for s in sorted(sessions)
        ]
    elif protocol == "loco":
        return corpus_folds(manifest)
    elif protocol == LOCO_PAIRS:
        return corpus_pair_folds(manifest)
    elif protocol == "speakers-kfold":
        groups = _speaker_groups(manifest, k or 5, seed)
    elif protocol == "random":
        warnings.warn(
            "the random protocol splits utterances, not speakers: the same speakers are in "
            "training and test and the accuracy is inflated; do not report it as a headline",
            SpeakerLeakWarning,
            stacklevel=2,
        )
        return _random_folds(manifest, k or 5, seed)
    else:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    folds = []
    for i, group in enumerate(groups, 1):
        test_mask = np.isin(speakers, group)
        if not test_mask.any():
            raise ValueError(f"fold {i}: none of the test speakers {group} is in the data")
        folds.append(
            Fold(
                index=i,
                train=tuple(np.flatnonzero(~test_mask).tolist()),
                test=tuple(np.flatnonzero(test_mask).tolist()),
                test_speakers=tuple(sorted(group)),
            )
        )
    return folds


def corpus_folds(manifest: Manifest) -> list[Fold]:
    """Leave one corpus out: one fold per corpus (in name order), trained on all the others.

    Raises:
        ValueError: fewer than two corpora.
    """
    corpora = np.array([u.corpus for u in manifest])
    names = sorted(set(corpora.tolist()))
    if len(names) < 2:
        raise ValueError(
            f"the loco protocol needs at least two corpora (--train C:PATH --train C:PATH ...), "
            f"got {names}"
        )
    folds = []
    for i, name in enumerate(names, 1):
        test = np.flatnonzero(corpora == name)
        speakers = sorted({manifest[int(j)].speaker for j in test})
        train = tuple(np.flatnonzero(corpora != name).tolist())
        folds.append(Fold(i, train, tuple(test.tolist()), tuple(speakers), (name,)))
    return folds


def corpus_pair_folds(manifest: Manifest) -> list[Fold]:
    """Leave two corpora out: one fold per pair of corpora with classes (pairs in name order),
    trained on all the others, corpora without a class included, and tested on both.

    This is the nested validation of ``loco``: a choice made for the fold that leaves corpus
    ``k`` out may be judged by the folds that leave ``k`` and a partner ``j`` out, scored on
    ``j``, since neither ``k``'s clips nor its labels take part in them; each training corpus
    thus stands in, in turn, for a corpus never heard. ``--folds`` runs a subset (a cycle
    of pairs gives every corpus two partners for as many trainings as there are corpora).

    Raises:
        ValueError: fewer than three corpora with classes.
    """
    corpora = np.array([u.corpus for u in manifest])
    names = sorted({u.corpus for u in manifest if u.label})
    if len(names) < 3:
        raise ValueError(
            f"the {LOCO_PAIRS} protocol needs at least three corpora with classes, got {names}"
        )
    folds = []
    for i, pair in enumerate(itertools.combinations(names, 2), 1):
        held = np.isin(corpora, pair)
        test = np.flatnonzero(held)
        speakers = sorted({manifest[int(j)].speaker for j in test})
        train = tuple(np.flatnonzero(~held).tolist())
        folds.append(Fold(i, train, tuple(test.tolist()), tuple(speakers), pair))
    return folds


def _speaker_groups(manifest: Manifest, k: int, seed: int) -> list[list[str]]:
    """Deal speakers into ``k`` groups, balancing gender and utterance counts."""
    speakers = manifest.speakers
    if k < 2 or k > len(speakers):
        raise ValueError(f"speakers-kfold needs 2 <= K <= {len(speakers)} speakers, got K={k}")
    counts = manifest.counts("speaker")
    gender = {u.speaker: u.gender for u in manifest}
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(speakers))
    order.sort(key=lambda s: (gender[s], -counts[s]))  # stable: random within ties
    groups: list[list[str]] = [[] for _ in range(k)]
    loads = [0] * k
    for g in sorted(set(gender.values())):
        for s in [s for s in order if gender[s] == g]:
            j = min(range(k), key=lambda j: (loads[j], len(groups[j])))
            groups[j].append(s)
            loads[j] += counts[s]
    return groups


def _random_folds(manifest: Manifest, k: int, seed: int) -> list[Fold]:
    from sklearn.model_selection import StratifiedKFold

    labels = [u.label for u in manifest]
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = []
    for i, (tr, te) in enumerate(skf.split(np.zeros(len(labels)), labels), 1):
        folds.append(Fold(i, tuple(tr.tolist()), tuple(te.tolist()), ()))
    return folds


def validation_split(
    manifest: Manifest, indices: list[int] | tuple[int, ...], fraction: float = 0.2, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Split ``indices`` into train and validation parts by speaker (never by utterance).

    About ``fraction`` of the speakers (at least one, balanced across genders when known) go to
    validation. With a single speaker there is nothing to split: validation is empty. Rows
    without a label (for the dimensions head only) always train, and the validation speakers
    are drawn among the labelled rows' speakers, so adding such rows leaves them as they were.
    """
    labelled = [i for i in indices if manifest[i].label]
    speakers = sorted({manifest[i].speaker for i in labelled})
    if len(speakers) < 2 or fraction <= 0:
        return list(indices), []
    gender = {manifest[i].speaker: manifest[i].gender for i in labelled}
    rng = np.random.default_rng(seed)
    n_val = min(len(speakers) - 1, max(1, round(len(speakers) * fraction)))
    by_gender: dict[str, list[str]] = {}
    for s in rng.permutation(speakers):
        by_gender.setdefault(gender[str(s)], []).append(str(s))
    chosen: list[str] = []
    pools = [by_gender[g] for g in sorted(by_gender)]
    while len(chosen) < n_val:
        for pool in pools:
            if pool and len(chosen) < n_val:
                chosen.append(pool.pop(0))
    val_set = set(chosen)
    train = [i for i in indices if manifest[i].speaker not in val_set or not manifest[i].label]
    val = [i for i in indices if manifest[i].speaker in val_set and manifest[i].label]
    return train, val
