"""URDU: the URDU-Dataset of emotional Urdu speech (Latif et al., 2018).

Files such as ``SM1_F10_A010.wav`` lie in ``Angry``, ``Happy``, ``Neutral`` and ``Sad`` folders;
the folder is the emotion. The first field is the speaker (``SM1``: male speaker 1, ``SF3``:
female speaker 3), which gives the gender. Speakers are ``urdu_SM1`` ...
"""

from __future__ import annotations

import os
import re

from emovox.data.corpora._common import scan_named
from emovox.data.manifest import Manifest
from emovox.data.taxonomy import CORPUS_CODES

NAME = "urdu"
LANGUAGE = "Urdu"
LICENCE = "none stated"
CITATION = (
    "Latif et al. (2018), Cross lingual speech emotion recognition: Urdu vs. Western "
    "languages, FIT"
)
EXTENSIONS = (".wav", ".flac")
_SPEAKER_RE = re.compile(r"^S([MF])(\d+)$")


def parse_path(name: str, folder: str) -> dict[str, str]:
    """The fields of ``folder/name`` (``Angry/SM1_F10_A010.wav``).

    Raises:
        ValueError: the folder is not an emotion folder or the name has no speaker field.
    """
    codes = {c.lower(): c for c in CORPUS_CODES[NAME]}
    code = codes.get(folder.lower())
    if code is None:
        raise ValueError(f"folder {folder!r} is not one of {', '.join(CORPUS_CODES[NAME])}")
    stem = name.rsplit(".", 1)[0]
    parts = stem.split("_")
    m = _SPEAKER_RE.match(parts[0])
    if len(parts) < 2 or not m:
        raise ValueError(f"{name!r} does not start with a speaker field like SM1_ or SF2_")
    return {
        "speaker": parts[0],
        "gender": "male" if m.group(1) == "M" else "female",
        "code": code,
        "emotion": CORPUS_CODES[NAME][code],
        "file": "_".join(parts[1:]),
    }


def scan(root: str | os.PathLike) -> Manifest:
    """Scan the emotion folders of ``root``; other files are skipped in one warning."""
    return scan_named(
        root,
        NAME,
        "URDU",
        EXTENSIONS,
        lambda p: parse_path(p.name, p.parent.name),
        "speaker",
        "",
        "Angry/SM1_F10_A010.wav",
    )
