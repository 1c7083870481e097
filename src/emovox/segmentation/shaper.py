"""Segment shaping: VAD events in, final segments out (padded, short pieces merged into close
neighbours, long ones cut into equal pieces), as the stream goes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from emovox.segmentation.config import SegmentationConfig
from emovox.segmentation.events import Segment, VadEvent


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


class SegmentShaper:
    """Turns VAD events into final segments: padded, short pieces merged, long ones cut.

    Feed it the events of each block with :meth:`update` (and the stream time analysed so far);
    it returns the segments that can no longer change. :meth:`finish` returns the rest.
    """

    def __init__(self, config: SegmentationConfig | None = None) -> None:
        self.cfg = config or SegmentationConfig()
        self.open_start: float | None = None  # start of the speech run in progress (unpadded)
        self._open_cut = False  # the open run continues a piece that was cut off
        self.pending: Segment | None = None
        self._last_end = 0.0
        # a start event can be reported this long after its time
        self._lag = self.cfg.min_speech + 0.1

    def earliest_needed(self, now: float) -> float:
        """The earliest time (s) whose audio a future segment may still need."""
        t = now - self._lag - self.cfg.pad
        if self.open_start is not None:
            t = min(t, self.open_start - self.cfg.pad)
        if self.pending is not None:
            t = min(t, self.pending.start)
        return max(0.0, t)

    def update(self, events: list[VadEvent], now: float) -> list[Segment]:
        out: list[Segment] = []
        for ev in events:
            if ev.kind == "start":
                self.open_start, self._open_cut = ev.time, False
            elif ev.kind == "end" and self.open_start is not None:
                out += self._close(self.open_start, ev.time, cut=self._open_cut)
                self.open_start = None
        cap = 2 * self.cfg.max_segment
        while self.open_start is not None:
            start = self.open_start if self._open_cut else max(0.0, self.open_start - self.cfg.pad)
            if now - start <= cap:
                break
            out += self._flush()
            start = max(start, self._last_end)
            piece = Segment(start, start + self.cfg.max_segment)
            out.append(piece)
            self._last_end = piece.end
            self.open_start, self._open_cut = piece.end, True
        if self.pending is not None:
            nxt = (self.open_start if self.open_start is not None else now - self._lag) - (
                self.cfg.pad
            )
            if nxt - self.pending.end >= self.cfg.merge_gap:
                out += self._flush()
        return out

    def finish(self, total: float) -> list[Segment]:
        """The remaining segments once the stream has ended at ``total`` seconds."""
        out: list[Segment] = []
        if self.open_start is not None:
            out += self._close(self.open_start, total, cut=self._open_cut)
            self.open_start = None
        out += self._flush()
        return [Segment(s.start, min(s.end, total)) for s in out if min(s.end, total) > s.start]

    def _close(self, start: float, end: float, cut: bool) -> list[Segment]:
        cfg = self.cfg
        if not cut and end - start < cfg.min_speech:
            return []
        s = start if cut else max(0.0, start - cfg.pad, self._last_end)
        seg = Segment(s, end + cfg.pad)
        if self.pending is None:
            self.pending = seg
            return []
        p = self.pending
        gap = seg.start - p.end
        short = min(p.duration, seg.duration) < cfg.min_segment
        if gap <= 0 or (short and gap < cfg.merge_gap and seg.end - p.start <= cfg.max_segment):
            self.pending = Segment(p.start, max(p.end, seg.end))
            return []
        out = self._flush()
        self.pending = seg
        return out

    def _flush(self) -> list[Segment]:
        if self.pending is None:
            return []
        seg, self.pending = self.pending, None
        self._last_end = max(self._last_end, seg.end)
        return split_long([seg], self.cfg.max_segment)
