"""``tutorial-mfcc``: the feature of the classic Keras speech-emotion tutorial, reproduced exactly.

2.5 s of audio read from a 0.5 s offset at 44.1 kHz, 13 MFCC (librosa's defaults: 2048-point FFT,
hop 512, 128 mels, power_to_db with top_db 80), averaged over the coefficients into one value per
frame: 216 values, zero-padded when the file is shorter.
"""

from __future__ import annotations

import dataclasses
import os
from typing import ClassVar

import numpy as np
import torch

from emovox.audio import AudioError, load_audio
from emovox.features.base import Feature

TUTORIAL_SAMPLE_RATE = 44100
TUTORIAL_OFFSET = 0.5
TUTORIAL_DURATION = 2.5
TUTORIAL_N_MFCC = 13
TUTORIAL_FRAMES = 216


@dataclasses.dataclass
class TutorialMFCC(Feature):
    """The tutorial's 216-value MFCC summary, shape ``[1, 1, 216]``."""

    name: ClassVar[str] = "tutorial-mfcc"
    fixed_length: ClassVar[bool] = True
    sample_rate: int = TUTORIAL_SAMPLE_RATE
    offset: float = TUTORIAL_OFFSET
    duration: float = TUTORIAL_DURATION
    n_mfcc: int = TUTORIAL_N_MFCC
    n_frames: int = TUTORIAL_FRAMES
    hop_length: int = 512

    def load(self, path: str | os.PathLike, max_duration: float | None = None) -> np.ndarray:
        try:
            return load_audio(
                path,
                sr=self.sample_rate,
                offset=self.offset,
                duration=self.duration,
                max_duration=max_duration,
            )
        except AudioError as exc:
            if "offset" not in exc.reason and "shorter" not in exc.reason:
                raise
            # Too short for the offset: the tutorial would read nothing; read from the start.
            return load_audio(path, sr=self.sample_rate, duration=self.duration)

    def summary(self, audio: np.ndarray) -> np.ndarray:
        """The 216 per-frame means of the 13 MFCC of one waveform."""
        import librosa  # slow to import: only for this feature

        audio = np.asarray(audio, dtype=np.float32)[: int(self.duration * self.sample_rate)]
        mfcc = librosa.feature.mfcc(
            y=audio, sr=self.sample_rate, n_mfcc=self.n_mfcc, hop_length=self.hop_length
        )
        values = np.mean(mfcc, axis=0)[: self.n_frames]
        return np.pad(values, (0, self.n_frames - len(values))).astype(np.float32)

    def compute(
        self, audio: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [
            self.summary(a[: int(n)].cpu().numpy()) for a, n in zip(audio, lengths, strict=True)
        ]
        out = torch.from_numpy(np.stack(rows))[:, None, None, :].to(audio.device)
        return out, torch.full((len(rows),), self.n_frames, device=audio.device)
