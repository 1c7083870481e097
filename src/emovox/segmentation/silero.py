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
                cut = self.cfg.neg_threshold if self.in_speech else self.cfg.threshold
                event = self._events.step(p >= cut)
                if event is not None:
                    events.append(event)
        return events
