"""Feature extraction over many files, with an on-disk cache.

A cached entry is keyed by the file (absolute path, size, modification time) and the feature's
configuration (with its :attr:`~emovox.features.base.Feature.revision`), so editing a file,
changing a parameter or a new version of the computation never returns stale features. Entries
are plain ``.npy`` arrays (no pickle), written atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from emovox._fs import atomic_write_bytes, atomic_write_text
from emovox.audio import AudioError
from emovox.augment import WaveTransform, speed_transform
from emovox.features.base import Feature
from emovox.progress import progress_bar

DEFAULT_CACHE_DIR = Path(os.environ.get("EMOVOX_CACHE", Path.home() / ".cache" / "emovox"))


class FeatureCache:
    """A folder of cached feature arrays, one sub-folder per feature configuration."""

    def __init__(self, root: str | os.PathLike = DEFAULT_CACHE_DIR / "features") -> None:
        self.root = Path(root)

    @staticmethod
    def config_key(feature: Feature, variant: str = "") -> str:
        """The folder name for a feature configuration (and an augmentation variant)."""
        config = feature.to_dict()
        if feature.revision:  # the computation changed under the same parameters
            config["revision"] = feature.revision
        blob = json.dumps(config, sort_keys=True).encode()
        key = hashlib.sha256(blob).hexdigest()[:16]
        return f"{key}-{variant}" if variant else key

    def _path(
        self, feature: Feature, audio_path: str | os.PathLike, variant: str = ""
    ) -> Path | None:
        p = Path(audio_path).resolve()
        try:
            st = p.stat()
        except OSError:
            return None
        ident = f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()
        key = hashlib.sha256(ident).hexdigest()[:32]
        return self.root / self.config_key(feature, variant) / key[:2] / f"{key}.npy"

    def get(
        self, feature: Feature, audio_path: str | os.PathLike, variant: str = ""
    ) -> np.ndarray | None:
        path = self._path(feature, audio_path, variant)
        if path is None or not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed

    def put(
        self,
        feature: Feature,
        audio_path: str | os.PathLike,
        value: np.ndarray,
        variant: str = "",
        info: dict | None = None,
    ) -> None:
        path = self._path(feature, audio_path, variant)
        if path is None:
            return
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
        if info is not None:
            atomic_write_text(path.with_suffix(".json"), json.dumps(info))
        (self.root / self.config_key(feature, variant) / "feature.json").write_text(
            json.dumps(feature.to_dict(), indent=2)
        )

    def info(
        self, feature: Feature, audio_path: str | os.PathLike, variant: str = ""
    ) -> dict | None:
        """The small JSON record stored beside an entry by :meth:`put` (e.g. clipped samples)."""
        path = self._path(feature, audio_path, variant)
        if path is None:
            return None
        try:
            value = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None


def extract_files(
    feature: Feature,
    paths: Sequence[str | os.PathLike],
    cache: FeatureCache | None = None,
    workers: int = 2,
    batch_size: int = 32,
    progress: bool = True,
    device: str = "cpu",
    speed: float = 1.0,
    transform: WaveTransform | None = None,
    clipped: dict[str, int] | None = None,
) -> tuple[list[np.ndarray | None], dict[str, str]]:
    """Features of every file; a file that cannot be read is reported, never fatal.

    ``speed`` != 1 computes the features of a speed-perturbed copy
    (:func:`emovox.augment.speed_perturb`), cached separately.

    ``transform`` changes each waveform before extraction (an augmented copy, a test condition:
    see :class:`emovox.augment.WaveTransform`); its features are cached under
    ``transform.variant``. With ``clipped``, that dict is filled with the number of clipped
    samples of each file the transform produced (kept in the cache too).

    Returns:
        ``(features, errors)``: one array per path (``None`` where it failed) and a mapping from
        each failed path to the reason.
    """
    if transform is not None and speed != 1.0:
        raise ValueError("give either speed or transform, not both")
    if transform is None and speed != 1.0:
        transform = speed_transform(speed)
    out: list[np.ndarray | None] = [None] * len(paths)
    counts: list[int] = [0] * len(paths)
    errors: dict[str, str] = {}
    variant = transform.variant if transform is not None else ""
    todo = []
    for i, p in enumerate(paths):
        hit = cache.get(feature, p, variant) if cache is not None else None
        if hit is not None and clipped is not None and transform is not None:
            info = cache.info(feature, p, variant)
            if info is None or "clipped" not in info:
                hit = None  # made before counts were kept: compute again
            else:
                counts[i] = int(info["clipped"])
        if hit is not None:
            out[i] = hit
        else:
            todo.append(i)

    def read(i: int) -> tuple[int, np.ndarray | None]:
        try:
            wave = feature.load(paths[i])
            if transform is not None:
                wave, counts[i] = transform(wave, feature.sample_rate, paths[i])
            return i, wave
        except AudioError as exc:
            errors[str(paths[i])] = exc.reason
        except Exception as exc:  # a batch never dies on one file
            errors[str(paths[i])] = f"{type(exc).__name__}: {exc}"
        return i, None

    with (
        progress_bar(len(todo), "features", enabled=progress and bool(todo)) as bar,
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
    ):
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            loaded = [(i, w) for i, w in pool.map(read, chunk) if w is not None]
            if loaded:
                feats = feature([w for _, w in loaded], device=device)
                for (i, _), f in zip(loaded, feats, strict=True):
                    out[i] = f
                    if cache is not None:
                        info = {"clipped": counts[i]} if transform is not None else None
                        cache.put(feature, paths[i], f, variant, info)
            bar.advance(len(chunk))
    if clipped is not None:
        clipped.update({str(paths[i]): counts[i] for i, f in enumerate(out) if f is not None})
    return out, errors
