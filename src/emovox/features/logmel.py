"""Log-mel spectrogram and MFCC features, with optional deltas, trimming and normalisation."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from emovox.features import spectral
from emovox.features.base import Feature

NORMALIZATIONS = ("none", "utterance", "cmvn", "cmvn-floor")
"""``utterance``: subtract the utterance's mean and divide by its std over all bins (removes the
recording's gain, keeps the spectral shape); ``cmvn``: the same per bin over time; ``cmvn-floor``:
``cmvn`` dividing by at least :data:`CMVN_STD_FLOOR_DB`, so that a bin left nearly constant
(the empty band of telephone or codec audio) stays near 0 instead of being blown up to the
scale of speech."""

CMVN_STD_FLOOR_DB = 3.0
"""The smallest per-bin standard deviation ``cmvn-floor`` divides by, in dB: speech bins vary by
5-15 dB over an utterance, the floor-level residue of a band-limited bin by well under 1 dB."""


@dataclasses.dataclass
class LogMel(Feature):
    """Log-mel power spectrogram in dB, shape ``[1 + deltas, n_mels, frames]``."""

    name: ClassVar[str] = "logmel"
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float | None = 80.0
    deltas: int = 0
    normalize: str = "utterance"
    trim_db: float | None = None
    amin: float = spectral.AMIN
    """Absolute power floor before the log. With ``top_db`` set, a tiny value (e.g. 1e-20) leaves
    only the floor relative to each utterance's peak, so quiet recordings (RAVDESS peaks near
    -20 dB) keep exactly their shape when their gain changes; the default matches librosa."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, not {self.normalize!r}")
        if self.deltas not in (0, 1, 2):
            raise ValueError("deltas must be 0, 1 or 2")

    def static(self, audio: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        """The static (non-delta) stream ``[B, bins, T]`` before trimming and normalisation."""
        log_mel = spectral.log_mel_spectrogram(
            audio,
            self.sample_rate,
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.n_mels,
            self.fmin,
            self.fmax,
            self.amin,
        )
        if self.top_db is not None:
            log_mel = spectral.clip_top_db(log_mel, self.top_db, n_frames)
        return log_mel

    def compute(
        self, audio: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n_frames = spectral.frame_count(lengths, self.hop_length)
        x = self.static(audio, n_frames)
        x, n_frames = self._trim(x, n_frames)
        x = self._normalize(x, n_frames)
        streams = [x]
        for _ in range(self.deltas):
            # Repeat each item's last valid frame over its padding, so that a batched item's
            # deltas see the same edge as the item on its own.
            streams.append(spectral.deltas(_hold_last_frame(streams[-1], n_frames)))
        out = torch.stack(streams, dim=1)
        mask = torch.arange(out.shape[-1], device=out.device)[None, :] < n_frames[:, None]
        return out * mask[:, None, None, :], n_frames

    def _trim(self, x: torch.Tensor, n_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Drop leading/trailing frames whose energy is below the loudest frame minus trim_db."""
        if self.trim_db is None:
            return x, n_frames
        energy = self._frame_energy(x)
        valid = torch.arange(x.shape[-1], device=x.device)[None, :] < n_frames[:, None]
        energy = energy.masked_fill(~valid, -torch.inf)
        loud = energy >= energy.amax(dim=1, keepdim=True) - self.trim_db
        out = torch.zeros_like(x)
        new_n = torch.empty_like(n_frames)
        for b in range(x.shape[0]):
            idx = torch.nonzero(loud[b]).flatten()
            first, last = int(idx[0]), int(idx[-1]) + 1
            out[b, :, : last - first] = x[b, :, first:last]
            new_n[b] = last - first
        return out[..., : int(new_n.max())], new_n

    def _frame_energy(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=1)  # [B, T]: the loudest bin of each frame, in dB

    def _normalize(self, x: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        if self.normalize == "none":
            return x
        valid = torch.arange(x.shape[-1], device=x.device)[None, :] < n_frames[:, None]
        w = valid[:, None, :].to(x.dtype)
        dims = (1, 2) if self.normalize == "utterance" else (2,)
        count = w.sum(dim=dims, keepdim=True) * (x.shape[1] if self.normalize == "utterance" else 1)
        mean = (x * w).sum(dim=dims, keepdim=True) / count
        var = (((x - mean) * w) ** 2).sum(dim=dims, keepdim=True) / count
        std = torch.sqrt(var + 1e-5)
        if self.normalize == "cmvn-floor":
            std = std.clamp_min(CMVN_STD_FLOOR_DB)
        return (x - mean) / std


@dataclasses.dataclass
class LogMelWithFunctionals(LogMel):
    """Base of features that stack an utterance's functionals under its log-mel bins.

    Output ``[1 + deltas, n_mels + D, frames]``: the first ``n_mels`` bins are the :class:`LogMel`
    of the utterance, the last :attr:`functionals` (``D``) hold a vector that summarises the whole
    waveform, the same value in every valid frame. One array per utterance lets a late-fusion
    model see a frame-level and an utterance-level view while the cache, crops, padding,
    per-speaker normalisation, bundles and ONNX export stay as they are for any feature: constant
    over time, the functionals survive any crop, and per-speaker normalisation of a bin turns them
    into per-speaker z-scores. Subclasses implement :meth:`functional_vectors`.
    """

    functionals: ClassVar[int] = 0
    """How many bins at the bottom of the array hold the functionals."""
    functionals_label: ClassVar[str] = "functionals"
    """What the functionals are, for error messages."""

    def functional_vectors(self, waves: list[np.ndarray]) -> np.ndarray:
        """``[B, D]`` functionals of whole waveforms (float32 numpy, at :attr:`sample_rate`)."""
        raise NotImplementedError

    def compute(
        self, audio: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The log-mel (trimmed as configured) over the functionals of the untrimmed waveform.

        Raises:
            ValueError: the functionals of a waveform are not finite (too short or silent).
        """
        spec, n_frames = super().compute(audio, lengths)
        waves = [
            audio[b, : int(lengths[b])].detach().float().cpu().numpy() for b in range(len(lengths))
        ]
        vectors = np.asarray(self.functional_vectors(waves), dtype=np.float32)  # [B, D]
        bad = [b for b in range(len(waves)) if not np.all(np.isfinite(vectors[b]))]
        if bad:
            seconds = ", ".join(f"{len(waves[b]) / self.sample_rate:.2f} s" for b in bad)
            raise ValueError(
                f"{self.name}: non-finite {self.functionals_label} for a waveform of {seconds} "
                "(too short or silent?)"
            )
        func = torch.from_numpy(vectors).to(spec.device)
        func = func[:, None, :, None].expand(-1, spec.shape[1], -1, spec.shape[-1])
        mask = torch.arange(spec.shape[-1], device=spec.device)[None, :] < n_frames[:, None]
        return torch.cat([spec, func * mask[:, None, None, :]], dim=2), n_frames


def _hold_last_frame(x: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
    """``[B, bins, T]`` with frames at and after ``n_frames`` replaced by the last valid frame."""
    t = torch.arange(x.shape[-1], device=x.device)[None, :]
    idx = torch.minimum(t, (n_frames[:, None] - 1).clamp(min=0))
    return x.gather(-1, idx[:, None, :].expand(-1, x.shape[1], -1))


@dataclasses.dataclass
class MFCC(LogMel):
    """Mel-frequency cepstral coefficients, shape ``[1 + deltas, n_mfcc, frames]``."""

    name: ClassVar[str] = "mfcc"
    n_mels: int = 128
    n_mfcc: int = 40
    normalize: str = "cmvn"

    def static(self, audio: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        return spectral.mfcc_from_log_mel(super().static(audio, n_frames), self.n_mfcc)

    def _frame_energy(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]  # c0 follows the frame's log energy
