"""Any folder with one sub-folder per label: ``ROOT/<label>/**/<file>``.

The speaker is unknown, so each file counts as its own speaker unless the file name starts with a
speaker id followed by ``speaker_sep`` (for example ``spk03_take2.wav`` with ``speaker_sep="_"``).
"""

from __future__ import annotations

import os
from pathlib import Path

from emovox.audio import AUDIO_EXTENSIONS
from emovox.data.manifest import Manifest, Utterance

NAME = "folder"


def scan(root: str | os.PathLike, speaker_sep: str | None = None) -> Manifest:
    """One utterance per audio file below each label folder of ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such corpus folder")
    rows = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(label_dir.rglob("*")):
            if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
                continue
            rel = str(path.relative_to(root))
            if speaker_sep and speaker_sep in path.stem:
                speaker = path.stem.split(speaker_sep, 1)[0]
            else:
                speaker = rel
            rows.append(
                Utterance(path=str(path), label=label_dir.name, speaker=speaker, corpus=NAME)
            )
    if not rows:
        raise ValueError(f"{root}: no audio files in label sub-folders")
    return Manifest(rows)
