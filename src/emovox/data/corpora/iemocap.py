"""IEMOCAP: the Interactive Emotional Dyadic Motion Capture database (Busso et al., 2008).

Five sessions, each with one female and one male actor. Utterances and their labels come from the
``EmoEvaluation`` files, ``SessionN/dialog/EmoEvaluation/<dialog>.txt``, whose summary lines read
``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]`` (times,
utterance, label, valence/activation/dominance). The audio is
``SessionN/sentences/wav/<dialog>/<utterance>.wav``.

The speaker is the session and the gender letter of the utterance id's last part
(``Ses01F_impro01_M000`` -> ``iemocap_Ses01M``); ``fields["session"]`` (``Ses01``) groups the
speakers by session. By default only the common 4-class set is listed (neutral, happy with
excited merged in, sad, angry); ``classes="all"`` lists every labelled utterance. ``xxx``
(no majority label) is never listed.
"""

from __future__ import annotations

import os
import re

from emovox.data.corpora._common import corpus_root, no_rows, warn_skipped
from emovox.data.manifest import Manifest, Utterance
from emovox.data.taxonomy import CORPUS_CODES, IEMOCAP_FOUR_CLASSES
from emovox.progress import console

NAME = "iemocap"
LANGUAGE = "English (American)"
LICENCE = "USC SAIL release agreement"
CITATION = "Busso et al. (2008), IEMOCAP, Language Resources and Evaluation 42(4)"
_LINE_RE = re.compile(
    r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses(\d{2})[FM]_\S+)\s+(\w+)\s+\[([^\]]*)\]\s*$"
)


def parse_line(line: str) -> dict[str, str] | None:
    """The fields of one ``EmoEvaluation`` summary line, or ``None`` for any other line."""
    m = _LINE_RE.match(line.strip())
    if not m:
        return None
    start, end, utt, session, code, vad = m.groups()
    last = utt.rsplit("_", 1)[1]
    if not last or last[0] not in "FM":
        return None
    values = [v.strip() for v in vad.split(",")]
    fields = {
        "utterance": utt,
        "dialog": utt.rsplit("_", 1)[0],
        "session": f"Ses{session}",
        "speaker": f"Ses{session}{last[0]}",
        "gender": "female" if last[0] == "F" else "male",
        "code": code,
        "start": start,
        "end": end,
        "type": "improvised" if "_impro" in utt else "scripted",
    }
    if len(values) == 3:
        fields.update(valence=values[0], activation=values[1], dominance=values[2])
    return fields


def scan(root: str | os.PathLike, classes: str = "4") -> Manifest:
    """Scan ``root`` (holding ``Session1`` ... ``Session5``) through its EmoEvaluation files.

    Args:
        classes: ``"4"`` (default): neutral, happy (+ excited), sad, angry; ``"all"``: every
            utterance with a majority label.

    Utterances whose wav file is missing are skipped in one warning; how many utterances fall
    outside ``classes`` is logged.
    """
    root = corpus_root(root)
    if classes not in ("4", "all"):
        raise ValueError(f"classes must be '4' or 'all', not {classes!r}")
    table = CORPUS_CODES[NAME]
    evaluations = sorted(
        p for p in root.glob("Session*/dialog/EmoEvaluation/*.txt") if not p.name.startswith(".")
    )
    if not evaluations:
        raise ValueError(
            f"{root}: no IEMOCAP label files (expected Session1/dialog/EmoEvaluation/*.txt)"
        )
    rows, missing = [], []
    outside = 0
    for txt in evaluations:
        session_dir = txt.parents[2]
        for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
            f = parse_line(line)
            if f is None:
                continue
            label = table.get(f["code"])
            if label is None or (classes == "4" and label not in IEMOCAP_FOUR_CLASSES):
                outside += 1
                continue
            wav = session_dir / "sentences" / "wav" / f["dialog"] / f"{f['utterance']}.wav"
            if not wav.is_file():
                missing.append(str(wav.relative_to(root)))
                continue
            speaker, gender = f.pop("speaker"), f.pop("gender")
            rows.append(Utterance(str(wav), label, f"{NAME}_{speaker}", gender, NAME, f))
    warn_skipped(
        missing,
        root,
        "IEMOCAP",
        why="whose wav file is missing",
        noun="IEMOCAP utterance(s)",
        stacklevel=3,
    )
    if outside:
        kept = "the 4-class set" if classes == "4" else "a majority label"
        console.log(f"iemocap: left out {outside} utterance(s) without {kept}")
    if not rows:
        raise no_rows(
            root, "IEMOCAP", "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
        )
    return Manifest(rows)
