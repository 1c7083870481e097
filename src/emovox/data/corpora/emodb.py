"""EmoDB: the Berlin Database of Emotional Speech (Burkhardt et al., 2005).

File names are ``SSTTTEV.wav``, e.g. ``03a01Fa.wav``: speaker (two digits), text (``a01`` ...
``b10``), the German emotion letter (W Ärger/anger, L Langeweile/boredom, E Ekel/disgust,
A Angst/fear, F Freude/happiness, T Trauer/sadness, N neutral) and a version letter. The ten
speakers 03 08 09 10 11 12 13 14 15 16 are five men (03 10 11 12 15) and five women. Files are
usually in ``ROOT/wav/``; any depth is read. Speakers are ``emodb_03`` ...
"""

from __future__ import annotations

import os
import re

from emovox.data.corpora._common import name_fields, scan_named
from emovox.data.manifest import Manifest
from emovox.data.taxonomy import CORPUS_CODES

NAME = "emodb"
LANGUAGE = "German"
LICENCE = "free for research use"
CITATION = "Burkhardt et al. (2005), A database of German emotional speech, Interspeech"
EXTENSIONS = (".wav", ".flac")
SPEAKERS: dict[str, str] = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}
_NAME_RE = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


def parse_name(name: str) -> dict[str, str]:
    """Parse an EmoDB file name (with or without extension) into its fields.

    Raises:
        ValueError: the name is not an EmoDB name; the message says which part is wrong.
    """
    speaker, text, code, version = name_fields(name, EXTENSIONS, _NAME_RE, "SSTTTEV (e.g. 03a01Fa)")
    if speaker not in SPEAKERS:
        raise ValueError(f"{name!r}: unknown speaker {speaker}")
    if code not in CORPUS_CODES[NAME]:
        raise ValueError(f"{name!r}: unknown emotion letter {code}")
    return {
        "speaker": speaker,
        "text": text,
        "code": code,
        "emotion": CORPUS_CODES[NAME][code],
        "version": version,
    }


def scan(root: str | os.PathLike) -> Manifest:
    """Scan ``root`` recursively for EmoDB files; badly named files are skipped in one warning."""
    return scan_named(
        root,
        NAME,
        "EmoDB",
        EXTENSIONS,
        lambda p: parse_name(p.name),
        "speaker",
        lambda f: SPEAKERS[f["speaker"]],
        "wav/03a01Fa.wav",
    )
