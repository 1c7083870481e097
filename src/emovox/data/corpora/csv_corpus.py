"""A user's own list: a CSV with ``path,label`` and optionally ``speaker``, ``gender``.

Relative paths are taken relative to the CSV's folder. Other columns become corpus fields.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from emovox.data.manifest import CORE_COLUMNS, Manifest, Utterance

NAME = "csv"


GENDER_NAMES = {
    "f": "female",
    "female": "female",
    "w": "female",
    "woman": "female",
    "m": "male",
    "male": "male",
    "man": "male",
}


def normalize_gender(value: str) -> str:
    """``F``/``female``/``w`` -> ``female``, ``M``/``male`` -> ``male``, anything else -> ``""``."""
    return GENDER_NAMES.get(value.strip().lower(), "")


def scan(root: str | os.PathLike) -> Manifest:
    """Read the CSV at ``root`` (a file, or a folder holding exactly one ``*.csv``)."""
    path = Path(root)
    if path.is_dir():
        found = sorted(path.glob("*.csv"))
        if len(found) != 1:
            raise ValueError(f"{path}: expected one .csv file in the folder, found {len(found)}")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such CSV file")
    base = path.parent
    rows = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: the CSV lacks the column(s) {sorted(missing)}")
        for n, rec in enumerate(reader, 2):
            if not rec["path"] or not rec["label"]:
                raise ValueError(f"{path}:{n}: empty path or label")
            audio = Path(rec["path"])
            if not audio.is_absolute():
                audio = base / audio
            rows.append(
                Utterance(
                    path=str(audio),
                    label=rec["label"].strip(),
                    speaker=(rec.get("speaker") or "").strip() or str(rec["path"]),
                    gender=normalize_gender(rec.get("gender") or ""),
                    corpus=NAME,
                    fields={k: v or "" for k, v in rec.items() if k not in CORE_COLUMNS and k},
                )
            )
    return Manifest(rows)
