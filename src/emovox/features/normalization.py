"""Speaker-level feature normalisation (``TrainConfig.speaker_norm``).

Every utterance's features are standardised per stream and bin with the mean and standard
deviation over *all frames of all utterances of the same speaker*. On log features a gain applied
to all of a speaker's recordings adds the same constant to every frame (as long as no absolute
power floor is reached), which the speaker's mean removes: the result does not depend on the
recording level, and speaker traits (vocal tract, habitual pitch, microphone) are partly
factored out.

The statistics come from the speaker's own audio and never from labels, so at test time they use
the test speaker's (unlabelled) recordings. This is a disclosed assumption of the evaluation: the
system sees all of a test speaker's utterances before scoring them. In ``emovox.train.pipeline`` the
training, validation and test speakers each get statistics from their own utterances in that
subset only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

STD_FLOOR = 1e-5
"""Smallest standard deviation divided by (a bin that never changes stays at 0)."""


@dataclasses.dataclass(frozen=True)
class SpeakerStats:
    """Per-bin statistics of one speaker: ``mean`` and ``std`` of shape ``[S, F, 1]``.

    ``weight`` is how far a prediction may use them (the share of the adapted prediction,
    :mod:`emovox.inference.adaptation`), when the recognizer has measured it over the speaker's
    clips; ``None``: not measured. ``mean_proba`` is a model's mean per-utterance probabilities
    over the speaker's clips, for a model that adapts at its output
    (:func:`~emovox.inference.adaptation.balance_priors`); ``None``: not measured."""

    mean: np.ndarray
    std: np.ndarray
    n_frames: int
    n_utterances: int
    weight: float | None = None
    mean_proba: np.ndarray | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` (``[S, F, T]``) standardised with these statistics, as float32.

        Raises:
            ValueError: ``x`` has other streams or bins than the statistics.
        """
        if tuple(x.shape[:-1]) != tuple(self.mean.shape[:-1]):
            raise ValueError(
                f"features of shape {tuple(x.shape)} do not fit speaker statistics over "
                f"{tuple(self.mean.shape[:-1])} streams x bins"
            )
        return ((x - self.mean) / self.std).astype(np.float32)


def speaker_stats(features: Sequence[np.ndarray]) -> SpeakerStats:
    """The per-bin mean and std over every frame of ``features`` (one speaker's ``[S, F, T]``).

    Raises:
        ValueError: no features, or arrays of different streams x bins.
    """
    arrays = [np.asarray(x) for x in features]
    if not arrays:
        raise ValueError("speaker statistics need at least one utterance")
    shapes = {tuple(a.shape[:-1]) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"speaker statistics over features of different shapes {sorted(shapes)}")
    frames = np.concatenate([a.astype(np.float64) for a in arrays], axis=-1)
    if frames.shape[-1] == 0:
        raise ValueError("speaker statistics need at least one frame")
    mean = frames.mean(axis=-1, keepdims=True)
    std = np.maximum(frames.std(axis=-1, keepdims=True), STD_FLOOR)
    return SpeakerStats(mean, std, int(frames.shape[-1]), len(arrays))


def normalize_by_speaker(items: Sequence, speakers: Sequence[str]) -> list:
    """Each item standardised with the statistics of its speaker *among these items*.

    ``items`` are ``[S, F, T]`` arrays or tuples of variants (original first, then augmented
    copies, as :meth:`emovox.train.pipeline.Dataset.subset` gives them); the statistics come from
    the originals and are applied to every variant. ``speakers[i]`` is the speaker of ``items[i]``.
    Call it on one subset at a time (training, validation, test) so that no subset's statistics
    use another's utterances.

    Raises:
        ValueError: ``items`` and ``speakers`` differ in length.
    """
    if len(items) != len(speakers):
        raise ValueError(f"{len(items)} feature items but {len(speakers)} speakers")
    groups: dict[str, list[int]] = {}
    for i, spk in enumerate(speakers):
        groups.setdefault(spk, []).append(i)
    out: list = [None] * len(items)
    for idx in groups.values():
        stats = speaker_stats([_original(items[i]) for i in idx])
        for i in idx:
            item = items[i]
            if isinstance(item, (list, tuple)):
                out[i] = tuple(stats.apply(v) for v in item)
            else:
                out[i] = stats.apply(item)
    return out


def _original(item) -> np.ndarray:
    return item[0] if isinstance(item, (list, tuple)) else item
