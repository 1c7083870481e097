"""The neural voice-activity detector: silero-vad, block by block, many chunks per call.

Its TorchScript weights ship in the ``silero-vad`` wheel and are loaded from there (nothing is
downloaded). Speech probability per 32-ms chunk at 16 kHz; speech starts after ``min_speech`` of
chunks at or above ``threshold`` and ends after ``min_silence`` of chunks below
``neg_threshold``.

silero's network is a short-time Fourier transform and a convolutional encoder that read one
chunk (and the 64 samples before it), then an LSTM cell that carries the state from chunk to
chunk, then a small decoder. Called a chunk at a time, as silero's own loop does, the per-call
overhead dominates. Here the encoder and decoder run on all the chunks of a block at once and
only the recurrence runs in sequence (as one ``torch.nn.LSTM`` over the block, holding the cell's
weights), so the probabilities are silero's own, state carried through the whole stream, to
float rounding (about 1e-5), at several times the speed.
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

    The probabilities do not depend on how the stream is cut into blocks (to float rounding):
    a file and a live stream of the same audio give the same segments.

    Raises:
        RuntimeError: silero-vad is not installed.
    """

    SR = 16000
    CHUNK = 512
    BATCH = 256
    """Most chunks through the encoder in one call (bounds the memory of a long block)."""

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
        self._torch = torch
        self._net = self.model._model  # the 16-kHz network: stft, encoder, decoder
        self._context_size = int(self._net.context_size_samples)
        self._lstm = _lstm_of(self._net.decoder.rnn)
        self._state: tuple | None = None  # the LSTM's (h, c); None: silero's initial zeros
        self._context = np.zeros(self._context_size, dtype=np.float32)
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
        for p in self.chunk_probabilities(self._new_chunks(block)):
            events += self._step(float(p))
        return events

    def chunk_probabilities(self, chunks: np.ndarray) -> np.ndarray:
        """silero's speech probability of each of the next ``[n, CHUNK]`` chunks of the stream
        (at 16 kHz), carrying its state on."""
        if not len(chunks):
            return np.zeros(0)
        torch = self._torch
        ctx = np.concatenate([self._context[None], chunks[:-1, -self._context_size :]])
        x = torch.from_numpy(np.concatenate([ctx, chunks], axis=1))
        with torch.inference_mode():
            enc = torch.cat(
                [
                    self._net.encoder(self._net.stft(x[i : i + self.BATCH]))
                    for i in range(0, len(x), self.BATCH)
                ]
            ).squeeze(-1)
            h, state = self._lstm(enc[None], self._state)
            out = self._net.decoder.decoder(h[0].unsqueeze(-1))
        self._state = state
        self._context = chunks[-1, -self._context_size :].copy()
        return out.reshape(len(chunks), -1).mean(axis=1).numpy().astype(np.float64)

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


def _lstm_of(cell):
    """A one-layer ``torch.nn.LSTM`` holding the weights of silero's LSTM cell: the same
    recurrence over a whole sequence in one call."""
    import torch

    params = dict(cell.named_parameters())
    hidden = params["weight_hh"].shape[1]
    lstm = torch.nn.LSTM(params["weight_ih"].shape[1], hidden, batch_first=True).eval()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(params[name])
    lstm.requires_grad_(False)
    return lstm
