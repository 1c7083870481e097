"""TESS: the Toronto Emotional Speech Set (Dupuis & Pichora-Fuller, 2010).

Two female speakers, ``OAF`` (older) and ``YAF`` (younger), say "Say the word ..." for 200 words
in seven emotions. Files are ``SPEAKER_WORD_EMOTION.wav`` (``OAF_back_angry.wav``) in
per-speaker-emotion folders (``OAF_angry``, ``YAF_pleasant_surprised``); the emotion is read from
the file name: angry, disgust, fear, happy, neutral, ps (pleasant surprise), sad. Speakers are
``tess_OAF`` and ``tess_YAF``; the one file of the distribution named ``OA_...`` is OAF's. Two
files are AIFF although named ``.wav`` and one is at 96 kHz (the rest 24.4 kHz): the one loader
reads them all.
"""

from __future__ import annotations

import os
from pathlib import Path

from emovox.data.corpora._common import scan_named
from emovox.data.manifest import Manifest
from emovox.data.taxonomy import CORPUS_CODES

NAME = "tess"
LANGUAGE = "English (Canadian)"
LICENCE = "CC BY-NC-ND 4.0"
CITATION = "Dupuis & Pichora-Fuller (2010), Toronto emotional speech set, University of Toronto"
EXTENSIONS = (".wav", ".flac")
SPEAKERS = ("OAF", "YAF")
SPEAKER_ALIASES = {"OA": "OAF"}
"""Prefixes that stand for a speaker: the original distribution names one of OAF's files
``OAF_neutral/OA_bite_neutral.wav``."""


def parse_name(name: str) -> dict[str, str]:
    """Parse a TESS file name (``OAF_back_angry.wav``) into speaker, word, code and emotion.

    Raises:
        ValueError: the name is not a TESS name; the message says which part is wrong.
    """
    stem = Path(name).stem if Path(name).suffix.lower() in EXTENSIONS else name
    parts = stem.split("_")
    if len(parts) < 3:
        raise ValueError(f"{name!r} is not of the form SPEAKER_WORD_EMOTION (e.g. OAF_back_angry)")
    speaker, code = parts[0].upper(), parts[-1].lower()
    speaker = SPEAKER_ALIASES.get(speaker, speaker)
    word = "_".join(parts[1:-1])
    if speaker not in SPEAKERS:
        raise ValueError(f"{name!r}: unknown speaker {parts[0]} (TESS has {', '.join(SPEAKERS)})")
    if code not in CORPUS_CODES[NAME]:
        raise ValueError(f"{name!r}: unknown emotion {parts[-1]}")
    return {"speaker": speaker, "word": word, "code": code, "emotion": CORPUS_CODES[NAME][code]}


def scan(root: str | os.PathLike) -> Manifest:
    """Scan ``root`` recursively for TESS files; badly named files are skipped in one warning."""
    return scan_named(
        root,
        NAME,
        "TESS",
        EXTENSIONS,
        lambda p: parse_name(p.name),
        "speaker",
        "female",
        "OAF_angry/OAF_back_angry.wav",
    )
