"""Undoing hard clipping before features: find the flat runs at a recording's ceiling and
redraw them as the curve through the samples around them.

A loud recording that hit full scale (or a microphone's limit) has runs of samples stuck at
the same extreme value. Their spectrum is brighter and flatter than the speech's, which a
model hears as arousal (sad and happy clips turn "angry"). :func:`declip` replaces each run by
a cubic spline through the unclipped samples, never below the ceiling (the true waveform was
at least there) and at most :data:`MAX_GAIN` times above it. Audio without such runs is
returned unchanged, so clean recordings get exactly the features they had.

The spline is close to the true wave while the runs are short (a fifth of the samples clipped);
when most of a wave is clipped it only guesses, so heavy overdrive is only partly undone.
Clipping also flattens the loudness contour (loud frames lose up to the overdrive in level
while quiet ones keep theirs), which the redrawing gives back only as far as its peaks reach.
"""

from __future__ import annotations

import numpy as np

TOLERANCE = 1e-3
"""A sample counts as at the ceiling within this fraction of it (int16 files clip to 32767 /
32768 of full scale on the positive side and to full scale on the negative)."""

MIN_RUN = 2
"""Samples at the ceiling count as clipped only in runs of at least this many: a single sample
at a waveform's peak is a peak, not a clip."""

MAX_GAIN = 10.0
"""A redrawn sample rises at most this many times above the ceiling (20 dB): a long run's
spline cannot fly off."""

MIN_KEPT = 4
"""Fewer unclipped samples than this and there is nothing to draw the curve through."""


def runs_at_least(flags: np.ndarray, length: int) -> np.ndarray:
    """``flags`` with the true runs shorter than ``length`` set to false."""
    flags = np.asarray(flags, dtype=bool)
    if length <= 1 or not flags.any():
        return flags.copy()
    edges = np.diff(np.concatenate([[0], flags.view(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.zeros_like(flags)
    for s, e in zip(starts, ends, strict=True):
        if e - s >= length:
            out[s:e] = True
    return out


def clipped_mask(samples: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """The samples in runs of :data:`MIN_RUN` or more at the positive or the negative ceiling
    (each side's own extreme, within ``tolerance`` of it)."""
    x = np.asarray(samples, dtype=np.float64)
    mask = np.zeros(x.shape, dtype=bool)
    for side in (1.0, -1.0):
        level = float(np.max(side * x)) if x.size else 0.0
        if level > 0:
            mask |= runs_at_least(side * x >= level * (1 - tolerance), MIN_RUN)
    return mask


def declip(samples: np.ndarray) -> np.ndarray:
    """``samples`` with every clipped run (:func:`clipped_mask`) redrawn by a cubic spline
    through the unclipped samples, kept between the ceiling and :data:`MAX_GAIN` times it;
    unchanged (the same array) when nothing is clipped."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"declip expects 1-D audio, got shape {x.shape}")
    mask = clipped_mask(x)
    kept = np.flatnonzero(~mask)
    if not mask.any() or kept.size < MIN_KEPT:
        return samples
    from scipy.interpolate import CubicSpline  # only for clipped audio: prediction starts fast

    runs = np.flatnonzero(mask)
    ceiling = np.abs(x[runs]).astype(np.float64)
    side = np.sign(x[runs])
    drawn = CubicSpline(kept, x[kept].astype(np.float64))(runs) * side
    out = x.copy()
    out[runs] = side * np.clip(drawn, ceiling, ceiling * MAX_GAIN)
    return out
