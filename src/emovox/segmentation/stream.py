"""One recording as a stream: audio blocks in, finished speech segments with their samples out.

:class:`SegmentStream` ties the three parts together (a detector from :func:`make_vad`, the
:class:`~emovox.segmentation.shaper.SegmentShaper`, the
:class:`~emovox.segmentation.blocks.AudioBuffer`). The offline path
(:func:`~emovox.segmentation.predict.predict_segments`: CLI, server, Python) and the live mode
feed it the same way, so the same recording gives the same segments through all of them.
"""

from __future__ import annotations

import numpy as np

from emovox.segmentation.blocks import AudioBuffer
from emovox.segmentation.config import SegmentationConfig
from emovox.segmentation.events import Segment
from emovox.segmentation.shaper import SegmentShaper
from emovox.segmentation.vad import make_vad, resolve_vad

Piece = tuple[Segment, np.ndarray]
"""A finished segment and its samples."""


class SegmentStream:
    """Finds the speech segments of a stream of blocks, keeping only the audio still needed.

    Args:
        sr: sample rate of the blocks.
        vad: ``auto``, ``silero`` or ``energy``.
        config: the segmentation settings.
        keep_seconds: also keep at least this much of the latest audio (for rolling windows).
    """

    def __init__(
        self,
        sr: int,
        vad: str = "auto",
        config: SegmentationConfig | None = None,
        keep_seconds: float = 0.0,
    ) -> None:
        self.sr = sr
        self.cfg = config or SegmentationConfig()
        self.vad_name = resolve_vad(vad)
        self.vad = make_vad(self.vad_name, sr, self.cfg)
        self.shaper = SegmentShaper(self.cfg)
        self.buffer = AudioBuffer(sr)
        self.keep_seconds = keep_seconds
        self.max_buffer_seconds = 0.0

    @property
    def time(self) -> float:
        """Stream time (s) the detector has analysed."""
        return self.vad.time

    @property
    def samples_seen(self) -> int:
        return self.buffer.end

    @property
    def pending(self) -> Segment | None:
        """The last closed segment, held back while a neighbour may still merge into it."""
        return self.shaper.pending

    @property
    def open_start(self) -> float | None:
        """Start (s) of the speech still going on, or ``None``."""
        return self.shaper.open_start

    def audio(self, start: float, end: float) -> np.ndarray:
        """The samples of ``[start, end)`` seconds that are still kept."""
        return self.buffer.get(start, end)

    def feed(self, block: np.ndarray) -> list[Piece]:
        """Take the next block; return the segments that can no longer change."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self.buffer.append(block)
        done = self.shaper.update(self.vad.feed(block), self.vad.time)
        out = [(s, self.buffer.get(s.start, s.end)) for s in done]
        latest = self.buffer.end / self.sr - self.keep_seconds
        self.buffer.drop_before(min(self.shaper.earliest_needed(self.vad.time), latest))
        self.max_buffer_seconds = max(self.max_buffer_seconds, self.buffer.samples / self.sr)
        return out

    def finish(self) -> list[Piece]:
        """End of the stream: the remaining segments."""
        done = self.shaper.update(self.vad.flush(), self.vad.time)
        done += self.shaper.finish(self.buffer.end / self.sr)
        return [(s, self.buffer.get(s.start, s.end)) for s in done]
