"""The neural voice-activity detector: silero-vad, block by block.

Its TorchScript weights ship in the ``silero-vad`` wheel and are loaded from there (nothing is
downloaded). Speech probability per 32-ms chunk at 16 kHz; speech starts after ``min_speech`` of
chunks at or above ``threshold`` and ends after ``min_silence`` of chunks below
``neg_threshold``.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import soxr

from emovox.audio import RESAMPLE_QUALITY
from emovox.segmentation.config import SegmentationConfig
from emovox.segmentation.events import Hysteresis, VadEvent


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
    """silero-vad on blocks at ``sr`` Hz (resampled to 16 kHz as a stream).

    Raises:
        RuntimeError: silero-vad is not installed.
    """

    SR = 16000
    CHUNK = 512

    def __init__(self, sr: int, config: SegmentationConfig | None = None) -> None:
        import torch

        weights = silero_weights()
        if weights is None:
            raise RuntimeError(
                "silero-vad is not installed (pip install silero-vad); use --vad energy"
            )
        self.cfg = config or SegmentationConfig()
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
        self.hop = self.CHUNK / self.SR
        self._events = Hysteresis(self.hop, self.cfg.min_speech, self.cfg.min_silence)
        self.probabilities: list[float] = []  # kept only when ``keep_probabilities``
        self.keep_probabilities = False

    @property
    def in_speech(self) -> bool:
        return self._events.in_speech

    @property
    def time(self) -> float:
        """Stream time (s) analysed so far."""
        return self._events.frames * self.hop

    def flush(self) -> list[VadEvent]:
        """Nothing is held back: no events at the end of a stream."""
        return []

    def feed(self, block: np.ndarray) -> list[VadEvent]:
        """Take the next samples (at the rate given to the constructor); return events."""
        events: list[VadEvent] = []
        with self._torch.inference_mode():
            for chunk in self._new_chunks(block):
                p = float(self.model(self._torch.from_numpy(chunk.copy())[None], self.SR))
                events += self._step(p)
        return events

    def _new_chunks(self, block: np.ndarray) -> np.ndarray:
        """The whole 512-sample chunks at 16 kHz that ``block`` completes (``[n, CHUNK]``);
        the rest waits for the next block."""
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if self._stream is not None:
            x = self._stream.resample_chunk(x)
        self._buf = np.concatenate([self._buf, x])
        n = self._buf.size // self.CHUNK
        chunks = self._buf[: n * self.CHUNK].reshape(n, self.CHUNK)
        self._buf = self._buf[n * self.CHUNK :].copy()
        return chunks

    def _step(self, p: float) -> list[VadEvent]:
        """One chunk's speech probability through the hysteresis: the event it completes."""
        if self.keep_probabilities:
            self.probabilities.append(p)
        cut = self.cfg.neg_threshold if self.in_speech else self.cfg.threshold
        event = self._events.step(p >= cut)
        return [] if event is None else [event]


GATE_RANGE_DB = 50.0
GATE_FLOOR_DB = -70.0
"""A 32-ms chunk can hold speech (and is given to silero) when its energy is within
:data:`GATE_RANGE_DB` of the loudest chunk so far and above :data:`GATE_FLOOR_DB` dBFS; the
others are silence to silero too (probability 0), and it never runs on them."""

GATE_PAD_CHUNKS = (8, 8)
"""Chunks (32 ms each) before and after every open chunk that silero sees as well: the context it
needs to settle, and the tails of words, which are quiet."""

GATE_BATCH = 64
"""Most regions whose chunks go through silero in one call."""


class GatedSileroVad(SileroVad):
    """silero-vad run only where the energy says there may be speech, many regions at once.

    Every chunk's energy is measured first; silero runs on the chunks near an open one (a
    *region*: the open chunks and :data:`GATE_PAD_CHUNKS` around them) and the rest count as
    probability 0. Each region starts from silero's initial state (as the stream's start does)
    and carries its own state, so that regions are stepped side by side in one batched call (up
    to :data:`GATE_BATCH` rows); the probabilities then go through the same hysteresis as
    :class:`SileroVad`'s, in time order. A chunk's probability is known once the
    ``GATE_PAD_CHUNKS[1]`` chunks after it have arrived, so events come that much later than
    plain silero's (256 ms); :meth:`flush` settles the last ones at the end of a stream.

    On a recording with no pause this is plain silero, to the last digit (one region from the
    start); with pauses the regions after a pause start afresh where plain silero carries its
    state through the silence, and silero's state matters: on 200 s of RAVDESS clips with
    0.5-2.5 s pauses, 32 of 39 segments stayed within 0.1 s of plain silero's, at 3.7 times its
    speed (143x against 39x real time on one core beside other work). Opt-in
    (``SegmentationConfig(gate=True)``) until the regions' starting state is fixed.
    """

    def __init__(self, sr: int, config: SegmentationConfig | None = None) -> None:
        super().__init__(sr, config)
        self._open: list[bool] = []  # the gate of every chunk of the stream
        self._chunks: list[np.ndarray] = []  # the chunks not yet settled, from chunk _base on
        self._base = 0
        self._peak = -np.inf
        self._state: dict[int, tuple] = {}  # region (its first chunk) -> silero state, context
        self._region = -1  # the region of the last settled chunk (-1: none)

    def feed(self, block: np.ndarray) -> list[VadEvent]:
        chunks = self._new_chunks(block)
        if len(chunks):
            energy = 10 * np.log10(np.mean(chunks.astype(np.float64) ** 2, axis=1) + 1e-12)
            for e, c in zip(energy, chunks, strict=True):
                self._peak = max(self._peak, float(e))
                self._open.append(bool(e > max(self._peak - GATE_RANGE_DB, GATE_FLOOR_DB)))
                self._chunks.append(c.copy())
        return self._settle(len(self._open) - GATE_PAD_CHUNKS[0])

    def flush(self) -> list[VadEvent]:
        """The end of the stream: settle the chunks still waiting for their neighbours."""
        return self._settle(len(self._open))

    def _settle(self, upto: int) -> list[VadEvent]:
        """Probabilities of the chunks from ``_base`` to ``upto`` (stream chunk numbers), then
        their events. Chunk ``i`` is near the gate when a chunk in ``[i - after, i + before]``
        is open (``GATE_PAD_CHUNKS``), so it is settled once chunk ``i + before`` is known."""
        start = self._base
        if upto <= start:
            return []
        before, after = GATE_PAD_CHUNKS
        counts = np.concatenate([[0], np.cumsum(self._open)])
        regions: dict[int, list[int]] = {}
        for i in range(start, upto):
            lo, hi = max(0, i - after), min(len(self._open), i + before + 1)
            if counts[hi] == counts[lo]:
                self._region = -1
                continue
            if self._region < 0:
                self._region = i
            regions.setdefault(self._region, []).append(i)
        probs = np.zeros(upto - start)
        for r, p in self._run_regions(regions).items():
            probs[np.asarray(regions[r]) - start] = p
        for r in [r for r in self._state if r != self._region]:
            del self._state[r]  # a closed region's state is not needed again
        self._chunks = self._chunks[upto - start :]
        self._base = upto
        events: list[VadEvent] = []
        for p in probs:
            events += self._step(float(p))
        return events

    def _run_regions(self, regions: dict[int, list[int]]) -> dict[int, np.ndarray]:
        """silero over each region's chunks, regions side by side in batches; each region
        continues from its saved state (or starts afresh)."""
        out = {r: np.zeros(len(idx)) for r, idx in regions.items()}
        torch = self._torch
        order = sorted(regions, key=lambda r: -len(regions[r]))
        for g in range(0, len(order), GATE_BATCH):
            group = order[g : g + GATE_BATCH]
            steps = max(len(regions[r]) for r in group)
            for t in range(steps):
                rows = [r for r in group if t < len(regions[r])]
                chunks = [self._chunks[regions[r][t] - self._base] for r in rows]
                x = torch.from_numpy(np.stack(chunks))
                self._load_states(rows)
                with torch.inference_mode():
                    p = self.model(x, self.SR)[:, 0].numpy()
                self._save_states(rows)
                for r, v in zip(rows, p, strict=True):
                    out[r][t] = v
        return out

    def _load_states(self, rows: list[int]) -> None:
        """The silero state of each region of ``rows`` into the model (fresh ones: zeros)."""
        torch, m = self._torch, self.model
        fresh = (torch.zeros(2, 1, 128), torch.zeros(1, 64))
        states = [self._state.get(r, fresh) for r in rows]
        m._state = torch.cat([s for s, _ in states], dim=1)
        m._context = torch.cat([c for _, c in states], dim=0)
        m._last_sr = self.SR
        m._last_batch_size = len(rows)

    def _save_states(self, rows: list[int]) -> None:
        m = self.model
        for k, r in enumerate(rows):
            self._state[r] = (m._state[:, k : k + 1].clone(), m._context[k : k + 1].clone())
