"""What every feature shares: a JSON configuration, audio reading, batched extraction.

A feature turns waveforms into arrays ``[streams, bins, frames]`` (``float32``). Its parameters are
dataclass fields; ``to_dict()`` / ``feature_from_dict()`` round-trip them through JSON, which is how
a model bundle remembers the feature it was trained on.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from emovox.audio import SAMPLE_RATE, load_audio
from emovox.features.declip import check_method, declip
from emovox.features.denoise import check_denoise, denoise


@dataclasses.dataclass
class Feature:
    """Base class of registered features (see :data:`emovox.features.FEATURES`)."""

    name: ClassVar[str] = ""
    fixed_length: ClassVar[bool] = False
    revision: ClassVar[int] = 0
    """Bumped when the feature's computation changes under the same parameters, so that cached
    arrays of the old computation are not served (it is part of the cache key when not 0)."""
    sample_rate: int = SAMPLE_RATE
    declip: bool = False
    """Redraw hard-clipped runs before computing (:func:`emovox.features.declip.declip`); audio
    without clipped runs gets the same features either way."""
    declip_method: str = "spline"
    """How :attr:`declip` redraws them: ``spline`` or ``sparse``
    (:data:`emovox.features.declip.METHODS`)."""
    denoise: str = ""
    """Filter steady background noise out before computing, after any declipping (``wiener``,
    :func:`emovox.features.denoise.denoise`); ``""``: off."""

    def __post_init__(self) -> None:
        check_method(self.declip_method)
        check_denoise(self.denoise)

    # -- configuration -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready parameters, with the registry name under ``"name"``. ``declip`` and
        ``denoise`` are left out while they are off and ``declip_method`` while it is off or the
        spline, so that configurations (bundles, caches, resumable runs) written before they
        existed read as they were."""
        config = {"name": self.name, **dataclasses.asdict(self)}
        if not self.declip:
            del config["declip"]
        if not self.declip or self.declip_method == "spline":
            del config["declip_method"]
        if not self.denoise:
            del config["denoise"]
        return config

    def cleaned_up(self, declip: str | None = None, denoise: str | None = None) -> Feature:
        """This feature with clean-up switched on, whatever it was trained with: ``declip``
        (a method of :data:`emovox.features.declip.METHODS`) redraws clipped runs, ``denoise``
        (one of :data:`emovox.features.denoise.METHODS`) filters steady noise out; ``None``
        keeps the setting as it is. The feature itself is not changed.

        Raises:
            ValueError: an unknown method (the message lists the known ones).
        """
        changes: dict = {}
        if declip is not None:
            changes.update(declip=True, declip_method=declip)
        if denoise is not None:
            changes["denoise"] = denoise
        return dataclasses.replace(self, **changes) if changes else self  # checked on the way

    def front(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """What :meth:`__call__` computes from: the waveforms, declipped when :attr:`declip`,
        then filtered when :attr:`denoise`."""
        out = list(waves)
        if self.declip:
            out = [declip(np.asarray(w, dtype=np.float32), self.declip_method) for w in out]
        if self.denoise:
            out = [denoise(np.asarray(w, dtype=np.float32), self.denoise) for w in out]
        return out

    @property
    def hop_seconds(self) -> float:
        """Seconds per output frame (used for crops and time axes)."""
        return getattr(self, "hop_length", 0) / self.sample_rate

    # -- reading and computing -----------------------------------------------------------------
    def load(self, path: str | os.PathLike, max_duration: float | None = None) -> np.ndarray:
        """Read the part of a file this feature looks at, at its sample rate; a file longer
        than ``max_duration`` seconds raises :class:`~emovox.audio.LongAudio` unread."""
        return load_audio(path, sr=self.sample_rate, max_duration=max_duration)

    def compute(
        self, audio: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, N]`` zero-padded audio and its lengths -> ``[B, S, F, T]`` and frame counts."""
        raise NotImplementedError

    def __call__(
        self, waves: Sequence[np.ndarray], device: str | torch.device = "cpu", batch_size: int = 16
    ) -> list[np.ndarray]:
        """Features of each waveform (at :attr:`sample_rate`), computed in padded batches."""
        waves = self.front(waves)
        order = sorted(range(len(waves)), key=lambda i: len(waves[i]))  # little padding
        results: dict[int, np.ndarray] = {}
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            lengths = torch.tensor([len(waves[i]) for i in idx])
            batch = torch.zeros(len(idx), int(lengths.max()), dtype=torch.float32)
            for row, i in enumerate(idx):
                batch[row, : len(waves[i])] = torch.from_numpy(np.asarray(waves[i], np.float32))
            with torch.no_grad():
                feats, n_frames = self.compute(batch.to(device), lengths.to(device))
            feats = feats.float().cpu().numpy()
            for row, i in enumerate(idx):
                results[i] = np.ascontiguousarray(feats[row, ..., : int(n_frames[row])])
        return [results[i] for i in range(len(waves))]

    def extract(self, audio: np.ndarray) -> np.ndarray:
        """Features of one waveform."""
        return self([audio])[0]
