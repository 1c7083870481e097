"""Helpers shared by the corpus modules: root checks, audio listing and the one skipped-files
warning."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from emovox.audio import AUDIO_EXTENSIONS
from emovox.data.manifest import Manifest, Utterance


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


def name_fields(name: str, extensions: tuple[str, ...], pattern: re.Pattern, form: str):
    """The groups of ``pattern`` matched on a file name (its extension, when one of
    ``extensions``, left out).

    Raises:
        ValueError: ``"'<name>' is not of the form <form>"``.
    """
    stem = Path(name).stem if Path(name).suffix.lower() in extensions else name
    m = pattern.match(stem)
    if not m:
        raise ValueError(f"{name!r} is not of the form {form}")
    return m.groups()


def warn_skipped(
    bad: list[str],
    root: Path,
    what: str,
    *,
    why: str | None = None,
    noun: str = "file(s)",
    limit: int = 50,
    stacklevel: int = 4,
) -> None:
    """One warning listing every skipped file (``bad``: ``"relative/path (reason)"``): by
    default files ``whose names are not <what> names``."""
    if not bad:
        return
    shown = "\n  ".join(bad[:limit])
    more = f"\n  ... and {len(bad) - limit} more" if len(bad) > limit else ""
    why = why or f"whose names are not {what} names"
    warnings.warn(
        f"skipped {len(bad)} {noun} under {root} {why}:\n  {shown}{more}", stacklevel=stacklevel
    )


def no_rows(root: Path, what: str, example: str) -> ValueError:
    """The error for a folder without a single file of the corpus."""
    return ValueError(f"{root}: no {what} files found (expected names like {example})")


def scan_named(
    root: str | os.PathLike,
    corpus: str,
    display: str,
    extensions: tuple[str, ...],
    parse: Callable[[Path], dict[str, str]],
    speaker_field: str,
    gender: str | Callable[[dict[str, str]], str],
    example: str,
) -> Manifest:
    """The scan of a corpus whose file paths name everything: one :class:`Utterance` per file.

    ``parse(path)`` returns the corpus fields with the canonical ``emotion`` (and ``gender`` when
    the path tells it) or raises :class:`ValueError`; files it rejects are listed in one warning.
    The speaker is ``<corpus>_<fields[speaker_field]>``; ``gender`` is a constant or a function
    of the fields.
    """
    root = corpus_root(root)
    rows, bad = [], []
    for path in audio_files(root, extensions):
        try:
            fields = parse(path)
        except ValueError as exc:
            bad.append(f"{path.relative_to(root)} ({exc})")
            continue
        label = fields.pop("emotion")
        sex = fields.pop("gender", None)
        if sex is None:
            sex = gender(fields) if callable(gender) else gender
        speaker = f"{corpus}_{fields[speaker_field]}"
        rows.append(Utterance(str(path), label, speaker, sex, corpus, fields))
    warn_skipped(bad, root, display)
    if not rows:
        raise no_rows(root, display, example)
    return Manifest(rows)
