"""Reading audio: any common container, any channel count, any rate -> float32 mono.

Small pure functions and named constants, in the spirit of openai/whisper's ``audio.py``.
Every failure raises :class:`AudioError`, which names the file and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
"""The rate every emovox feature works at unless a feature configuration says otherwise."""

MIN_DURATION = 0.1
"""Shortest audio, in seconds, that :func:`load_audio` accepts by default."""

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc", ".opus")
"""File name endings that folder scans treat as audio (reading itself trusts the content)."""

RESAMPLE_QUALITY = "HQ"


class AudioError(ValueError):
    """A file could not be used as audio. ``str(err)`` names the file and the reason."""

    def __init__(self, path: str | os.PathLike | None, reason: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = reason
        where = self.path if self.path is not None else "<array>"
        super().__init__(f"{where}: {reason}")


class LongAudio(Exception):
    """Raised by :func:`load_audio` instead of reading a file longer than its ``max_duration``
    (not an :class:`AudioError`: the file is fine, only too long to read whole)."""

    def __init__(self, path: str | os.PathLike, seconds: float) -> None:
        self.path = str(path)
        self.seconds = seconds
        super().__init__(f"{self.path}: {seconds:.1f} s of audio")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Down-mix ``(frames, channels)`` or ``(frames,)`` audio to ``(frames,)`` by averaging."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError(f"expected 1-D or 2-D audio, got shape {samples.shape}")
    return samples.mean(axis=1)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample 1-D float audio with soxr; a no-op when the rates match."""
    if orig_sr == target_sr:
        return samples
    return soxr.resample(samples, orig_sr, target_sr, quality=RESAMPLE_QUALITY)


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """Header information (rate, channels, frames) of an audio file, or :class:`AudioError`."""
    path = Path(path)
    _check_file(path)
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(path, f"not a readable audio file ({_short(exc)})") from exc


def load_audio(
    path: str | os.PathLike,
    sr: int | None = SAMPLE_RATE,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    min_duration: float = MIN_DURATION,
    max_duration: float | None = None,
) -> np.ndarray:
    """Read an audio file as float32 mono at ``sr`` Hz.

    The container (wav, flac, ogg/vorbis/opus, mp3, aiff) is recognised from the content, not the
    extension. Multi-channel audio is averaged to mono and any rate is resampled with soxr.
    ``sr=None`` keeps the file's own rate.

    Args:
        path: the file.
        sr: target sample rate, or ``None`` for the native one.
        offset: seconds to skip at the start.
        duration: seconds to read at most (``None``: to the end).
        min_duration: shorter audio (after offset/duration) raises :class:`AudioError`.
        max_duration: a longer file (its whole length, from the header) raises
            :class:`LongAudio` before anything is decoded (``None``: no limit).

    Raises:
        AudioError: missing, empty, unreadable, or too-short file; the message names the file.
    """
    path = Path(path)
    _check_file(path)
    try:
        with sf.SoundFile(str(path)) as f:
            native_sr = f.samplerate
            if max_duration is not None and f.frames > max_duration * native_sr:
                raise LongAudio(path, f.frames / native_sr)
            start = round(offset * native_sr)
            if start:
                if start >= f.frames > 0:
                    raise AudioError(path, f"offset {offset:.2f} s is past the end of the audio")
                f.seek(start)
            frames = -1 if duration is None else round(duration * native_sr)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(path, f"not a readable audio file ({_short(exc)})") from exc
    samples = to_mono(data)
    if samples.size == 0:
        raise AudioError(path, "the file holds no audio samples")
    got = samples.size / native_sr
    if got < min_duration:
        raise AudioError(
            path, f"audio is {got:.3f} s long, shorter than the minimum {min_duration} s"
        )
    if not np.all(np.isfinite(samples)):
        raise AudioError(path, "the audio holds NaN or infinite samples")
    if sr is not None:
        samples = resample(samples, native_sr, sr)
    return np.ascontiguousarray(samples, dtype=np.float32)


def prepare_array(samples: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Validate an in-memory waveform (any channel layout, any rate) and bring it to ``target_sr``.

    Accepts ``(frames,)``, ``(frames, channels)`` or ``(channels, frames)`` with few channels.
    Integer PCM is scaled to [-1, 1].
    """
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.unsignedinteger):  # offset binary, e.g. 8-bit WAV
        half = float(np.iinfo(x.dtype).max) / 2 + 0.5
        x = (x.astype(np.float32) - half) / half
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / -float(np.iinfo(x.dtype).min)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2 and x.shape[0] < x.shape[1] and x.shape[0] <= 8:
        x = x.T
    if x.ndim not in (1, 2):
        raise AudioError(None, f"expected 1-D or 2-D audio, got shape {x.shape}")
    x = to_mono(x)
    if x.size == 0:
        raise AudioError(None, "the array holds no audio samples")
    if x.size / sr < MIN_DURATION:
        raise AudioError(None, f"audio is {x.size / sr:.3f} s long, shorter than {MIN_DURATION} s")
    if not np.all(np.isfinite(x)):
        raise AudioError(None, "the audio holds NaN or infinite samples")
    return np.ascontiguousarray(resample(x, sr, target_sr), dtype=np.float32)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "the file is empty (0 bytes)")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
