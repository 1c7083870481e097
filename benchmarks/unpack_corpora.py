"""Unpack the five public corpus snapshots into ``../corpora/NAME/`` (never into the project).

``../shared/data/README.md`` names each snapshot as ``OWNER/NAME @ COMMIT`` with the paths that
hold the corpus. Given the git directories of the snapshots (the search tool's ``fetch`` brings
them as ``/work/.mirror/OWNER+NAME/repo``), this script extracts each corpus with ``git archive
COMMIT PATH | tar -x`` and lays it out as its owners distribute it:

- ``emodb/EmoDB/03a01Fa.wav`` ... (as in the snapshot);
- ``tess/OAF_angry/OAF_back_angry.wav`` ...: the 1960 files of ``datasets/train`` keep their
  names; the 840 the snapshot's owner renamed into ``datasets/testnew`` (``12testOAF_back_angry3
  .wav``) get their original names back (``OAF_back_angry.wav``; ``OA_bite_neutral.wav`` stays
  as TESS distributes it) in the folder of their speaker and emotion;
- ``nemo/samples/*.wav`` and ``nemo/data.tsv``;
- ``ased/01Neutral/n1-01-01-01-01.wav`` ... (five emotion folders);
- ``baved/0/...`` ... ``baved/6/...`` and ``baved/speakers_info.json``.

A corpus already unpacked at the same commit (``.unpacked.json`` in its folder) is skipped, so the
script can be rerun; ``--force`` unpacks again. A fresh machine rebuilds ``../corpora`` in
minutes::

    python benchmarks/unpack_corpora.py --mirror /work/.mirror --out ../corpora
    python benchmarks/unpack_corpora.py --git-dir tess=/path/to/repo.git --only tess
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Snapshot:
    """One corpus snapshot: where it is published and what of it is the corpus."""

    name: str
    repo: str
    commit: str
    paths: tuple[str, ...]
    files: int
    """Audio files the corpus holds (checked after unpacking)."""


SNAPSHOTS = (
    Snapshot(
        "emodb",
        "saketh42/Emotion-Classifier-using-EmoDB",
        "0640293c9bf7cb20cb1e2ab56ac260d898d4a9a6",
        ("EmoDB",),
        535,
    ),
    Snapshot(
        "tess",
        "deepxzy/Toronto-emotional-speech-set",
        "acdd3c415ef6ffa55dd51a65493b98699dbe14cf",
        ("datasets",),
        2800,
    ),
    Snapshot(
        "nemo",
        "amu-cai/nEMO",
        "66de9999a8f2f605eb5f64841790aa5cb0877782",
        ("samples", "data.tsv"),
        4481,
    ),
    Snapshot(
        "ased",
        "wgwangang/ASED_V1",
        "3feb6d25ec1a88d770594c88d2c4e6cae5c0d046",
        ("01Neutral", "02Fearful", "03Happy", "04Sad", "05Angry"),
        2474,
    ),
    Snapshot(
        "baved",
        "40uf411/Basic-Arabic-Vocal-Emotions-Dataset",
        "6e3d51261a15ec4d6f68ee082b1488147b706f2f",
        ("0", "1", "2", "3", "4", "5", "6", "speakers_info.json"),
        1935,
    ),
)

MARKER = ".unpacked.json"

TESS_FOLDERS = {
    ("OAF", "angry"): "OAF_angry",
    ("OAF", "disgust"): "OAF_disgust",
    ("OAF", "fear"): "OAF_Fear",
    ("OAF", "happy"): "OAF_happy",
    ("OAF", "neutral"): "OAF_neutral",
    ("OAF", "ps"): "OAF_Pleasant_surprise",
    ("OAF", "sad"): "OAF_Sad",
    ("YAF", "angry"): "YAF_angry",
    ("YAF", "disgust"): "YAF_disgust",
    ("YAF", "fear"): "YAF_fear",
    ("YAF", "happy"): "YAF_happy",
    ("YAF", "neutral"): "YAF_neutral",
    ("YAF", "ps"): "YAF_pleasant_surprised",
    ("YAF", "sad"): "YAF_sad",
}
"""TESS's folders as distributed, by speaker and emotion."""

TESS_RENAMED = re.compile(r"^\d+test((OAF|OA|YAF)_[A-Za-z]+_([a-z]+))\d+\.wav$")
"""A file of the snapshot's ``testnew``: ``<n>test<original stem><m>.wav``."""


def git_dir(mirror: Path, repo: str) -> Path:
    """The git directory of ``OWNER/NAME`` under a mirror root (``OWNER+NAME/repo[/.git]``).

    Raises:
        FileNotFoundError: no git directory for it there.
    """
    base = mirror / repo.replace("/", "+") / "repo"
    for candidate in (base, base / ".git"):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    raise FileNotFoundError(f"{repo}: no git directory under {base}")


def extract(gitdir: Path, snap: Snapshot, dest: Path) -> None:
    """``git archive COMMIT PATHS | tar -x -C dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(
        ["git", f"--git-dir={gitdir}", "archive", snap.commit, *snap.paths],
        stdout=subprocess.PIPE,
    )
    tar = subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=False)
    archive.stdout.close()
    if archive.wait() != 0 or tar.returncode != 0:
        raise RuntimeError(f"{snap.name}: git archive {snap.commit} failed in {gitdir}")


def restore_tess(raw: Path, dest: Path) -> int:
    """Lay out TESS as distributed (see the module's description); returns the files moved.

    Raises:
        ValueError: a renamed file whose original name cannot be recovered, or two files that
            would get the same name.
    """
    moved = 0
    for wav in sorted((raw / "datasets" / "train").glob("*/*")):
        target = dest / wav.parent.name / wav.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(wav), target)
        moved += 1
    for wav in sorted((raw / "datasets" / "testnew").glob("*")):
        m = TESS_RENAMED.match(wav.name)
        if m is None:
            raise ValueError(f"{wav.name}: not a renamed TESS file (<n>test<NAME><m>.wav)")
        stem, prefix, emotion = m.groups()
        speaker = "OAF" if prefix == "OA" else prefix
        folder = TESS_FOLDERS.get((speaker, emotion))
        if folder is None:
            raise ValueError(f"{wav.name}: no TESS folder for {speaker} {emotion}")
        target = dest / folder / f"{stem}.wav"
        if target.exists():
            raise ValueError(f"{wav.name}: {target} exists already")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(wav), target)
        moved += 1
    return moved


def count_audio(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())


def unpack(snap: Snapshot, gitdir: Path, out: Path, force: bool = False) -> dict:
    """Unpack one corpus into ``out/NAME`` (skipped when already there at this commit)."""
    dest = out / snap.name
    marker = dest / MARKER
    if not force and marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("commit") == snap.commit:
            return {**done, "skipped": True}
    if dest.exists():
        shutil.rmtree(dest)
    if snap.name == "tess":
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            extract(gitdir, snap, Path(tmp))
            restore_tess(Path(tmp), dest)
    else:
        extract(gitdir, snap, dest)
    files = count_audio(dest)
    if files != snap.files:
        raise RuntimeError(f"{snap.name}: {files} audio files unpacked, {snap.files} expected")
    info = {"corpus": snap.name, "repo": snap.repo, "commit": snap.commit, "files": files}
    marker.write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, help="Folder holding OWNER+NAME/repo git dirs.")
    ap.add_argument(
        "--git-dir", action="append", default=[], metavar="NAME=PATH", help="A snapshot's git dir."
    )
    ap.add_argument("--out", type=Path, default=Path("../corpora"), help="Where to unpack.")
    ap.add_argument("--only", help="Comma list of corpora (default: all five).")
    ap.add_argument("--force", action="store_true", help="Unpack again even when done.")
    args = ap.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.git_dir)
    wanted = set(args.only.split(",")) if args.only else {s.name for s in SNAPSHOTS}
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for snap in SNAPSHOTS:
        if snap.name not in wanted:
            continue
        try:
            if snap.name in given:
                gitdir = Path(given[snap.name])
            elif args.mirror is not None:
                gitdir = git_dir(args.mirror, snap.repo)
            else:
                raise FileNotFoundError(f"{snap.name}: give --mirror or --git-dir {snap.name}=PATH")
            info = unpack(snap, gitdir, args.out, force=args.force)
        except (FileNotFoundError, RuntimeError, ValueError) as exc:
            print(f"{snap.name}: {exc}", file=sys.stderr)
            status = 1
            continue
        what = "already unpacked" if info.get("skipped") else "unpacked"
        print(f"{snap.name}: {info['files']} files {what} in {args.out / snap.name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
