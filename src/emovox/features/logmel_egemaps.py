"""``logmel-egemaps``: the log-mel spectrogram with the 88 eGeMAPS functionals stacked under it.

One array per utterance, ``[streams, n_mels + 88, frames]`` (see
:class:`~emovox.features.logmel.LogMelWithFunctionals`): the first ``n_mels`` bins are the
:class:`~emovox.features.logmel.LogMel` of the utterance (per-utterance normalised, gain
invariant), the last 88 hold the utterance's openSMILE eGeMAPS v02 functionals, the same value in
every frame, for a late-fusion model (``cnn-egemaps``).

The functionals are computed on the whole waveform (before the log-mel's silence trimming), scaled
to a fixed RMS level first so that they do not move with the microphone's gain. They need the
``opensmile`` package: ``pip install "emovox[classical]"``. ``logmel-functionals`` is the same
layout with a torch-native set about ten times faster to compute.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from emovox.features.egemaps import EGEMAPS_DIM, EGeMAPS
from emovox.features.functionals import FUNCTIONALS_DIM, LEVEL_DB, functionals_of_waves
from emovox.features.logmel import LogMelWithFunctionals


@dataclasses.dataclass
class LogMelEGeMAPS(LogMelWithFunctionals):
    """Log-mel bins over eGeMAPS functionals: ``[1 + deltas, n_mels + 88, T]``.

    Raises (from :meth:`compute`):
        ValueError: openSMILE returned non-finite functionals for a waveform (too short).
    """

    name: ClassVar[str] = "logmel-egemaps"
    functionals: ClassVar[int] = EGEMAPS_DIM
    functionals_label: ClassVar[str] = "eGeMAPS functionals (openSMILE)"
    egemaps_level_db: float | None = -20.0
    """RMS level (dBFS) every waveform is scaled to before openSMILE (see
    :attr:`EGeMAPS.level_db`): with it the whole array is independent of the recording's gain, as
    the log-mel already is. ``None``: the waveform as recorded."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._egemaps = EGeMAPS(sample_rate=self.sample_rate, level_db=self.egemaps_level_db)

    def functional_vectors(self, waves: list[np.ndarray]) -> np.ndarray:
        """openSMILE's 88 functionals of each waveform (NaN where it found one too short)."""
        return np.stack([self._egemaps.vector(w) for w in waves])


@dataclasses.dataclass
class LogMelFunctionalsEGeMAPS(LogMelEGeMAPS):
    """Log-mel bins over the fast functionals and then the eGeMAPS functionals:
    ``[1 + deltas, n_mels + 198 + 88, T]``, the input of ``cnn-functionals-egemaps``."""

    name: ClassVar[str] = "logmel-functionals-egemaps"
    revision: ClassVar[int] = 1
    functionals: ClassVar[int] = FUNCTIONALS_DIM + EGEMAPS_DIM
    functionals_label: ClassVar[str] = "fast and eGeMAPS functionals"
    functionals_level_db: float = LEVEL_DB
    """RMS level (dBFS) every waveform is scaled to before its fast functionals are computed."""

    def functional_vectors(self, waves: list[np.ndarray]) -> np.ndarray:
        """The fast functionals, then openSMILE's 88, of each waveform."""
        fast = functionals_of_waves(waves, self.sample_rate, self.functionals_level_db)
        return np.concatenate([fast, super().functional_vectors(waves)], axis=1)
