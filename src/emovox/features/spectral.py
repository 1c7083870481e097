"""Torch-native log-mel and MFCC, batched, on CPU or CUDA.

Pure functions with a cached mel filterbank (as in openai/whisper's ``audio.py``); the results
match ``librosa.feature.melspectrogram`` + ``librosa.power_to_db`` (and ``librosa.feature.mfcc``)
to within 1e-3 dB for the same parameters.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

AMIN = 1e-10
"""Floor on power before the logarithm, as in ``librosa.power_to_db``."""

DELTA_WIDTH = 9
"""Frames used by the delta regression (librosa's default)."""


SLANEY_LINEAR_HZ = 200.0 / 3
"""Width in Hz of one mel on the linear part of Slaney's scale (below 1 kHz)."""
SLANEY_BREAK_HZ = 1000.0
"""Where Slaney's mel scale turns from linear to logarithmic."""
SLANEY_LOG_STEP = math.log(6.4) / 27.0
"""Natural-log step per mel on the logarithmic part of Slaney's scale."""


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (the Auditory Toolbox's, librosa's default): linear to 1 kHz, then
    logarithmic."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / SLANEY_LINEAR_HZ
    above = SLANEY_BREAK_HZ / SLANEY_LINEAR_HZ + np.log(np.maximum(hz, 1e-12) / SLANEY_BREAK_HZ) / (
        SLANEY_LOG_STEP
    )
    return np.where(hz >= SLANEY_BREAK_HZ, above, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """The inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    brk = SLANEY_BREAK_HZ / SLANEY_LINEAR_HZ
    return np.where(
        mel >= brk,
        SLANEY_BREAK_HZ * np.exp(SLANEY_LOG_STEP * (mel - brk)),
        SLANEY_LINEAR_HZ * mel,
    )


@lru_cache(maxsize=16)
def _mel_filters_np(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None
) -> np.ndarray:
    """Triangular filters on ``n_mels + 2`` points equally spaced in mel between ``fmin`` and
    ``fmax``, each scaled to unit area (``2 / width in Hz``), over the FFT bin frequencies;
    the same matrix as ``librosa.filters.mel`` (slaney scale and norm), without importing it."""
    fmax = sr / 2.0 if fmax is None else float(fmax)
    bins = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def mel_filters(
    sr: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Slaney-normalised mel filterbank ``[n_mels, n_fft // 2 + 1]`` (cached per parameters)."""
    return torch.from_numpy(_mel_filters_np(sr, n_fft, n_mels, fmin, fmax)).to(device)


MEL_BLOCK = 8
"""Mel filters applied together by :func:`apply_mel`: each group of this many consecutive
filters multiplies only the FFT bins where one of them is non-zero."""


@lru_cache(maxsize=64)
def _mel_blocks(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, device: str
) -> tuple[tuple[int, int, torch.Tensor], ...]:
    """``(first bin, end bin, weights [filters, bins])`` of each :data:`MEL_BLOCK` filters."""
    weights = _mel_filters_np(sr, n_fft, n_mels, fmin, fmax)
    blocks = []
    for m0 in range(0, n_mels, MEL_BLOCK):
        part = weights[m0 : m0 + MEL_BLOCK]
        used = np.flatnonzero(part.any(axis=0))
        k0, k1 = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
        blocks.append((k0, k1, torch.from_numpy(np.ascontiguousarray(part[:, k0:k1])).to(device)))
    return tuple(blocks)


def apply_mel(
    power: torch.Tensor, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax=None
) -> torch.Tensor:
    """``mel_filters(...) @ power`` for ``[..., n_fft // 2 + 1, T]`` power, skipping the zeros.

    The filterbank is banded (each FFT bin feeds at most two filters), so multiplying block by
    block does about a seventh of the dense product's work, with the same values up to float
    rounding.
    """
    blocks = _mel_blocks(sr, n_fft, n_mels, fmin, fmax, str(power.device))
    parts = [w.to(power.dtype) @ power[..., k0:k1, :] for k0, k1, w in blocks]
    return torch.cat(parts, dim=-2)


@lru_cache(maxsize=16)
def _dct_np(n_mfcc: int, n_mels: int) -> np.ndarray:
    # Orthonormal DCT-II, the matrix scipy.fft.dct(..., type=2, norm="ortho") applies.
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


def frame_count(n_samples: int | torch.Tensor, hop_length: int):
    """Frames that a centred STFT gives for ``n_samples`` samples."""
    return 1 + n_samples // hop_length


def power_spectrogram(
    audio: torch.Tensor, n_fft: int, hop_length: int, win_length: int
) -> torch.Tensor:
    """``|STFT|^2`` of ``[B, N]`` audio: ``[B, n_fft // 2 + 1, frames]`` (centred, zero-padded)."""
    window = torch.hann_window(win_length, device=audio.device, dtype=audio.dtype)
    spec = torch.stft(
        audio,
        n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    parts = torch.view_as_real(spec).square_()  # contiguous: faster than real and imag views
    return parts[..., 0] + parts[..., 1]


def log_mel_spectrogram(
    audio: torch.Tensor,
    sr: int,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = None,
    n_mels: int = 64,
    fmin: float = 0.0,
    fmax: float | None = None,
    amin: float = AMIN,
) -> torch.Tensor:
    """Log-mel power in dB, ``[B, n_mels, frames]`` for ``[B, N]`` audio (no top-dB clipping).

    ``amin`` is the absolute power floor (librosa's default 1e-10, i.e. -100 dB).
    """
    power = power_spectrogram(audio, n_fft, hop_length, win_length or n_fft)
    return power_to_db(apply_mel(power, sr, n_fft, n_mels, fmin, fmax), amin)


def power_to_db(power: torch.Tensor, amin: float = AMIN) -> torch.Tensor:
    """``10 log10(max(power, amin))``."""
    return 10.0 * torch.log10(torch.clamp(power, min=amin))


def clip_top_db(log_spec: torch.Tensor, top_db: float, n_frames: torch.Tensor | None = None):
    """Floor each item at its own maximum minus ``top_db`` (``librosa.power_to_db``'s top_db)."""
    if n_frames is None:
        peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    else:
        valid = _frame_mask(n_frames, log_spec.shape[-1])[:, None, :]
        peak = log_spec.masked_fill(~valid, -torch.inf).amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(log_spec, peak - top_db)


def mfcc_from_log_mel(log_mel: torch.Tensor, n_mfcc: int) -> torch.Tensor:
    """Orthonormal DCT-II over the mel axis: ``[B, n_mels, T]`` -> ``[B, n_mfcc, T]``."""
    dct = torch.from_numpy(_dct_np(n_mfcc, log_mel.shape[-2])).to(log_mel)
    return dct @ log_mel


def deltas(x: torch.Tensor, width: int = DELTA_WIDTH) -> torch.Tensor:
    """First-order regression deltas along the last axis (edges padded by repetition)."""
    half = width // 2
    kernel = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
    kernel = kernel / kernel.square().sum()
    flat = x.reshape(-1, 1, x.shape[-1])
    padded = torch.nn.functional.pad(flat, (half, half), mode="replicate")
    out = torch.nn.functional.conv1d(padded, kernel.view(1, 1, -1))
    return out.reshape(x.shape)


def _frame_mask(n_frames: torch.Tensor, total: int) -> torch.Tensor:
    return torch.arange(total, device=n_frames.device)[None, :] < n_frames[:, None]
