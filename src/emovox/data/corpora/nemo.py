"""nEMO: Polish emotional speech (Christop, 2024), nine actors, six emotions.

Distributed as ``samples/<speaker>_<emotion>_<n>.wav`` (24 kHz mono) with ``data.tsv`` beside
``samples/``: tab-separated ``file_id, emotion, raw_text, normalized_text, speaker_id, gender,
age`` (``speaker_id`` padded with spaces). The TSV is the source of the labels, speakers, genders
and texts; a row whose file is missing is skipped in one warning. Emotions: anger, fear,
happiness, neutral, sadness, surprised. Speakers are ``nemo_EB0`` ...
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from emovox.data.corpora._common import corpus_root, no_rows, warn_skipped
from emovox.data.manifest import Manifest, Utterance
from emovox.data.taxonomy import canonical_label

NAME = "nemo"
LANGUAGE = "Polish"
LICENCE = "CC BY-NC-SA 4.0"
CITATION = "Christop (2024), nEMO: Dataset of Emotional Speech in Polish, LREC-COLING"
TSV = "data.tsv"
SAMPLES = "samples"
GENDERS = {"female": "female", "male": "male", "f": "female", "m": "male"}


def find_tsv(root: Path) -> Path:
    """``data.tsv`` in ``root`` (the corpus folder) or its parent (``root`` is ``samples/``).

    Raises:
        FileNotFoundError: neither has one.
    """
    for candidate in (root / TSV, root.parent / TSV):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root}: no nEMO {TSV} here or in the parent folder")


def scan(root: str | os.PathLike) -> Manifest:
    """Scan an nEMO folder (holding ``samples/`` and ``data.tsv``) through its ``data.tsv``."""
    root = corpus_root(root)
    tsv = find_tsv(root)
    samples = tsv.parent / SAMPLES
    rows, bad = [], []
    with tsv.open(encoding="utf-8", newline="") as f:
        for n, rec in enumerate(csv.DictReader(f, delimiter="\t"), 2):
            name = (rec.get("file_id") or "").strip()
            path = samples / name
            try:
                label = canonical_label(NAME, (rec.get("emotion") or "").strip())
            except ValueError as exc:
                bad.append(f"{TSV} line {n} ({exc})")
                continue
            if not name or not path.is_file():
                bad.append(f"{SAMPLES}/{name} (listed in {TSV} line {n}, no such file)")
                continue
            speaker = (rec.get("speaker_id") or "").strip()
            fields = {
                "code": rec["emotion"].strip(),
                "text": (rec.get("normalized_text") or "").strip(),
                "age": (rec.get("age") or "").strip(),
            }
            gender = GENDERS.get((rec.get("gender") or "").strip().lower(), "")
            rows.append(Utterance(str(path), label, f"{NAME}_{speaker}", gender, NAME, fields))
    warn_skipped(bad, tsv.parent, "nEMO", why=f"that {TSV} does not describe", stacklevel=3)
    if not rows:
        raise no_rows(tsv.parent, "nEMO", "samples/EB0_anger_1.wav listed in data.tsv")
    return Manifest(rows)
