"""BAVED: the Basic Arabic Vocal Emotions Dataset (Aouf, 2019), 61 speakers, single words.

Files are ``<word>/<speaker>-<gender>-<age>-<word>-<level>-<record>.wav`` (16 kHz mono), in the
folders ``0`` ... ``6`` of the seven words; ``speakers_info.json`` beside them gives each
speaker's gender and age. The *level* is how strongly the speaker expresses emotion: 0 low (tired,
down), 1 neutral (everyday speech), 2 high (strong positive or negative emotion). It is an
**arousal** value, not a category: every row's ``label`` is empty (no emotion category, so every
categorical label scheme leaves BAVED out) and ``fields["arousal"]`` is ``low``, ``normal`` or
``high`` (the ``arousal`` label scheme reads it; see :mod:`emovox.data.taxonomy`). Speakers are
``baved_0`` ...; the gender comes from ``speakers_info.json`` when it has the speaker, else from
the file name.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from emovox.data.corpora._common import name_fields, scan_named
from emovox.data.manifest import Manifest
from emovox.data.taxonomy import CORPUS_AROUSAL

NAME = "baved"
LANGUAGE = "Arabic"
LICENCE = "none stated"
CITATION = "Aouf (2019), Basic Arabic Vocal Emotions Dataset (BAVED), GitHub"
EXTENSIONS = (".wav",)
INFO = "speakers_info.json"
GENDERS = {"m": "male", "f": "female"}
_NAME_RE = re.compile(r"^(\d+)-([mf])-(\d+)-([0-6])-([0-2])-(\d+)$", re.IGNORECASE)
NAME_FORM = "speaker-gender-age-word-level-record (e.g. 0-m-21-0-1-105)"


def parse_name(name: str) -> dict[str, str]:
    """Parse a BAVED file name (``0-m-21-0-1-105.wav``) into its fields (no ``emotion``: the
    level is the ``arousal``).

    Raises:
        ValueError: the name is not a BAVED name.
    """
    speaker, gender, age, word, level, record = name_fields(name, EXTENSIONS, _NAME_RE, NAME_FORM)
    return {
        "speaker": speaker,
        "age": age,
        "word": word,
        "code": level,
        "arousal": CORPUS_AROUSAL[NAME][level],
        "record": record,
        "emotion": "",
        "gender": GENDERS[gender.lower()],
    }


def speakers_info(root: Path) -> dict[str, dict]:
    """``speakers_info.json`` of the corpus (in ``root`` or its parent), or ``{}``."""
    for candidate in (root / INFO, root.parent / INFO):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    return {}


def scan(root: str | os.PathLike) -> Manifest:
    """Scan ``root`` recursively for BAVED files; badly named files are skipped in one warning."""
    info = speakers_info(Path(root))

    def parse(path: Path) -> dict[str, str]:
        fields = parse_name(path.name)
        known = GENDERS.get(str(info.get(fields["speaker"], {}).get("gender", "")).lower())
        if known:
            fields["gender"] = known
        return fields

    return scan_named(root, NAME, "BAVED", EXTENSIONS, parse, "speaker", "", "0/0-m-21-0-1-105.wav")
