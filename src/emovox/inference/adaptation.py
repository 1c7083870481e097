"""Guarded speaker adaptation: use a speaker's statistics only as far as their material allows.

A model trained with ``speaker_norm`` standardises every utterance with its speaker's statistics.
That helps when the speaker's recordings span several emotions (the statistics then describe the
voice), and hurts when they do not: a speaker heard only angry has angry statistics, and
standardising with them removes the anger itself. Without labels the guard cannot know the
emotions, but the model can tell how varied they sound: it predicts every clip alone first, and
the spread of those per-utterance predictions (their Jensen-Shannon divergence over ``log C``:
0 when every clip gets the same distribution, near 1 when the clips are sure of different
classes) decides how far to trust the speaker's statistics:

``p = w * p_adapted + (1 - w) * p_per_utterance`` with
``w = clip((spread - low) / (high - low), 0, 1) * n / (n + prior)`` and ``w = 0`` below
``min_utterances`` clips.

So a speaker whose clips all sound alike is predicted per utterance (as a user with one clip is),
and adaptation can never take a prediction further from the per-utterance one than the material
allows; ``n / (n + prior)`` shrinks towards the per-utterance prediction when there are few clips.

A model trained without ``speaker_norm`` adapts at its output instead (:func:`balance_priors`):
a voice that sounds sad to the model in every clip pulls all of its clips towards sad, and
dividing each clip's probabilities by the speaker's mean probabilities takes that pull out (the
speaker is then assumed to use every class alike, which is what the guard checks, so a speaker
heard in one emotion keeps the per-utterance prediction). Its guard,
:data:`BALANCE_GUARD`, was chosen on nested validation (``benchmarks/adapt_guard.py``); that of
``speaker_norm`` models, :data:`DEFAULT_GUARD`, on the one-emotion tests of a leave-one-corpus-out
run (``benchmarks/adapt_guard.py --speaker-norm``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class AdaptationGuard:
    """How much of a speaker-adapted prediction to use (see the module's description).

    Attributes:
        low: spread at or below which the speaker's statistics are not used at all.
        high: spread at or above which they are used fully (before shrinkage).
        prior: the shrinkage's pseudo-count of clips: ``n / (n + prior)``.
        min_utterances: fewer clips than this are never adapted.
    """

    low: float = 0.05
    high: float = 0.25
    prior: float = 2.0
    min_utterances: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"guard needs 0 <= low < high <= 1, not {self.low}, {self.high}")
        if self.prior < 0 or self.min_utterances < 1:
            raise ValueError("guard prior must be >= 0 and min_utterances >= 1")

    def weight(self, per_utterance: np.ndarray) -> float:
        """The share ``w`` of the adapted prediction for a speaker whose clips' per-utterance
        probabilities are ``per_utterance`` (``[n, C]``)."""
        p = np.asarray(per_utterance, dtype=np.float64)
        n = int(p.shape[0])
        if n < self.min_utterances:
            return 0.0
        trust = (spread(p) - self.low) / (self.high - self.low)
        return float(np.clip(trust, 0.0, 1.0) * n / (n + self.prior))

    def blend(self, per_utterance: np.ndarray, adapted: np.ndarray) -> np.ndarray:
        """The guarded probabilities of one speaker's clips (``[n, C]`` each)."""
        w = self.weight(per_utterance)
        return (w * np.asarray(adapted) + (1.0 - w) * np.asarray(per_utterance)).astype(
            np.float32
        )


DEFAULT_GUARD = AdaptationGuard(low=0.05, high=0.1, prior=30.0)
"""The guard of ``speaker_norm`` models (feature statistics) unless told otherwise: the
thresholds with the largest gain in 4-class UA over the five categorical corpora of a LOCO run of
``cnn-functionals`` (each corpus scored by a model that never heard it) whose one-emotion-per-
speaker tests, each adapted again with the statistics of its own clips, lost nothing against
per-utterance prediction (``benchmarks/adapt_guard.py --speaker-norm``, its choice in
``benchmarks/results/adapt_guard_speaker_norm.json``). It replaces ``AdaptationGuard()``
(low 0.05, high 0.25, prior 2), which was as safe and kept 2.7 of the 22.4 points adaptation
adds there; chosen for each corpus on the other four, the new thresholds keep 9.3."""

BALANCE_GUARD = AdaptationGuard(low=0.25, high=0.3, prior=10.0)
"""The guard of output balancing (:func:`balance_priors`, every model without ``speaker_norm``)
unless told otherwise: the thresholds with the largest gain in 4-class UA on the validation
corpora of the nested leave-two-corpora-out runs whose one-emotion-per-speaker test lost
nothing against per-utterance prediction (``benchmarks/adapt_guard.py``, its choice over all
five corpora in ``benchmarks/results/adapt_guard.json``)."""

BALANCE_FLOOR = 1e-4
"""The smallest mean probability :func:`balance_priors` divides by (a class the speaker's clips
never get stays unlikely instead of being blown up)."""


def balance_priors(
    per_utterance: np.ndarray, mean: np.ndarray | None = None, strength: float = 1.0
) -> np.ndarray:
    """One speaker's clips with the speaker's bias taken out of their probabilities: each row
    of ``per_utterance`` (``[n, C]``) divided by the speaker's mean probabilities raised to
    ``strength`` (``mean``: over these rows unless given, e.g. over all the speaker's clips
    when only some are predicted now), then renormalised. ``strength=0`` changes nothing; 1
    makes a speaker's mean prediction about uniform."""
    p = np.asarray(per_utterance, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"balance_priors needs [n, C] probabilities, not shape {p.shape}")
    if p.shape[0] == 0:
        return p.astype(np.float32)
    m = p.mean(axis=0) if mean is None else np.asarray(mean, dtype=np.float64)
    if m.shape != (p.shape[1],):
        raise ValueError(f"mean of shape {m.shape} does not fit {p.shape[1]} classes")
    q = p / np.maximum(m, BALANCE_FLOOR) ** strength
    return (q / np.maximum(q.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def spread(per_utterance: np.ndarray) -> float:
    """How differently a speaker's clips sound to the model: the Jensen-Shannon divergence of
    their per-utterance probabilities (``[n, C]``), the entropy of their mean minus the mean of
    their entropies, divided by ``log C``. 0 when every clip gets the same distribution
    (however confident: one emotion, or a model that cannot tell), up to 1 when the clips are
    certain of different classes in equal shares."""
    p = np.asarray(per_utterance, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        return 0.0
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    mean_entropy = float(np.mean([_entropy(row) for row in p]))
    return max(0.0, (_entropy(p.mean(axis=0)) - mean_entropy) / math.log(p.shape[1]))


def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def guard_speakers(
    per_utterance: np.ndarray,
    adapted: np.ndarray,
    speakers: list[str],
    guard: AdaptationGuard = DEFAULT_GUARD,
) -> np.ndarray:
    """:meth:`AdaptationGuard.blend` for every speaker of a set of clips (rows in any order;
    ``speakers[i]`` is row ``i``'s)."""
    out = np.asarray(per_utterance, dtype=np.float32).copy()
    for rows in _groups(speakers).values():
        out[rows] = guard.blend(per_utterance[rows], adapted[rows])
    return out


def balance_speakers(per_utterance: np.ndarray, speakers: list[str]) -> np.ndarray:
    """:func:`balance_priors` of every speaker's clips with that speaker's mean (rows in any
    order; ``speakers[i]`` is row ``i``'s): the unguarded output adaptation."""
    out = np.asarray(per_utterance, dtype=np.float32).copy()
    for rows in _groups(speakers).values():
        out[rows] = balance_priors(per_utterance[rows])
    return out


def _groups(speakers: list[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(speakers):
        groups.setdefault(s, []).append(i)
    return groups
