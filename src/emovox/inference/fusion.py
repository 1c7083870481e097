"""Fused models: several model folders whose probabilities are averaged with fixed weights.

Two models that read different views of a clip (a CNN on the log-mel, an SVM on a pretrained
encoder's hidden states) make different mistakes; the weighted mean of their probabilities is
often better than either. A fused model is a folder::

    fusion.json          {"format": 1, "members": [{"path": "cnn", "weight": 0.5}, ...]}
    cnn/                 a model folder (model.safetensors + config.json)
    whisper-svm/         another, answering the same classes

written by :func:`save_fusion` (``emovox fuse``) and loaded by
:meth:`emovox.inference.recognizer.Recognizer.load` like any model folder; every command, the
server and the live mode then use it as they use a single model. Each member keeps its own
feature: :class:`FusedFeature` reads a clip once and gives each member its own features of it.
No pickles: the members are ordinary bundles, the fusion is JSON.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emovox._fs import atomic_write_text
from emovox.audio import load_audio
from emovox.features.base import Feature
from emovox.inference.bundle import BundleError

FUSION_FILE = "fusion.json"
FUSION_FORMAT = 1


@dataclass(frozen=True)
class Member:
    """One model of a fusion: its folder (relative to the fusion's) and its weight."""

    path: str
    weight: float


def is_fusion(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a fused model's folder (it holds :data:`FUSION_FILE`)."""
    return (Path(path) / FUSION_FILE).is_file()


def read_fusion(path: str | os.PathLike) -> list[Member]:
    """The members of the fused model in ``path``, weights normalised to sum to 1.

    Raises:
        BundleError: the file is not valid (what is wrong and where).
    """
    file = Path(path) / FUSION_FILE
    try:
        spec = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{file}: cannot be read as JSON ({exc})") from exc
    if not isinstance(spec, dict) or spec.get("format") != FUSION_FORMAT:
        raise BundleError(f"{file}: not a fusion of format {FUSION_FORMAT}")
    raw = spec.get("members")
    if not isinstance(raw, list) or len(raw) < 2:
        raise BundleError(f"{file}: 'members' must list at least two models")
    members = []
    for m in raw:
        if not isinstance(m, dict) or not isinstance(m.get("path"), str):
            raise BundleError(f"{file}: each member needs a 'path' (a folder name)")
        weight = m.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise BundleError(f"{file}: member {m['path']!r} has weight {weight!r}; need > 0")
        if Path(m["path"]).is_absolute() or ".." in Path(m["path"]).parts:
            raise BundleError(f"{file}: member {m['path']!r} must be a folder inside the fusion")
        members.append(Member(m["path"], float(weight)))
    total = sum(m.weight for m in members)
    return [Member(m.path, m.weight / total) for m in members]


def save_fusion(
    path: str | os.PathLike,
    models: Sequence[str | os.PathLike],
    weights: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
) -> Path:
    """Copy the model folders ``models`` into a new fused-model folder ``path`` and write its
    :data:`FUSION_FILE` (``weights``: default equal; ``names``: the members' folder names,
    default the models' own).

    Raises:
        FileExistsError: ``path`` already exists (never overwritten).
        ValueError: fewer than two models, a weight that is not positive, repeated names.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; choose a new folder for the fused model")
    if len(models) < 2:
        raise ValueError("a fusion needs at least two models")
    weights = [1.0] * len(models) if weights is None else [float(w) for w in weights]
    if len(weights) != len(models) or any(not w > 0 for w in weights):
        raise ValueError(f"give one positive weight per model, not {list(weights)}")
    names = [Path(m).name for m in models] if names is None else list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"the members need different folder names, not {names}")
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for model, name in zip(models, names, strict=True):
        shutil.copytree(model, tmp / name, ignore=shutil.ignore_patterns("*.onnx", "checkpoint"))
    spec = {
        "format": FUSION_FORMAT,
        "members": [{"path": n, "weight": w} for n, w in zip(names, weights, strict=True)],
    }
    atomic_write_text(tmp / FUSION_FILE, json.dumps(spec, indent=2) + "\n")
    tmp.rename(path)
    return path


@dataclass
class FusedFeature:
    """The features of every member of a fusion: one tuple per clip, a member's own array at its
    place. Behaves as a :class:`~emovox.features.base.Feature` where the recognizer needs one
    (reading files, features of waveforms)."""

    members: list[Feature]
    name: str = field(default="fused", init=False)

    def __post_init__(self) -> None:
        rates = {m.sample_rate for m in self.members}
        if len(rates) != 1:
            raise ValueError(f"the members of a fusion read audio at different rates: {rates}")

    @property
    def sample_rate(self) -> int:
        return self.members[0].sample_rate

    def load(self, path: str | os.PathLike, max_duration: float | None = None) -> np.ndarray:
        """The file's waveform at the members' rate (read once for all of them)."""
        return load_audio(path, sr=self.sample_rate, max_duration=max_duration)

    def __call__(
        self, waves: Sequence[np.ndarray], device: str | torch.device = "cpu", batch_size: int = 16
    ) -> list[tuple[np.ndarray, ...]]:
        per_member = [m(list(waves), device=device, batch_size=batch_size) for m in self.members]
        return list(zip(*per_member, strict=True))

    def extract(self, wave: np.ndarray) -> tuple[np.ndarray, ...]:
        return self([wave])[0]

    def to_dict(self) -> dict:
        return {"name": self.name, "members": [m.to_dict() for m in self.members]}


def label_orders(labels: Sequence[Sequence[str]]) -> list[list[int]]:
    """For each member's labels, the index of each of the first member's labels in it.

    Raises:
        ValueError: the members do not answer the same classes.
    """
    first = list(labels[0])
    for other in labels[1:]:
        if sorted(other) != sorted(first):
            raise ValueError(
                f"the members of a fusion must answer the same classes: {first} and {list(other)}"
            )
    return [[list(other).index(c) for c in first] for other in labels]


def fuse_scores(
    scores: Sequence[np.ndarray],
    weights: Sequence[float],
    orders: Sequence[Sequence[int]],
    n_labels: int,
    dimensions: Sequence[Sequence[str]],
    fused_dimensions: Sequence[str],
) -> np.ndarray:
    """``[N, n_labels + len(fused_dimensions)]``: the weighted mean of the members'
    probabilities (each in the first member's label order), then each continuous score averaged
    over the members that give it."""
    n = len(scores[0])
    out = np.zeros((n, n_labels + len(fused_dimensions)), dtype=np.float64)
    for s, w, order in zip(scores, weights, orders, strict=True):
        out[:, :n_labels] += w * np.asarray(s)[:, order]
    for j, dim in enumerate(fused_dimensions):
        have = [
            np.asarray(s)[:, n_labels + list(d).index(dim)]
            for s, d in zip(scores, dimensions, strict=True)
            if dim in d
        ]
        out[:, n_labels + j] = np.mean(have, axis=0)
    return out.astype(np.float32)
