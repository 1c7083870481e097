"""Batch scoring to JSONL/CSV: order, bad files, resume, globs, manifests, the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_tone

from emovox.apps.cli import main
from emovox.data.manifest import Manifest, Utterance
from emovox.inference.batch import done_files, score_files
from emovox.inference.recognizer import Recognizer


@pytest.fixture(scope="module")
def rec(trained_bundle: Path) -> Recognizer:
    return Recognizer.load(trained_bundle)


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """Seven good clips (some in a sub-folder, one FLAC) and two bad files, in input order."""
    root = tmp_path / "clips"
    good = []
    for i in range(7):
        sub = root / ("sub" if i % 3 == 0 else "")
        ext = ".flac" if i == 4 else ".wav"
        good.append(str(write_tone(sub / f"c{i}{ext}", seconds=0.4 + 0.15 * i, freq=200 + 60 * i)))
    bad = root / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEnot really")
    empty = root / "empty.wav"
    empty.write_bytes(b"")
    files = [good[0], good[1], str(bad), good[2], good[3], str(empty), good[4], good[5], good[6]]
    return root, files, [str(bad), str(empty)]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_jsonl_has_one_line_per_file_in_order_with_errors(rec, folder, tmp_path: Path) -> None:
    _, files, bad = folder
    out = tmp_path / "preds.jsonl"
    summary = score_files(rec, files, out, workers=2, batch_size=3, progress=False)
    rows = read_jsonl(out)
    assert [r["file"] for r in rows] == files
    assert summary.written == len(files) and summary.skipped == 0
    assert sorted(p for p, _ in summary.failed) == sorted(bad)
    ref = {p.source: p for p in rec.predict_batch(files)}
    for r in rows:
        if r["file"] in bad:
            assert r["error"] and r["label"] is None
            continue
        assert r["error"] is None
        assert r["label"] == ref[r["file"]].label
        assert np.allclose(
            [r["probabilities"][c] for c in rec.labels],
            [ref[r["file"]].probabilities[c] for c in rec.labels],
            atol=1e-5,
        )
    assert "empty" in dict(summary.failed)[bad[1]]


def test_resume_after_a_partial_output(rec, folder, tmp_path: Path) -> None:
    _, files, _ = folder
    full = tmp_path / "full.jsonl"
    score_files(rec, files, full, batch_size=4, progress=False)
    lines = full.read_text().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_text("".join(lines[:4]) + lines[4][:17])  # stopped in the middle of line 5
    summary = score_files(rec, files, part, resume=True, batch_size=4, progress=False)
    assert summary.skipped == 4 and summary.written == len(files) - 4
    assert [r["file"] for r in read_jsonl(part)] == files
    assert part.read_text().splitlines()[:4] == [x.rstrip("\n") for x in lines[:4]]
    again = score_files(rec, files, part, resume=True, progress=False)
    assert again.written == 0 and again.skipped == len(files)
    assert len(read_jsonl(part)) == len(files)


def test_csv_output_and_resume(rec, folder, tmp_path: Path) -> None:
    _, files, bad = folder
    out = tmp_path / "preds.csv"
    score_files(rec, files[:5], out, progress=False)
    score_files(rec, files, out, resume=True, progress=False)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == files
    assert list(rows[0]) == ["file", "label", *rec.labels, "basis", "error"]
    for r in rows:
        assert bool(r["error"]) == (r["file"] in bad)
    assert done_files(out, "csv", rec.labels) == set(files)
    with pytest.raises(ValueError, match="columns"):
        done_files(out, "csv", ["x", "y"])


def test_cli_globs_folders_manifest_and_bad_files(
    trained_bundle: Path, folder, tmp_path: Path
) -> None:
    root, files, bad = folder
    out = tmp_path / "glob.jsonl"
    r = CliRunner().invoke(
        main,
        [
            "predict",
            "--model",
            str(trained_bundle),
            str(root / "*.wav"),
            "--output",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    got = [row["file"] for row in read_jsonl(out)]
    assert got == sorted(str(p) for p in root.glob("*.wav"))
    assert "could not be read" in r.output and str(Path(bad[0])) in r.output

    out2 = tmp_path / "folder.csv"
    r = CliRunner().invoke(
        main, ["predict", "--model", str(trained_bundle), str(root), "--output", str(out2)]
    )
    assert r.exit_code == 0, r.output
    with out2.open(newline="") as f:
        assert len(list(csv.DictReader(f))) == len(files)

    manifest = tmp_path / "m.jsonl"
    Manifest([Utterance(path=p, label="happy") for p in files[:3]]).save(manifest)
    out3 = tmp_path / "manifest.jsonl"
    args = ["predict", "--model", str(trained_bundle), "--manifest", str(manifest)]
    r = CliRunner().invoke(main, [*args, "--output", str(out3), "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    assert [row["file"] for row in read_jsonl(out3)] == files[:3]
    r = CliRunner().invoke(main, [*args, "--output", str(out3), "--resume"])
    assert r.exit_code == 0 and "3 already there" in r.output

    r = CliRunner().invoke(main, ["predict", "--model", str(trained_bundle), "--resume", "x.wav"])
    assert r.exit_code == 2 and "--output" in r.output
