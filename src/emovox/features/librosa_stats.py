"""``librosa-stats``: the classic "MFCC + chroma + mel" utterance vector of many SER tutorials.

The means over time of 40 MFCC, 12 chroma bins (from the STFT magnitude) and 128 mel bands (power,
not dB), all with librosa's defaults (2048-point FFT, hop 512, centred frames) at 22.05 kHz, the
rate ``librosa.load`` reads at by default: 180 values.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from emovox.features.utterance import UtteranceFeature

LIBROSA_SAMPLE_RATE = 22050


@dataclasses.dataclass
class LibrosaStats(UtteranceFeature):
    """Mean MFCC, chroma and mel power over time, shape ``[1, n_mfcc + n_chroma + n_mels, 1]``."""

    name: ClassVar[str] = "librosa-stats"
    sample_rate: int = LIBROSA_SAMPLE_RATE
    n_mfcc: int = 40
    n_chroma: int = 12
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("n_mfcc", "n_chroma", "n_mels", "n_fft", "hop_length"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be positive, not {getattr(self, field)}")

    @property
    def dim(self) -> int:  # type: ignore[override]
        """``n_mfcc + n_chroma + n_mels`` (180 by default)."""
        return self.n_mfcc + self.n_chroma + self.n_mels

    def vector(self, audio: np.ndarray) -> np.ndarray:
        """The concatenated time means of MFCC, chroma and mel power of one waveform."""
        import librosa  # slow to import: only for this feature

        sr, n_fft, hop = self.sample_rate, self.n_fft, self.hop_length
        mfcc = librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=self.n_mfcc, n_fft=n_fft, hop_length=hop)
        magnitude = np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=hop))
        chroma = librosa.feature.chroma_stft(
            S=magnitude, sr=sr, n_chroma=self.n_chroma, n_fft=n_fft, hop_length=hop
        )
        mel = librosa.feature.melspectrogram(
            y=audio, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=self.n_mels
        )
        return np.concatenate([mfcc.mean(axis=1), chroma.mean(axis=1), mel.mean(axis=1)])
