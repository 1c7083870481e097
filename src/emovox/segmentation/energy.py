"""The dependency-free voice-activity detector: frame energy against the recording's own level.

A frame is *speech* when its energy (dB) is above ``max(level - range_db, floor + snr_db)``, so
the result does not depend on the gain. ``level`` is a peak that decays by ``decay_db_per_s``;
``floor`` is a running minimum that rises by ``floor_rise_db_per_s`` and starts at the first
frame. A stream cannot be known to be all speech, so the detector learns its floor from the first
quiet moment (a stream that starts mid-speech is picked up at the first dip between syllables).
"""

from __future__ import annotations

import math

import numpy as np

from emovox.segmentation.config import SegmentationConfig
from emovox.segmentation.events import Hysteresis, VadEvent

SILENCE_DB = -90.0
"""Frames quieter than this (dBFS) are never speech, whatever the recording's level."""


def frame_energy_db(
    audio: np.ndarray, sr: int, frame: float = 0.03, hop: float = 0.01
) -> np.ndarray:
    """Mean-square energy in dB (re full scale) of frames of ``frame`` s every ``hop`` s.

    Frame ``i`` covers ``[i * hop, i * hop + frame)`` seconds; a recording shorter than one
    frame still gives one frame.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    n, h = max(1, round(frame * sr)), max(1, round(hop * sr))
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    count = 1 + (x.size - n) // h
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(count) * h
    power = (c[starts + n] - c[starts]) / n
    return 10.0 * np.log10(power + 1e-12)


class EnergyVad:
    """The energy detector, one block at a time (see the module's description).

    Args:
        sr: sample rate of the blocks.
        config: the thresholds, frame sizes and durations.
    """

    def __init__(self, sr: int, config: SegmentationConfig | None = None) -> None:
        self.sr = sr
        self.cfg = cfg = config or SegmentationConfig()
        self._n = max(1, round(cfg.frame * sr))
        self._h = max(1, round(cfg.hop * sr))
        self._decay = cfg.decay_db_per_s * cfg.hop
        self._rise = cfg.floor_rise_db_per_s * cfg.hop
        self._buf = np.zeros(0, dtype=np.float64)
        self.level: float | None = None
        self.floor: float | None = None
        self._events = Hysteresis(
            cfg.hop, cfg.min_speech, cfg.min_silence, cfg.frame / 2 - cfg.hop / 2, cfg.frame
        )

    @property
    def in_speech(self) -> bool:
        return self._events.in_speech

    @property
    def time(self) -> float:
        """Stream time (s) of the samples analysed so far."""
        return self._events.frames * self.cfg.hop

    def flush(self) -> list[VadEvent]:
        """Nothing is held back: no events at the end of a stream."""
        return []

    def feed(self, block: np.ndarray) -> list[VadEvent]:
        """Take the next samples; return the segment starts and ends they reveal."""
        self._buf = np.concatenate([self._buf, np.asarray(block, dtype=np.float64).reshape(-1)])
        events: list[VadEvent] = []
        while self._buf.size >= self._n:
            x = self._buf[: self._n]
            db = 10.0 * math.log10(float(np.dot(x, x)) / self._n + 1e-12)
            self._buf = self._buf[self._h :]
            self.level = db if self.level is None else max(db, self.level - self._decay)
            self.floor = db if self.floor is None else min(db, self.floor + self._rise)
            threshold = max(self.level - self.cfg.range_db, self.floor + self.cfg.snr_db)
            event = self._events.step(db > threshold and db > SILENCE_DB)
            if event is not None:
                events.append(event)
        return events
