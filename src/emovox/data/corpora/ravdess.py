"""RAVDESS: the Ryerson Audio-Visual Database of Emotional Speech and Song.

File names are seven two-digit fields, ``MM-VV-EE-II-SS-RR-AA``: modality, vocal channel, emotion,
intensity, statement, repetition and actor (odd actors are male, even are female). Both the
distributed ``.wav`` files and lossless ``.flac`` re-encodings are read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emovox.data.corpora._common import name_fields, warn_skipped
from emovox.data.manifest import Manifest, Utterance
from emovox.data.taxonomy import CORPUS_CODES

NAME = "ravdess"
LANGUAGE = "English (North American)"
LICENCE = "CC BY-NC-SA 4.0"
CITATION = "Livingstone & Russo (2018), PLoS ONE 13(5): e0196391, doi:10.1371/journal.pone.0196391"
EXTENSIONS = (".wav", ".flac")

MODALITIES = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
EMOTIONS = CORPUS_CODES[NAME]
"""Emotion code -> label: RAVDESS's row of the one taxonomy table."""
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
N_ACTORS = 24

_NAME_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def parse_name(name: str) -> dict[str, str]:
    """Parse a RAVDESS file name (with or without extension) into its seven named fields.

    Raises:
        ValueError: the name is not a valid RAVDESS name; the message says which part is wrong.
    """
    mm, vv, ee, ii, ss, rr, aa = name_fields(name, EXTENSIONS, _NAME_RE, "MM-VV-EE-II-SS-RR-AA")
    tables = [
        ("modality", mm, MODALITIES),
        ("vocal channel", vv, VOCAL_CHANNELS),
        ("emotion", ee, EMOTIONS),
        ("intensity", ii, INTENSITIES),
        ("statement", ss, STATEMENTS),
    ]
    for what, code, table in tables:
        if code not in table:
            raise ValueError(f"{name!r}: unknown {what} code {code}")
    if rr not in ("01", "02"):
        raise ValueError(f"{name!r}: unknown repetition code {rr}")
    actor = int(aa)
    if not 1 <= actor <= N_ACTORS:
        raise ValueError(f"{name!r}: actor {aa} is outside 01-{N_ACTORS}")
    return {
        "modality": MODALITIES[mm],
        "vocal_channel": VOCAL_CHANNELS[vv],
        "emotion": EMOTIONS[ee],
        "intensity": INTENSITIES[ii],
        "statement": ss,
        "repetition": rr,
        "actor": aa,
        "gender": "male" if actor % 2 else "female",
    }


def scan(root: str | os.PathLike, channel: str = "speech") -> Manifest:
    """Scan ``root`` recursively for RAVDESS ``.wav``/``.flac`` files.

    Args:
        root: the corpus folder (e.g. holding ``Actor_01`` ... ``Actor_24``).
        channel: ``"speech"`` (default), ``"song"`` or ``"all"`` vocal channels.

    Files whose names do not parse are listed in one warning and skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such corpus folder")
    if channel not in ("speech", "song", "all"):
        raise ValueError(f"channel must be speech, song or all, not {channel!r}")
    rows: list[Utterance] = []
    bad: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS):
        try:
            f = parse_name(path.name)
        except ValueError as exc:
            bad.append(f"{path.relative_to(root)} ({exc})")
            continue
        if channel != "all" and f["vocal_channel"] != channel:
            continue
        gender = f.pop("gender")
        rows.append(Utterance(str(path), f["emotion"], f"Actor_{f['actor']}", gender, NAME, f))
    warn_skipped(bad, root, "RAVDESS", stacklevel=3)
    return Manifest(rows)
