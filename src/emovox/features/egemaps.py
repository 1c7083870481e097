"""``egemaps``: the 88 eGeMAPS v02 functionals of openSMILE (Eyben et al., 2016), per utterance.

The Geneva Minimalistic Acoustic Parameter Set summarises pitch, jitter, shimmer, loudness,
formants, spectral slopes, MFCC 1-4 and rates of voiced segments over a whole recording. It is
computed by the ``opensmile`` Python package (the openSMILE binary ships inside its wheel), an
optional dependency: ``pip install "emovox[classical]"``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from emovox.features.utterance import UtteranceFeature

EGEMAPS_DIM = 88
FEATURE_SETS = ("eGeMAPSv02",)
INSTALL_HINT = 'pip install "emovox[classical]"  (the opensmile package)'


class OpenSmileUnavailable(RuntimeError):
    """The ``opensmile`` package is not installed."""


@dataclasses.dataclass
class EGeMAPS(UtteranceFeature):
    """openSMILE eGeMAPS v02 functionals, shape ``[1, 88, 1]``."""

    name: ClassVar[str] = "egemaps"
    dim: ClassVar[int] = EGEMAPS_DIM
    feature_set: str = "eGeMAPSv02"
    level_db: float | None = None
    """Scale every waveform to this RMS level (dBFS) before openSMILE, less where its peak would
    pass 0 dBFS: the functionals then do not depend on the recording's gain (openSMILE's voicing
    and energy thresholds are absolute). ``None``: the waveform as recorded."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {FEATURE_SETS}, not {self.feature_set!r}")
        self._smile = None  # built on first use (importing opensmile pulls in pandas)

    def _extractor(self):
        if self._smile is None:
            try:
                import opensmile
            except ImportError as exc:
                raise OpenSmileUnavailable(
                    f"the {self.name!r} feature needs the Python package 'opensmile', which is "
                    f"not installed; install it with: {INSTALL_HINT}"
                ) from exc
            self._smile = opensmile.Smile(
                feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                feature_level=opensmile.FeatureLevel.Functionals,
            )
        return self._smile

    @property
    def feature_names(self) -> list[str]:
        """openSMILE's names of the 88 values, in order."""
        return list(self._extractor().feature_names)

    def vector(self, audio: np.ndarray) -> np.ndarray:
        """The 88 functionals of one waveform (NaN where openSMILE found it too short)."""
        import warnings

        if self.level_db is not None:
            audio = normalize_level(audio, self.level_db)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Segment too short, filling with NaN": checked after
            frame = self._extractor().process_signal(audio, self.sample_rate)
        return frame.to_numpy(dtype=np.float32).reshape(-1)


def normalize_level(audio: np.ndarray, level_db: float, peak: float = 0.999) -> np.ndarray:
    """``audio`` scaled to an RMS of ``level_db`` dBFS, or less so that its peak stays within
    ``peak``. Both limits scale with the input, so any gain applied before gives the same output
    (silence stays silence)."""
    audio = np.asarray(audio, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    if rms <= 0.0 or top <= 0.0:
        return audio
    scale = min(10.0 ** (level_db / 20.0) / rms, peak / top)
    return (audio * np.float32(scale)).astype(np.float32)
