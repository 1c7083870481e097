"""ASED: the Amharic Speech Emotional Dataset v1 (Retta et al., 2023), 65 speakers.

Files are ``<folder>/<xn>-<yy>-<aa>-<gg>-<bb>.wav`` in the folders ``01Neutral 02Fearful 03Happy
04Sad 05Angry``: ``x`` the emotion letter (n f h s a) and ``n`` its folder number, ``yy`` the
sentence, ``aa`` the repetition, ``gg`` the gender (01 female, 02 male) and ``bb`` the speaker
(01-65). 16 kHz mono. One file of the distribution has an upper-case letter (``S4-...``); letters
are read in either case. Speakers are ``ased_01`` ... Most sentences were always spoken in one
emotion, so inside ASED the words predict the label: evaluate across speakers *and* sentences, or
across corpora.
"""

from __future__ import annotations

import os
import re

from emovox.data.corpora._common import name_fields, scan_named
from emovox.data.manifest import Manifest
from emovox.data.taxonomy import canonical_label

NAME = "ased"
LANGUAGE = "Amharic"
LICENCE = "none stated"
CITATION = "Retta et al. (2023), A new Amharic speech emotion dataset (ASED), IEEE Access"
EXTENSIONS = (".wav",)
FOLDER_NUMBERS = {"n": "1", "f": "2", "h": "3", "s": "4", "a": "5"}
"""The folder number that goes with each emotion letter (``n1``, ``f2`` ...)."""
GENDERS = {"01": "female", "02": "male"}
_NAME_RE = re.compile(r"^([a-z])(\d)-(\d{2})-(\d{2})-(\d{2})-(\d{2})$", re.IGNORECASE)
NAME_FORM = "xn-yy-aa-gg-bb (e.g. a5-03-01-02-50)"


def parse_name(name: str) -> dict[str, str]:
    """Parse an ASED file name (``a5-03-01-02-50.wav``) into its fields.

    Raises:
        ValueError: the name is not an ASED name; the message says which part is wrong.
    """
    groups = name_fields(name, EXTENSIONS, _NAME_RE, NAME_FORM)
    letter, folder, sentence, repetition, gender, speaker = groups
    code = letter.lower()
    emotion = canonical_label(NAME, code)
    if FOLDER_NUMBERS[code] != folder:
        raise ValueError(f"{name!r}: emotion {code} belongs to folder {FOLDER_NUMBERS[code]}")
    if gender not in GENDERS:
        raise ValueError(f"{name!r}: gender {gender} is neither 01 (female) nor 02 (male)")
    fields = {"code": code, "sentence": sentence, "repetition": repetition, "speaker": speaker}
    return {**fields, "emotion": emotion, "gender": GENDERS[gender]}


def scan(root: str | os.PathLike) -> Manifest:
    """Scan ``root`` recursively for ASED files; badly named files are skipped in one warning."""
    return scan_named(
        root,
        NAME,
        "ASED",
        EXTENSIONS,
        lambda p: parse_name(p.name),
        "speaker",
        "",
        "05Angry/a5-03-01-02-50.wav",
    )
