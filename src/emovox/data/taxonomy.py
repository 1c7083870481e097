"""One emotion taxonomy: the canonical labels, and every corpus's own codes mapped onto them.

Every corpus module writes the canonical label into a manifest row's ``label`` and keeps the
corpus's own code in ``fields["code"]``. The whole mapping lives in :data:`CORPUS_CODES`, one
table, so that what "happy" means in a cross-corpus run can be read in one place.

A cross-corpus run picks a common subset of the canonical labels (``--labels
angry,happy,neutral,sad``, or :func:`common_labels` of the corpora); utterances outside it are
dropped and counted per corpus (:func:`dropped_by_corpus`).

Loudness, sample rate and channels
----------------------------------
Corpora differ in recording level (TESS and SAVEE are much louder than EmoDB), sample rate (16 kHz
EmoDB and IEMOCAP, 24.4 kHz TESS, 44.1 kHz SAVEE, 48 kHz RAVDESS) and channel count. These
differences are handled in one place for every corpus, with no per-corpus code:
:func:`emovox.audio.load_audio` reads every file as float32 mono (channels averaged) resampled
with soxr to the feature's rate (16 kHz by default), and the log-mel feature of the ``cnn`` model
normalises each utterance to zero mean and unit variance (``normalize="utterance"``; MFCC features
use per-utterance CMVN), which removes the overall recording level. ``tutorial-cnn1d``'s MFCC
feature follows the reference tutorial and is not level-normalised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from emovox.data.manifest import Manifest

if TYPE_CHECKING:
    from emovox.data.labels import LabelScheme

CANONICAL: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
    "frustrated",
    "other",
)
"""The canonical emotion labels, in display order (RAVDESS's eight first)."""

CORPUS_CODES: dict[str, dict[str, str]] = {
    # RAVDESS: the emotion field of MM-VV-EE-II-SS-RR-AA.
    "ravdess": {
        "01": "neutral",
        "02": "calm",
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "fearful",
        "07": "disgust",
        "08": "surprised",
    },
    # EmoDB: the German emotion letter (Ärger, Langeweile, Ekel, Angst, Freude, Trauer, neutral).
    "emodb": {
        "W": "angry",
        "L": "boredom",
        "E": "disgust",
        "A": "fearful",
        "F": "happy",
        "T": "sad",
        "N": "neutral",
    },
    # TESS: the last word of the file name; ps = pleasant surprise.
    "tess": {
        "angry": "angry",
        "disgust": "disgust",
        "fear": "fearful",
        "happy": "happy",
        "neutral": "neutral",
        "ps": "surprised",
        "sad": "sad",
    },
    # SAVEE: the letters before the sentence number.
    "savee": {
        "a": "angry",
        "d": "disgust",
        "f": "fearful",
        "h": "happy",
        "n": "neutral",
        "sa": "sad",
        "su": "surprised",
    },
    # CREMA-D: the third field of ActorID_Sentence_Emotion_Level.
    "cremad": {
        "ANG": "angry",
        "DIS": "disgust",
        "FEA": "fearful",
        "HAP": "happy",
        "NEU": "neutral",
        "SAD": "sad",
    },
    # IEMOCAP: the categorical label of the EmoEvaluation files; excited is merged into happy
    # (the common 4-class set neutral/happy/sad/angry). xxx (no majority) has no label.
    "iemocap": {
        "neu": "neutral",
        "hap": "happy",
        "exc": "happy",
        "sad": "sad",
        "ang": "angry",
        "fru": "frustrated",
        "sur": "surprised",
        "fea": "fearful",
        "dis": "disgust",
        "oth": "other",
    },
    # URDU: the emotion folder.
    "urdu": {
        "Angry": "angry",
        "Happy": "happy",
        "Neutral": "neutral",
        "Sad": "sad",
    },
    # nEMO: the emotion column of data.tsv.
    "nemo": {
        "anger": "angry",
        "fear": "fearful",
        "happiness": "happy",
        "neutral": "neutral",
        "sadness": "sad",
        "surprised": "surprised",
    },
    # ASED: the emotion letter of xn-yy-aa-gg-bb.
    "ased": {
        "n": "neutral",
        "f": "fearful",
        "h": "happy",
        "s": "sad",
        "a": "angry",
    },
}
"""Corpus name -> the corpus's own emotion code -> canonical label. The one mapping table."""

AROUSAL_LEVELS: tuple[str, ...] = ("low", "normal", "high")
"""The arousal target's classes, in order."""

AROUSAL: dict[str, str] = {
    "angry": "high",
    "fearful": "high",
    "happy": "high",
    "surprised": "high",
    "frustrated": "high",
    "disgust": "normal",
    "neutral": "normal",
    "sad": "low",
    "calm": "low",
    "boredom": "low",
}
"""Where each canonical emotion sits on the arousal axis of the circumplex (Russell, 1980): the
aroused, active emotions high; neutral and disgust (rated near the middle of the arousal scale in
the acted corpora) normal; sadness, calm and boredom low. ``other`` has no arousal. Corpora that
label arousal directly (BAVED's levels) use :data:`CORPUS_AROUSAL` instead."""

CORPUS_AROUSAL: dict[str, dict[str, str]] = {
    # BAVED: the level field of speaker-gender-age-word-level-record: 0 low (tired, down),
    # 1 neutral (everyday speech), 2 high (strong positive or negative emotion).
    "baved": {"0": "low", "1": "normal", "2": "high"},
}
"""Corpus name -> its own arousal code -> arousal level, for corpora labelled with arousal rather
than emotion categories. Their rows have no emotion ``label`` and keep the level in
``fields["arousal"]``."""

DIMENSIONS: tuple[str, ...] = ("arousal", "valence")
"""The continuous affect dimensions every prediction of a model trained with ``dimensions``
carries, each a score in [-1, 1]."""

CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "angry": (0.8, -0.6),
    "fearful": (0.6, -0.7),
    "surprised": (0.7, 0.3),
    "happy": (0.5, 0.8),
    "frustrated": (0.5, -0.5),
    "disgust": (0.2, -0.7),
    "neutral": (0.0, 0.0),
    "calm": (-0.6, 0.4),
    "sad": (-0.5, -0.7),
    "boredom": (-0.7, -0.3),
}
"""Where each canonical emotion sits on the circumplex of affect (Russell, 1980), as the
``(arousal, valence)`` targets of a model trained with ``dimensions``: [-1, 1] each, 0 the middle
of the scale. The places follow the circumplex's quadrants and the mean ratings of emotion words
in affective norms (rescaled from their 1-9 scales and rounded to a tenth): anger, fear and
surprise aroused, anger and fear unpleasant, surprise mildly pleasant; happiness pleasant and
aroused; disgust unpleasant at middling arousal; calm pleasant and quiet; sadness unpleasant and
quiet; boredom quiet and mildly unpleasant. They agree with :data:`AROUSAL` (high >= 0.5, normal
about 0, low <= -0.5). ``other`` has no place."""

AROUSAL_LEVEL_SCORE: dict[str, float] = {"low": -0.6, "normal": 0.1, "high": 0.6}
"""The arousal target of a corpus that labels arousal levels (:data:`CORPUS_AROUSAL`, BAVED):
the mean arousal of the table's emotions at each level. Such rows teach no valence."""

IEMOCAP_FOUR_CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry")
"""The common IEMOCAP 4-class set (happy includes excited)."""


def canonical_label(corpus: str, code: str) -> str:
    """The canonical label of ``corpus``'s own emotion ``code``.

    Raises:
        ValueError: the corpus or the code is unknown; the message lists the known ones.
    """
    try:
        table = CORPUS_CODES[corpus]
    except KeyError:
        raise ValueError(
            f"no emotion codes for corpus {corpus!r}; known: {', '.join(sorted(CORPUS_CODES))}"
        ) from None
    try:
        return table[code]
    except KeyError:
        raise ValueError(
            f"unknown {corpus} emotion code {code!r}; known: {', '.join(table)}"
        ) from None


def common_labels(manifests: Iterable[Manifest]) -> list[str]:
    """The labels every manifest has, in canonical order (unknown labels after, sorted)."""
    sets = [set(m.labels) for m in manifests]
    if not sets:
        return []
    common = set.intersection(*sets)
    order = {c: i for i, c in enumerate(CANONICAL)}
    return sorted(common, key=lambda c: (order.get(c, len(order)), c))


def dropped_by_corpus(manifest: Manifest, scheme: LabelScheme) -> dict[str, int]:
    """Per corpus, how many rows ``scheme`` drops (every corpus of ``manifest`` is listed)."""
    counts: Counter[str] = Counter()
    for u in manifest:
        counts[u.corpus] += 0
        if scheme.target_of(u) is None:
            counts[u.corpus] += 1
    return dict(sorted(counts.items()))


__all__ = [
    "AROUSAL",
    "AROUSAL_LEVELS",
    "AROUSAL_LEVEL_SCORE",
    "CANONICAL",
    "CIRCUMPLEX",
    "CORPUS_AROUSAL",
    "CORPUS_CODES",
    "DIMENSIONS",
    "IEMOCAP_FOUR_CLASSES",
    "canonical_label",
    "common_labels",
    "dropped_by_corpus",
]
