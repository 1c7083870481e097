"""The one settings class of segmentation, used by every path (CLI, server, live, Python)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SegmentationConfig:
    """How speech is found and cut into segments (times in seconds, levels in dB).

    Attributes:
        min_speech: shorter bursts of speech are not segments.
        min_silence: shorter pauses do not end a segment.
        pad: added before and after each segment (within the recording).
        max_segment: longer segments are cut into equal pieces no longer than this.
        min_segment: a segment shorter than this is merged into a neighbour closer than
            ``merge_gap`` (when the result is not longer than ``max_segment``).
        merge_gap: see ``min_segment``.
        threshold: silero speech probability that starts speech ...
        neg_threshold: ... and the probability below which it may end.
        frame: the energy detector's analysis frame.
        hop: the energy detector's frame step.
        range_db: frames more than this below the recording's level are silence (energy) ...
        snr_db: ... and frames must be this much above the noise floor.
        decay_db_per_s: how fast the energy detector's idea of the loud level decays.
        floor_rise_db_per_s: how fast its noise floor (a running minimum) rises.
    """

    min_speech: float = 0.25
    min_silence: float = 0.3
    pad: float = 0.1
    max_segment: float = 10.0
    min_segment: float = 1.0
    merge_gap: float = 1.0
    threshold: float = 0.5
    neg_threshold: float = 0.35
    frame: float = 0.03
    hop: float = 0.01
    range_db: float = 35.0
    snr_db: float = 12.0
    decay_db_per_s: float = 1.0
    floor_rise_db_per_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_speech", "min_silence", "pad", "min_segment", "merge_gap", "range_db"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.max_segment <= max(self.min_speech, self.min_segment, 2 * self.pad):
            raise ValueError("max_segment must be longer than min_speech, min_segment and 2*pad")
        if not 0 < self.neg_threshold <= self.threshold < 1:
            raise ValueError("need 0 < neg_threshold <= threshold < 1")
        if not 0 < self.hop <= self.frame:
            raise ValueError(f"need 0 < hop <= frame, got hop={self.hop}, frame={self.frame}")
