"""What every voice-activity detector shares: segments, events and the hysteresis that makes them.

A detector (:mod:`~emovox.segmentation.energy`, :mod:`~emovox.segmentation.silero`) takes audio
blocks with ``feed(block) -> list[VadEvent]``, tells the stream time it has analysed with
``time`` and, at the end of a stream, gives the events of what it held back with ``flush()``.
Each one decides per analysis frame whether there is speech; :class:`Hysteresis` turns those
decisions into start and end events (speech starts after ``min_speech`` of speech frames and
ends after ``min_silence`` of other frames), so both detectors report events the same way.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import numpy as np


class Segment(NamedTuple):
    """A stretch of speech, in seconds from the start of the recording."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclasses.dataclass
class VadEvent:
    """What a detector noticed: ``kind`` is ``"start"`` or ``"end"``.

    ``time`` is the stream time (s) of the event's boundary; for ``"end"`` it is the end of the
    speech (before the closing silence); ``decided`` is the stream time at which the detector knew.
    """

    kind: str
    time: float
    decided: float


class VoiceActivityDetector(Protocol):
    """The interface of every detector."""

    @property
    def time(self) -> float:
        """Stream time (s) analysed so far."""
        ...

    def feed(self, block: np.ndarray) -> list[VadEvent]:
        """Take the next samples; return the segment starts and ends they reveal."""
        ...

    def flush(self) -> list[VadEvent]:
        """The end of the stream: the events of what was held back (most detectors: none)."""
        ...


class Hysteresis:
    """Frame decisions in, start/end events out.

    Args:
        hop: seconds between frames.
        min_speech: speech frames needed (in seconds) before a segment starts.
        min_silence: non-speech frames needed (in seconds) before it ends.
        offset: stream time of frame 0's boundary (the energy detector's frame centres).
        frame_span: seconds from a frame's start to the end of the audio it reads.
    """

    def __init__(
        self,
        hop: float,
        min_speech: float,
        min_silence: float,
        offset: float = 0.0,
        frame_span: float | None = None,
    ) -> None:
        self.hop, self.offset = hop, offset
        self.frame_span = hop if frame_span is None else frame_span
        self.in_speech = False
        self.frames = 0
        self._run = 0  # consecutive frames disagreeing with the state
        self._run_start = 0  # first frame of that run
        self._need_speech = max(1, round(min_speech / hop))
        self._need_silence = max(1, round(min_silence / hop))

    def step(self, speech: bool) -> VadEvent | None:
        """Take the decision of the next frame; return the event it completes, if any."""
        i = self.frames
        self.frames += 1
        if speech == self.in_speech:
            self._run = 0
            return None
        if self._run == 0:
            self._run_start = i
        self._run += 1
        need = self._need_silence if self.in_speech else self._need_speech
        if self._run < need:
            return None
        self.in_speech, self._run = not self.in_speech, 0
        time = max(0.0, self._run_start * self.hop + self.offset)
        decided = i * self.hop + self.frame_span
        return VadEvent("start" if self.in_speech else "end", time, decided)
