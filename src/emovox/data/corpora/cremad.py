"""CREMA-D: the Crowd-sourced Emotional Multimodal Actors Dataset (Cao et al., 2014).

91 actors (1001-1091) say 12 sentences. Audio files are ``ActorID_Sentence_Emotion_Level.wav``,
e.g. ``1001_DFA_ANG_XX.wav``: emotion ANG, DIS, FEA, HAP, NEU, SAD; level LO, MD, HI or XX
(unspecified). The actors' sex is in ``VideoDemographics.csv`` (``ActorID,Age,Sex,Race,
Ethnicity``); it is read when ``demographics`` names it, or when the file lies in ``root`` or its
parent; otherwise the gender is unknown. Speakers are ``cremad_1001`` ...
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from emovox.data.corpora._common import corpus_root, name_fields, scan_named
from emovox.data.corpora.csv_corpus import normalize_gender
from emovox.data.manifest import Manifest
from emovox.data.taxonomy import CORPUS_CODES

NAME = "cremad"
LANGUAGE = "English (American)"
LICENCE = "ODbL 1.0"
CITATION = "Cao et al. (2014), CREMA-D, IEEE Trans. Affective Computing 5(4)"
EXTENSIONS = (".wav", ".flac", ".mp3")
SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
DEMOGRAPHICS = "VideoDemographics.csv"
_NAME_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
NAME_FORM = "ActorID_Sentence_Emotion_Level"


def parse_name(name: str) -> dict[str, str]:
    """Parse a CREMA-D file name (``1001_DFA_ANG_XX.wav``) into its fields.

    Raises:
        ValueError: the name is not a CREMA-D name; the message says which part is wrong.
    """
    actor, sentence, code, level = name_fields(name, EXTENSIONS, _NAME_RE, NAME_FORM)
    if not 1001 <= int(actor) <= 1091:
        raise ValueError(f"{name!r}: actor {actor} is outside 1001-1091")
    if sentence not in SENTENCES:
        raise ValueError(f"{name!r}: unknown sentence code {sentence}")
    if code not in CORPUS_CODES[NAME]:
        raise ValueError(f"{name!r}: unknown emotion code {code}")
    if level not in LEVELS:
        raise ValueError(f"{name!r}: unknown level code {level}")
    return {
        "actor": actor,
        "sentence": sentence,
        "code": code,
        "emotion": CORPUS_CODES[NAME][code],
        "level": LEVELS[level],
    }


def read_demographics(path: str | os.PathLike) -> dict[str, str]:
    """``VideoDemographics.csv`` -> ``{"1001": "male", ...}``.

    Raises:
        ValueError: the file lacks the ``ActorID`` or ``Sex`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such demographics file")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = {(k or "").strip(): k for k in reader.fieldnames or []}
        missing = {"ActorID", "Sex"} - set(fields)
        if missing:
            raise ValueError(f"{path}: the CSV lacks the column(s) {sorted(missing)}")
        return {
            (rec[fields["ActorID"]] or "").strip(): normalize_gender(rec[fields["Sex"]] or "")
            for rec in reader
        }


def scan(root: str | os.PathLike, demographics: str | os.PathLike | None = None) -> Manifest:
    """Scan ``root`` recursively for CREMA-D audio; badly named files are skipped in one warning.

    Args:
        demographics: ``VideoDemographics.csv`` for the actors' gender (default: looked for in
            ``root`` and its parent).
    """
    root = corpus_root(root)
    if demographics is None:
        found = [p for p in (root / DEMOGRAPHICS, root.parent / DEMOGRAPHICS) if p.is_file()]
        demographics = found[0] if found else None
    genders = read_demographics(demographics) if demographics is not None else {}
    return scan_named(
        root,
        NAME,
        "CREMA-D",
        EXTENSIONS,
        lambda p: parse_name(p.name),
        "actor",
        lambda f: genders.get(f["actor"], ""),
        "AudioWAV/1001_DFA_ANG_XX.wav",
    )
