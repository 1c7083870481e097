"""Energy-based voice-activity segmentation of long recordings, offline and streaming.

A frame is *speech* when its energy (dB) is above a threshold set relative to the recording's
own level, so the result does not depend on the gain:

    threshold = max(level - range_db, min(floor + snr_db, level - min_contrast_db))

``level`` is the loud end of the frame energies (the 95th percentile offline, a slowly decaying
peak when streaming) and ``floor`` the quiet end (the 10th percentile offline, a running minimum
that rises slowly when streaming). Runs of speech shorter than ``min_speech`` are dropped, gaps
shorter than ``min_silence`` are bridged, each segment is padded by ``pad`` and segments longer
than ``max_segment`` are cut into equal pieces (so no short leftover piece remains).

:func:`segment_audio` finds the segments of a whole recording, :func:`predict_segments` predicts
each one with a :class:`~emovox.recognizer.Recognizer`, and :class:`StreamingVad` applies the
same logic block by block for the live mode. (A neural VAD is planned for ``predict --segments``;
this module is the small, dependency-free one.)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from emovox.recognizer import Recognizer

SILENCE_DB = -90.0
"""Frames quieter than this (dBFS) are never speech, whatever the recording's level."""


class Segment(NamedTuple):
    """A stretch of speech, in seconds from the start of the recording."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclasses.dataclass(frozen=True)
class VadConfig:
    """Settings of the energy VAD (times in seconds, levels in dB).

    Attributes:
        frame: analysis frame length.
        hop: analysis frame step.
        range_db: frames more than this below the recording's level are silence.
        snr_db: frames must be this much above the noise floor ...
        min_contrast_db: ... unless that would put the threshold closer than this to the level.
        min_speech: shorter bursts of speech are ignored.
        min_silence: shorter pauses do not end a segment.
        pad: seconds added before and after each segment (within the recording).
        max_segment: longer segments are cut into equal pieces.
    """

    frame: float = 0.03
    hop: float = 0.01
    range_db: float = 35.0
    snr_db: float = 12.0
    min_contrast_db: float = 10.0
    min_speech: float = 0.2
    min_silence: float = 0.3
    pad: float = 0.05
    max_segment: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.hop <= self.frame:
            raise ValueError(f"need 0 < hop <= frame, got hop={self.hop}, frame={self.frame}")
        if self.max_segment <= self.min_speech:
            raise ValueError("max_segment must be longer than min_speech")
        for name in ("min_speech", "min_silence", "pad", "range_db", "snr_db"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


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


def _threshold(level: float, floor: float, cfg: VadConfig) -> float:
    return max(level - cfg.range_db, min(floor + cfg.snr_db, level - cfg.min_contrast_db))


def speech_mask(audio: np.ndarray, sr: int, config: VadConfig | None = None) -> np.ndarray:
    """One boolean per analysis frame: is it speech (before the duration rules are applied)?"""
    cfg = config or VadConfig()
    db = frame_energy_db(audio, sr, cfg.frame, cfg.hop)
    level = float(np.percentile(db, 95))
    floor = float(np.percentile(db, 10))
    return (db > _threshold(level, floor, cfg)) & (db > SILENCE_DB)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` index pairs of the runs of ``True`` in ``mask``."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def split_long(segments: Sequence[Segment], max_segment: float) -> list[Segment]:
    """Cut every segment longer than ``max_segment`` into the fewest equal pieces that fit."""
    out: list[Segment] = []
    for seg in segments:
        pieces = max(1, math.ceil(seg.duration / max_segment - 1e-9))
        step = seg.duration / pieces
        bounds = [seg.start + k * step for k in range(pieces)] + [seg.end]
        out.extend(Segment(a, b) for a, b in itertools.pairwise(bounds))
    return out


def merge_segments(
    segments: Sequence[Segment], min_gap: float, min_length: float = 0.0
) -> list[Segment]:
    """Join segments closer than ``min_gap``, then drop those shorter than ``min_length``."""
    out: list[Segment] = []
    for seg in sorted(segments):
        if out and seg.start - out[-1].end < min_gap:
            out[-1] = Segment(out[-1].start, max(out[-1].end, seg.end))
        else:
            out.append(Segment(*seg))
    return [s for s in out if s.duration >= min_length]


def segment_audio(audio: np.ndarray, sr: int, config: VadConfig | None = None) -> list[Segment]:
    """The speech segments of a whole recording (seconds), found by frame energy.

    Args:
        audio: 1-D float waveform.
        sr: its sample rate.
        config: VAD settings (:class:`VadConfig` defaults when ``None``).

    Returns:
        Segments in time order, none longer than ``config.max_segment``.
    """
    cfg = config or VadConfig()
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        return []
    total = audio.size / sr
    mask = speech_mask(audio, sr, cfg)
    # A frame's centre stands for it: speech run [i, j) spans [i*hop + frame/2 - hop/2, ...).
    offset = cfg.frame / 2 - cfg.hop / 2
    raw = [Segment(i * cfg.hop + offset, j * cfg.hop + offset) for i, j in _runs(mask)]
    segs = merge_segments(raw, cfg.min_silence, cfg.min_speech)
    segs = [Segment(max(0.0, s.start - cfg.pad), min(total, s.end + cfg.pad)) for s in segs]
    segs = merge_segments(segs, 0.0)  # padding may make neighbours touch
    return split_long(segs, cfg.max_segment)


def predict_segments(
    recognizer: Recognizer,
    audio: np.ndarray,
    sr: int,
    segments: Sequence[Segment] | None = None,
    config: VadConfig | None = None,
) -> list[dict]:
    """Predict every speech segment of a recording.

    Args:
        recognizer: the model.
        audio: 1-D waveform at ``sr`` Hz.
        sr: its sample rate.
        segments: the segments to predict; found with :func:`segment_audio` when ``None``.
        config: VAD settings used when ``segments`` is ``None``.

    Returns:
        ``[{"start", "end", "label", "probabilities"}]`` in time order (seconds, rounded to ms);
        segments too short for the model are left out.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if segments is None:
        segments = segment_audio(audio, sr, config)
    pieces = [audio[round(s.start * sr) : round(s.end * sr)] for s in segments]
    preds = recognizer.predict_batch(pieces, sr=sr) if pieces else []
    return [
        {
            "start": round(s.start, 3),
            "end": round(s.end, 3),
            "label": p.label,
            "probabilities": p.probabilities,
        }
        for s, p in zip(segments, preds, strict=True)
        if p.ok
    ]


# -- streaming -------------------------------------------------------------------------------


@dataclasses.dataclass
class VadEvent:
    """What :meth:`StreamingVad.feed` noticed: ``kind`` is ``"start"`` or ``"end"``.

    ``time`` is the stream time (s) of the event's boundary; for ``"end"`` it is the end of the
    speech (before the closing silence) and ``decided`` the stream time at which the VAD knew.
    """

    kind: str
    time: float
    decided: float


class StreamingVad:
    """The energy VAD of :func:`segment_audio`, one block at a time.

    The recording's ``level`` is a peak that decays by ``decay_db_per_s``; the ``floor`` is a
    running minimum that rises by ``floor_rise_db_per_s`` and starts at the first frame. The
    threshold is ``max(level - range_db, floor + snr_db)``: unlike a whole recording, a stream
    cannot be known to be all speech, so it learns its floor from the first quiet moment (a
    stream that starts mid-speech is picked up at the first dip between syllables). A segment
    starts after ``min_speech`` of speech frames and ends after ``min_silence`` of silence.
    """

    def __init__(
        self,
        sr: int,
        config: VadConfig | None = None,
        decay_db_per_s: float = 1.0,
        floor_rise_db_per_s: float = 1.0,
    ) -> None:
        self.sr = sr
        self.cfg = config or VadConfig()
        self._n = max(1, round(self.cfg.frame * sr))
        self._h = max(1, round(self.cfg.hop * sr))
        self._decay = decay_db_per_s * self.cfg.hop
        self._rise = floor_rise_db_per_s * self.cfg.hop
        self._buf = np.zeros(0, dtype=np.float64)
        self._frames = 0  # analysis frames done
        self.level: float | None = None
        self.floor: float | None = None
        self.in_speech = False
        self._run = 0  # consecutive frames disagreeing with the state
        self._run_start = 0  # first frame of that run
        self._need_speech = max(1, round(self.cfg.min_speech / self.cfg.hop))
        self._need_silence = max(1, round(self.cfg.min_silence / self.cfg.hop))

    def _t(self, frame_index: int) -> float:
        return frame_index * self.cfg.hop + self.cfg.frame / 2 - self.cfg.hop / 2

    def feed(self, block: np.ndarray) -> list[VadEvent]:
        """Take the next samples; return the segment starts and ends they reveal."""
        self._buf = np.concatenate([self._buf, np.asarray(block, dtype=np.float64).reshape(-1)])
        events: list[VadEvent] = []
        while self._buf.size >= self._n:
            x = self._buf[: self._n]
            db = 10.0 * math.log10(float(np.dot(x, x)) / self._n + 1e-12)
            self._buf = self._buf[self._h :]
            i = self._frames
            self._frames += 1
            self.level = db if self.level is None else max(db, self.level - self._decay)
            self.floor = db if self.floor is None else min(db, self.floor + self._rise)
            threshold = max(self.level - self.cfg.range_db, self.floor + self.cfg.snr_db)
            speech = db > threshold and db > SILENCE_DB
            if speech == self.in_speech:
                self._run = 0
                continue
            if self._run == 0:
                self._run_start = i
            self._run += 1
            decided = (i + 1) * self.cfg.hop + self.cfg.frame - self.cfg.hop
            if not self.in_speech and self._run >= self._need_speech:
                self.in_speech, self._run = True, 0
                events.append(VadEvent("start", max(0.0, self._t(self._run_start)), decided))
            elif self.in_speech and self._run >= self._need_silence:
                self.in_speech, self._run = False, 0
                events.append(VadEvent("end", self._t(self._run_start), decided))
        return events

    @property
    def time(self) -> float:
        """Stream time (s) of the samples analysed so far."""
        return self._frames * self.cfg.hop
