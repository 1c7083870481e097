"""One colour per emotion, the same in every picture: the timeline PNG, the confusion plots and
the web page (which receives them with each prediction). No plotting library needed."""

from __future__ import annotations

from collections.abc import Sequence

EMOTION_COLOURS: dict[str, str] = {
    "neutral": "#7f8c8d",
    "calm": "#16a2b8",
    "happy": "#e0a02b",
    "sad": "#3358d4",
    "angry": "#c62828",
    "fearful": "#8e44ad",
    "disgust": "#2f9e62",
    "surprised": "#d63384",
    "boredom": "#8d6e63",
    "low": "#5c8fd6",
    "normal": "#9aa5b1",
    "high": "#d9534f",
}
"""The colour of each emotion (and arousal level) emovox knows, as ``#rrggbb``."""

FALLBACK_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf", "#bcbd22", "#e377c2", "#8c564b",
    "#393b79", "#637939", "#843c39", "#7b4173",
)  # fmt: skip
"""Colours of other labels, by their position among the labels without a colour of their own."""


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """``#rrggbb`` of each label: its own (:data:`EMOTION_COLOURS`), else a fallback by order."""
    out: dict[str, str] = {}
    others = [c for c in labels if c not in EMOTION_COLOURS]
    for label in labels:
        if label in EMOTION_COLOURS:
            out[label] = EMOTION_COLOURS[label]
        else:
            out[label] = FALLBACK_COLOURS[others.index(label) % len(FALLBACK_COLOURS)]
    return out
