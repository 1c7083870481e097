"""SAVEE: Surrey Audio-Visual Expressed Emotion (Haq & Jackson, 2009).

Four male speakers (DC, JE, JK, KL), 120 sentences each. Both distributed layouts are read:
the original ``AudioData/DC/a01.wav`` (speaker folders) and the flat ``DC_a01.wav``. The letters
before the number are the emotion: a anger, d disgust, f fear, h happiness, n neutral, sa sadness,
su surprise. Speakers are ``savee_DC`` ...
"""

from __future__ import annotations

import os
import re

from emovox.data.corpora._common import name_fields, scan_named
from emovox.data.manifest import Manifest
from emovox.data.taxonomy import CORPUS_CODES

NAME = "savee"
LANGUAGE = "English (British)"
LICENCE = "free for research use"
CITATION = "Haq & Jackson (2009), Speaker-dependent audio-visual emotion recognition, AVSP"
EXTENSIONS = (".wav", ".flac")
SPEAKERS = ("DC", "JE", "JK", "KL")
_NAME_RE = re.compile(r"^(?:([A-Za-z]{2})_)?(sa|su|a|d|f|h|n)(\d{2})$")
NAME_FORM = "[SPEAKER_]CODENN (e.g. DC_a01 or a01)"


def parse_name(name: str, folder: str = "") -> dict[str, str]:
    """Parse ``DC_a01.wav``, or ``a01.wav`` inside the speaker folder ``folder`` (``DC``).

    Raises:
        ValueError: the name is not a SAVEE name or the speaker is unknown.
    """
    named, code, number = name_fields(name, EXTENSIONS, _NAME_RE, NAME_FORM)
    speaker = (named or folder).upper()
    if speaker not in SPEAKERS:
        where = "" if named else f" (from its folder {folder!r})"
        raise ValueError(
            f"{name!r}: unknown speaker {speaker!r}{where}; SAVEE has {', '.join(SPEAKERS)}"
        )
    return {
        "speaker": speaker,
        "code": code,
        "emotion": CORPUS_CODES[NAME][code],
        "sentence": number,
    }


def scan(root: str | os.PathLike) -> Manifest:
    """Scan ``root`` recursively for SAVEE files in either layout; others are skipped in one
    warning."""
    return scan_named(
        root,
        NAME,
        "SAVEE",
        EXTENSIONS,
        lambda p: parse_name(p.name, folder=p.parent.name),
        "speaker",
        "male",
        "DC/a01.wav or DC_a01.wav",
    )
