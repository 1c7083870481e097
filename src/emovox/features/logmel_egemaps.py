"""``logmel-egemaps``: the log-mel spectrogram with the 88 eGeMAPS functionals stacked under it.

One array per utterance, ``[streams, n_mels + 88, frames]``: the first ``n_mels`` bins are the
:class:`~emovox.features.logmel.LogMel` of the utterance (per-utterance normalised, gain
invariant), the last 88 hold the utterance's openSMILE eGeMAPS v02 functionals, the same value in
every frame. Carrying both in one array lets a late-fusion model (``cnn-egemaps``) see a frame-level
and an utterance-level view of the same recording while the cache, crops, padding, per-speaker
normalisation, bundles and ONNX export stay as they are for any feature. Constant over time, the
functionals survive any crop, and per-speaker normalisation of a bin turns them into exactly the
per-speaker z-scores that classical systems use.

The functionals are computed on the whole waveform (before the log-mel's silence trimming), scaled
to a fixed RMS level first so that they do not move with the microphone's gain. They need the
``opensmile`` package: ``pip install "emovox[classical]"``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from emovox.features.egemaps import EGEMAPS_DIM, EGeMAPS
from emovox.features.logmel import LogMel


@dataclasses.dataclass
class LogMelEGeMAPS(LogMel):
    """Log-mel bins over eGeMAPS functionals: ``[1 + deltas, n_mels + 88, T]``.

    Raises (from :meth:`compute`):
        ValueError: openSMILE returned non-finite functionals for a waveform (too short).
    """

    name: ClassVar[str] = "logmel-egemaps"
    functionals: ClassVar[int] = EGEMAPS_DIM
    """How many bins at the bottom of the array hold the functionals."""
    egemaps_level_db: float | None = -20.0
    """RMS level (dBFS) every waveform is scaled to before openSMILE (see
    :attr:`EGeMAPS.level_db`): with it the whole array is independent of the recording's gain, as
    the log-mel already is. ``None``: the waveform as recorded."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._egemaps = EGeMAPS(sample_rate=self.sample_rate, level_db=self.egemaps_level_db)

    def compute(
        self, audio: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        spec, n_frames = super().compute(audio, lengths)
        waves = [
            audio[b, : int(lengths[b])].detach().float().cpu().numpy() for b in range(len(lengths))
        ]
        vectors = np.stack([self._egemaps.vector(w) for w in waves])  # [B, 88]
        bad = [b for b in range(len(waves)) if not np.all(np.isfinite(vectors[b]))]
        if bad:
            seconds = ", ".join(f"{len(waves[b]) / self.sample_rate:.2f} s" for b in bad)
            raise ValueError(
                f"{self.name}: openSMILE gave non-finite eGeMAPS functionals for a waveform of "
                f"{seconds} (too short or silent?)"
            )
        func = torch.from_numpy(vectors.astype(np.float32)).to(spec.device)
        func = func[:, None, :, None].expand(-1, spec.shape[1], -1, spec.shape[-1])
        mask = torch.arange(spec.shape[-1], device=spec.device)[None, :] < n_frames[:, None]
        return torch.cat([spec, func * mask[:, None, None, :]], dim=2), n_frames
