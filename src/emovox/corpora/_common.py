"""Helpers shared by the corpus modules: root checks, audio listing and the one skipped-files
warning."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from emovox.audio import AUDIO_EXTENSIONS


def corpus_root(root: str | os.PathLike) -> Path:
    """``root`` as a :class:`Path`; raises :class:`FileNotFoundError` if it is not a folder."""
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such corpus folder")
    return path


def audio_files(root: Path, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> Iterator[Path]:
    """Audio files below ``root``, sorted; hidden files (``._x.wav`` of macOS) are left out."""
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in extensions and not path.name.startswith(".") and path.is_file():
            yield path


def warn_skipped(bad: list[str], root: Path, what: str, limit: int = 50) -> None:
    """One warning listing every skipped file (``bad``: ``"relative/path (reason)"``)."""
    if not bad:
        return
    shown = "\n  ".join(bad[:limit])
    more = f"\n  ... and {len(bad) - limit} more" if len(bad) > limit else ""
    warnings.warn(
        f"skipped {len(bad)} file(s) under {root} whose names are not {what} names:\n"
        f"  {shown}{more}",
        stacklevel=3,
    )


def no_rows(root: Path, what: str, example: str) -> ValueError:
    """The error for a folder without a single file of the corpus."""
    return ValueError(f"{root}: no {what} files found (expected names like {example})")
