"""Utterance-level features: one vector per recording, computed file by file with numpy.

Classical pipelines (openSMILE functionals, librosa statistics) summarise a whole utterance in a
fixed vector. :class:`UtteranceFeature` returns it as an array ``[1, D, 1]`` (one stream, ``D``
bins, one frame), so it flows through the feature cache, :class:`~emovox.train.pipeline.Dataset`,
model bundles and the ONNX export like any frame-level feature.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from emovox.audio import MIN_DURATION, load_audio
from emovox.features.base import Feature


@dataclasses.dataclass
class UtteranceFeature(Feature):
    """Base class of features that summarise a whole waveform in one ``D``-dimensional vector.

    Subclasses implement :meth:`vector` (one waveform -> ``[D]``) and set :attr:`dim`.
    """

    fixed_length: ClassVar[bool] = True
    n_frames: ClassVar[int] = 1
    """Every output has exactly one frame (the ONNX export relies on it)."""
    dim: ClassVar[int] = 0
    """The vector's length ``D``."""

    min_seconds: float = MIN_DURATION
    """Shorter audio is refused: files by :meth:`load` (an ``AudioError`` naming the file),
    waveforms by :meth:`__call__` (a ``ValueError`` naming their position)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_seconds <= 0:
            raise ValueError(f"min_seconds must be positive, not {self.min_seconds}")

    @property
    def hop_seconds(self) -> float:
        """0: the single output frame spans the whole utterance."""
        return 0.0

    def load(self, path: str | os.PathLike, max_duration: float | None = None) -> np.ndarray:
        """The whole file at :attr:`sample_rate`; ``AudioError`` if shorter than ``min_seconds``
        (:class:`~emovox.audio.LongAudio` if longer than ``max_duration``)."""
        return load_audio(
            path, sr=self.sample_rate, min_duration=self.min_seconds, max_duration=max_duration
        )

    def vector(self, audio: np.ndarray) -> np.ndarray:
        """The ``[D]`` summary of one float32 waveform at :attr:`sample_rate`."""
        raise NotImplementedError

    def __call__(
        self, waves: Sequence[np.ndarray], device: str | torch.device = "cpu", batch_size: int = 16
    ) -> list[np.ndarray]:
        """``[1, D, 1]`` float32 arrays, one per waveform (``device`` and ``batch_size`` unused).

        Raises:
            ValueError: a waveform is shorter than ``min_seconds`` or its vector is not finite.
        """
        out = []
        for i, wave in enumerate(self.front(waves)):
            wave = np.ascontiguousarray(wave, dtype=np.float32)
            seconds = len(wave) / self.sample_rate
            if seconds < self.min_seconds:
                raise ValueError(
                    f"{self.name}: waveform {i} is {seconds:.3f} s long, shorter than the "
                    f"minimum {self.min_seconds} s"
                )
            v = np.array(self.vector(wave), dtype=np.float32).reshape(-1)  # own, writable
            if v.shape != (self.dim,):
                raise ValueError(f"{self.name}: expected {self.dim} values, got {v.shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(
                    f"{self.name}: waveform {i} ({seconds:.3f} s) gave non-finite values "
                    f"(too short or damaged audio?)"
                )
            out.append(v[None, :, None])
        return out

    def compute(
        self, audio: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched form of :meth:`__call__` (runs on the CPU, one waveform at a time)."""
        waves = [a[: int(n)].detach().cpu().numpy() for a, n in zip(audio, lengths, strict=True)]
        feats = torch.from_numpy(np.stack(self(waves))).to(audio.device)
        return feats, torch.ones(len(waves), dtype=torch.long, device=audio.device)
