"""Batch scoring on Ray Data (a local cluster of 2 CPUs): the same labels and probabilities as
``emovox predict``, bad files reported, JSONL and Parquet outputs, resume after a killed run
losing and repeating nothing, and URLs read through fsspec."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

pytest.importorskip("ray")
pytest.importorskip("ray.data")

from emovox.inference.ray_scoring import (
    engine_format,
    expand_sources,
    is_url,
    parquet_done,
    score_with_ray,
)
from emovox.inference.recognizer import Recognizer

CPUS = 2


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray of 2 CPUs for the module (score_with_ray joins it, and leaves it running)."""
    import ray

    ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus_files(synth_corpus: Path) -> list[str]:
    return sorted(str(f) for f in synth_corpus.rglob("*.wav"))


@pytest.fixture(scope="module")
def reference(trained_bundle: Path, corpus_files: list[str]) -> dict:
    """What the local engine gives: file -> JSON line of ``emovox predict --out x.jsonl``."""
    rec = Recognizer.load(trained_bundle)
    return {p.file: p.to_dict() for p in rec.predict_batch(corpus_files)}


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def assert_same(rows: list[dict], reference: dict) -> None:
    for r in rows:
        want = reference[r["file"]]
        assert r["label"] == want["label"], r["file"]
        for c, v in want["probabilities"].items():
            assert abs(r["probabilities"][c] - v) <= 1e-5, (r["file"], c)


def test_ray_gives_the_predictions_of_the_local_engine_and_reports_bad_files(
    trained_bundle: Path, corpus_files: list[str], reference: dict, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not audio")
    out = tmp_path / "out.jsonl"
    summary = score_with_ray(
        trained_bundle, [*corpus_files, str(bad)], out, batch_size=4, num_cpus=CPUS, progress=False
    )
    rows = lines(out)
    assert summary.written == len(rows) == len(corpus_files) + 1
    assert sorted(r["file"] for r in rows) == sorted([*corpus_files, str(bad)])
    assert [f for f, _ in summary.failed] == [str(bad)]
    broken = next(r for r in rows if r["file"] == str(bad))
    assert broken["label"] is None and "not a readable audio file" in broken["error"]
    assert_same([r for r in rows if r["error"] is None], reference)


def test_parquet_shards_and_resume(
    trained_bundle: Path, corpus_files: list[str], reference: dict, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "out.parquet"
    assert engine_format(out) == "parquet" and engine_format(tmp_path / "x.jsonl") == "jsonl"
    first = corpus_files[:10]
    score_with_ray(trained_bundle, first, out, batch_size=4, num_cpus=CPUS, progress=False)
    done, nxt = parquet_done(out)
    assert done == set(first) and nxt >= 1
    again = score_with_ray(
        trained_bundle,
        corpus_files,
        out,
        resume=True,
        batch_size=4,
        num_cpus=CPUS,
        progress=False,
    )
    assert again.skipped == 10 and again.written == len(corpus_files) - 10
    table = pq.read_table(out).to_pylist()
    assert sorted(r["file"] for r in table) == sorted(corpus_files)  # each file once
    for r in table:
        want = reference[r["file"]]
        assert r["label"] == want["label"]
        assert all(abs(r[f"p_{c}"] - v) <= 1e-5 for c, v in want["probabilities"].items())


def test_a_killed_run_resumes_without_losing_or_repeating_a_file(
    trained_bundle: Path, corpus_files: list[str], reference: dict, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    many = corpus_files * 1  # 32 files
    cmd = [
        sys.executable,
        "-m",
        "emovox",
        "predict",
        "--model",
        str(trained_bundle),
        *many,
        "--engine",
        "ray",
        "--batch-size",
        "2",
        "-o",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, start_new_session=True)  # its own local Ray
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if out.is_file() and len(out.read_text().splitlines()) >= 4:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = out.read_text().splitlines(keepends=True) if out.is_file() else []
    if len(done) >= len(many):
        # On a loaded machine Ray can hand the driver every batch before the poll sees the
        # fourth line; keep what a kill after four lines leaves, so the resume has work to do.
        out.write_text("".join(done[:4]))
    with out.open("a") as f:  # as if killed in the middle of a line
        f.write('{"file": "half a li')
    partial = len(out.read_text().splitlines()) - 1
    run_cli(
        [
            "predict",
            "--model",
            str(trained_bundle),
            *many,
            "--engine",
            "ray",
            "--resume",
            "--batch-size",
            "4",
            "-o",
            str(out),
            "--quiet",
        ]
    )
    rows = lines(out)
    files = [r["file"] for r in rows]
    assert sorted(files) == sorted(set(corpus_files)) and len(files) == len(set(files))
    assert partial < len(rows)
    assert_same(rows, reference)


def test_urls_are_read_through_fsspec(
    trained_bundle: Path, corpus_files: list[str], reference: dict, tmp_path: Path
) -> None:
    folder = tmp_path / "bucket"
    shutil.copytree(Path(corpus_files[0]).parent, folder / "a")
    url = f"local://{folder}"
    assert is_url(url) and not is_url(corpus_files[0])
    files, missing = expand_sources([url, f"local://{folder}/nothing/*.wav"])
    assert len(files) == len(list((folder / "a").glob("*.wav"))) and len(missing) == 1
    out = tmp_path / "out.jsonl"
    score_with_ray(trained_bundle, files, out, num_cpus=CPUS, progress=False)
    rows = lines(out)
    assert len(rows) == len(files) and all(r["error"] is None for r in rows)
    by_name = {Path(k).name: v for k, v in reference.items() if Path(k).parent.name == "Actor_01"}
    for r in rows:
        assert r["label"] == by_name[Path(r["file"]).name]["label"]


def test_cli_refuses_what_ray_does_not_do(trained_bundle: Path, corpus_files: list[str]) -> None:
    from click.testing import CliRunner

    from emovox.apps.cli import main

    base = ["predict", "--model", str(trained_bundle), corpus_files[0], "--engine", "ray"]
    for extra, message in [
        ([], "-o FILE.jsonl"),
        (["-o", "x.jsonl", "--segments"], "whole files"),
        (["-o", "x.csv", "--format", "csv"], "jsonl"),
    ]:
        result = CliRunner().invoke(main, [*base, *extra])
        assert result.exit_code == 2 and message in result.output, result.output
    lone = CliRunner().invoke(main, ["predict", corpus_files[0], "--address", "auto"])
    assert lone.exit_code == 2 and "--engine ray" in lone.output
