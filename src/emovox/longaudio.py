"""Long recordings: read in blocks, find speech, predict one emotion per segment.

A file is never decoded whole: :func:`iter_file_blocks` reads it with soundfile in blocks and
resamples each block with a streaming ``soxr.ResampleStream``, so memory stays bounded for an
hour-long recording. Voice activity is found block by block, carrying its state over block edges,
by one of two detectors with the same interface (``feed(block) -> events``):

- ``silero``: the silero-vad neural VAD (the ``silero-vad`` package; its TorchScript weights ship
  in the wheel and are loaded from there, nothing is downloaded);
- ``energy``: :class:`emovox.segments.StreamingVad`, the dependency-free frame-energy VAD.

``auto`` takes silero when it is installed. :class:`SegmentShaper` then pads each segment, merges
short pieces into close neighbours, and cuts segments longer than ``max_segment`` (using
:func:`emovox.segments.split_long`, so no short leftover remains). Only the audio that a segment
still open or pending can need is kept, and segments are predicted in small batches as they are
closed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import soxr

from emovox.audio import (
    MIN_DURATION,
    RESAMPLE_QUALITY,
    AudioError,
    audio_info,
    prepare_array,
    to_mono,
)
from emovox.segments import Segment, StreamingVad, VadConfig, VadEvent, split_long

if TYPE_CHECKING:
    from emovox.recognizer import Recognizer

VAD_CHOICES = ("auto", "silero", "energy")


@dataclasses.dataclass(frozen=True)
class LongAudioConfig:
    """How speech is cut into segments (seconds).

    Attributes:
        max_segment: longer segments are cut into equal pieces no longer than this.
        min_speech: shorter bursts of speech are not segments.
        min_silence: shorter pauses do not end a segment.
        pad: added before and after each segment.
        min_segment: a segment shorter than this is merged into a neighbour closer than
            ``merge_gap`` (when the result is not longer than ``max_segment``).
        merge_gap: see ``min_segment``.
        threshold: silero speech probability that starts speech ...
        neg_threshold: ... and the probability below which it may end.
    """

    max_segment: float = 10.0
    min_speech: float = 0.25
    min_silence: float = 0.3
    pad: float = 0.1
    min_segment: float = 1.0
    merge_gap: float = 1.0
    threshold: float = 0.5
    neg_threshold: float = 0.35

    def __post_init__(self) -> None:
        if self.max_segment <= max(self.min_speech, self.min_segment, 2 * self.pad):
            raise ValueError("max_segment must be longer than min_speech, min_segment and 2*pad")
        if not 0 < self.neg_threshold <= self.threshold < 1:
            raise ValueError("need 0 < neg_threshold <= threshold < 1")


# -- reading in blocks -----------------------------------------------------------------------


def iter_file_blocks(
    path: str | os.PathLike, sr: int, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """Float32 mono blocks of a file at ``sr`` Hz, read and resampled block by block.

    Raises:
        AudioError: the file is missing, unreadable or holds no audio.
    """
    path = Path(path)
    audio_info(path)  # raises AudioError for missing / empty / unreadable files
    got = 0
    try:
        with sf.SoundFile(str(path)) as f:
            native = f.samplerate
            stream = (
                None
                if native == sr
                else soxr.ResampleStream(native, sr, 1, dtype="float32", quality=RESAMPLE_QUALITY)
            )
            frames = max(1, round(block_seconds * native))
            while True:
                data = f.read(frames=frames, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                mono = np.ascontiguousarray(to_mono(data), dtype=np.float32)
                if not np.all(np.isfinite(mono)):
                    raise AudioError(path, "the audio holds NaN or infinite samples")
                got += mono.size
                out = mono if stream is None else stream.resample_chunk(mono)
                if out.size:
                    yield out
            if stream is not None:
                tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                if tail.size:
                    yield tail
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(path, f"not a readable audio file ({exc})") from exc
    if got == 0:
        raise AudioError(path, "the file holds no audio samples")


def iter_array_blocks(
    audio: np.ndarray, sr: int, target_sr: int, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """An in-memory waveform at ``target_sr``, in blocks (for the same code path as files)."""
    x = prepare_array(np.asarray(audio), sr, target_sr)
    n = max(1, round(block_seconds * target_sr))
    for s in range(0, x.size, n):
        yield x[s : s + n]


# -- voice activity detectors ------------------------------------------------------------------


def silero_weights() -> Path | None:
    """The TorchScript weights shipped in the ``silero-vad`` wheel, or ``None``.

    The package is located without importing it (its ``__init__`` may import torchaudio).
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = Path(base) / "data" / "silero_vad.jit"
        if path.is_file():
            return path
    return None


def silero_available() -> bool:
    """Whether ``--vad silero`` can run here."""
    return silero_weights() is not None


class SileroVad:
    """silero-vad, block by block: speech probability per 32 ms chunk at 16 kHz, hysteresis.

    Speech starts after ``min_speech`` of chunks at or above ``threshold`` and ends after
    ``min_silence`` of chunks below ``neg_threshold``. Emits :class:`VadEvent` like
    :class:`emovox.segments.StreamingVad`.
    """

    SR = 16000
    CHUNK = 512

    def __init__(self, sr: int, config: LongAudioConfig | None = None) -> None:
        import torch

        weights = silero_weights()
        if weights is None:
            raise RuntimeError(
                "silero-vad is not installed (pip install silero-vad); use --vad energy"
            )
        self.cfg = config or LongAudioConfig()
        with warnings.catch_warnings():  # torch.jit.load is deprecated in newer torch
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model = torch.jit.load(str(weights), map_location="cpu").eval()
        self.model.reset_states()
        self._torch = torch
        self._stream = (
            None
            if sr == self.SR
            else soxr.ResampleStream(sr, self.SR, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        )
        self._buf = np.zeros(0, dtype=np.float32)
        self._chunks = 0
        self.hop = self.CHUNK / self.SR
        self.in_speech = False
        self._run = 0
        self._run_start = 0
        self._need_speech = max(1, round(self.cfg.min_speech / self.hop))
        self._need_silence = max(1, round(self.cfg.min_silence / self.hop))
        self.probabilities: list[float] = []  # kept only when ``keep_probabilities``
        self.keep_probabilities = False

    @property
    def time(self) -> float:
        """Stream time (s) analysed so far."""
        return self._chunks * self.hop

    def feed(self, block: np.ndarray) -> list[VadEvent]:
        """Take the next samples (at the rate given to the constructor); return events."""
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if self._stream is not None:
            x = self._stream.resample_chunk(x)
        self._buf = np.concatenate([self._buf, x])
        n = self._buf.size // self.CHUNK
        if n == 0:
            return []
        chunks = self._buf[: n * self.CHUNK].reshape(n, self.CHUNK)
        self._buf = self._buf[n * self.CHUNK :].copy()
        events: list[VadEvent] = []
        with self._torch.inference_mode():
            for chunk in chunks:
                p = float(self.model(self._torch.from_numpy(chunk.copy())[None], self.SR))
                if self.keep_probabilities:
                    self.probabilities.append(p)
                events.extend(self._step(p))
        return events

    def _step(self, p: float) -> list[VadEvent]:
        i = self._chunks
        self._chunks += 1
        speech = p >= (self.cfg.neg_threshold if self.in_speech else self.cfg.threshold)
        if speech == self.in_speech:
            self._run = 0
            return []
        if self._run == 0:
            self._run_start = i
        self._run += 1
        decided = (i + 1) * self.hop
        if not self.in_speech and self._run >= self._need_speech:
            self.in_speech, self._run = True, 0
            return [VadEvent("start", self._run_start * self.hop, decided)]
        if self.in_speech and self._run >= self._need_silence:
            self.in_speech, self._run = False, 0
            return [VadEvent("end", self._run_start * self.hop, decided)]
        return []


def make_vad(kind: str, sr: int, config: LongAudioConfig | None = None):
    """The detector ``kind`` (``auto``, ``silero``, ``energy``) for audio at ``sr`` Hz."""
    cfg = config or LongAudioConfig()
    if kind not in VAD_CHOICES:
        raise ValueError(f"vad must be one of {VAD_CHOICES}, not {kind!r}")
    if kind == "silero" or (kind == "auto" and silero_available()):
        return SileroVad(sr, cfg)
    vad_cfg = VadConfig(
        min_speech=cfg.min_speech,
        min_silence=cfg.min_silence,
        pad=cfg.pad,
        max_segment=cfg.max_segment,
    )
    return StreamingVad(sr, vad_cfg)


# -- shaping segments as they close -------------------------------------------------------------


class SegmentShaper:
    """Turns VAD events into final segments: padded, short pieces merged, long ones cut.

    Feed it the events of each block with :meth:`update` (and the stream time analysed so far);
    it returns the segments that can no longer change. :meth:`finish` returns the rest.
    """

    def __init__(self, config: LongAudioConfig | None = None) -> None:
        self.cfg = config or LongAudioConfig()
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


# -- the audio kept for segments not yet predicted ---------------------------------------------


class _AudioBuffer:
    """Blocks of samples with their start index; the old ones are dropped when not needed."""

    def __init__(self, sr: int) -> None:
        self.sr = sr
        self.blocks: list[tuple[int, np.ndarray]] = []
        self.end = 0

    def append(self, block: np.ndarray) -> None:
        self.blocks.append((self.end, block))
        self.end += block.size

    def get(self, start: float, end: float) -> np.ndarray:
        a, b = round(start * self.sr), min(round(end * self.sr), self.end)
        parts = [
            blk[max(0, a - s) : max(0, b - s)]
            for s, blk in self.blocks
            if s < b and s + blk.size > a
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def drop_before(self, t: float) -> None:
        cut = round(t * self.sr)
        while self.blocks and self.blocks[0][0] + self.blocks[0][1].size <= cut:
            self.blocks.pop(0)

    @property
    def samples(self) -> int:
        return sum(b.size for _, b in self.blocks)


def predict_long(
    recognizer: Recognizer,
    audio: str | os.PathLike | np.ndarray,
    sr: int | None = None,
    vad: str = "auto",
    config: LongAudioConfig | None = None,
    block_seconds: float = 30.0,
    batch_size: int = 16,
    stats: dict | None = None,
) -> list[dict]:
    """Predict every speech segment of a recording, reading it in blocks.

    Args:
        recognizer: the model.
        audio: a file path (streamed) or a waveform (``sr`` required).
        sr: the waveform's sample rate.
        vad: ``auto``, ``silero`` or ``energy``.
        config: segmentation settings.
        block_seconds: seconds read at once.
        batch_size: segments predicted together.
        stats: when a dict, filled with ``duration``, ``vad`` and ``max_buffer_seconds``.

    Returns:
        ``[{"start", "end", "label", "probabilities"}]`` in time order (seconds, rounded to ms).
    """
    cfg = config or LongAudioConfig()
    fsr = recognizer.sample_rate
    if isinstance(audio, (str, os.PathLike)):
        blocks = iter_file_blocks(audio, fsr, block_seconds)
    else:
        if sr is None:
            raise AudioError(None, "an array needs its sample rate: predict_segments(array, sr=)")
        blocks = iter_array_blocks(audio, sr, fsr, block_seconds)
    detector = make_vad(vad, fsr, cfg)
    shaper = SegmentShaper(cfg)
    buf = _AudioBuffer(fsr)
    results: list[dict] = []
    queue: list[tuple[Segment, np.ndarray]] = []
    max_buffer = 0

    def run(force: bool) -> None:
        if not queue or (len(queue) < batch_size and not force):
            return
        keep = [(s, a) for s, a in queue if a.size >= MIN_DURATION * fsr]
        preds = recognizer.predict_waveforms(
            [a for _, a in keep], [f"{s.start:.3f}-{s.end:.3f}" for s, _ in keep], batch_size
        )
        for (s, _), p in zip(keep, preds, strict=True):
            results.append(
                {
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "label": p.label,
                    "probabilities": p.probabilities,
                }
            )
        queue.clear()

    for block in blocks:
        buf.append(block)
        events = detector.feed(block)
        for seg in shaper.update(events, detector.time):
            queue.append((seg, buf.get(seg.start, seg.end)))
        run(False)
        buf.drop_before(shaper.earliest_needed(detector.time))
        max_buffer = max(max_buffer, buf.samples)
    total = buf.end / fsr
    if buf.end == 0:
        raise AudioError(str(audio) if not isinstance(audio, np.ndarray) else None, "no audio")
    for seg in shaper.finish(total):
        queue.append((seg, buf.get(seg.start, seg.end)))
    run(True)
    if stats is not None:
        stats.update(
            duration=total,
            vad="silero" if isinstance(detector, SileroVad) else "energy",
            max_buffer_seconds=max_buffer / fsr,
        )
    return results
