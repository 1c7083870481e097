"""Audio in blocks: files read and resampled block by block, never decoded whole, and the
buffer that keeps only the samples a segment may still need."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from emovox.audio import RESAMPLE_QUALITY, AudioError, audio_info, prepare_array, to_mono


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


class AudioBuffer:
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
