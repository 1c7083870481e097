"""Issue 15: every command behaves as a user expects under bad targets and hostile inputs:
one line naming the path and the problem, never a traceback, nothing of the user's lost."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from conftest import SYNTH_EMOTIONS, tiny_cli, write_tone

from emovox.apps.cli import main

LABELS = ",".join(SYNTH_EMOTIONS)


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def model(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    out = tmp_path_factory.mktemp("hostile") / "model"
    args = tiny_cli("train", ["--data", synth_corpus, "--labels", LABELS], out, epochs=1)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return SimpleNamespace(path=out, corpus=synth_corpus, args=args)


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    return write_tone(tmp_path / "clip.wav", seconds=1.0)


def blocked(tmp_path: Path) -> Path:
    """A target no one can write: its parent is a regular file (as root too)."""
    wall = tmp_path / "a_file"
    wall.write_text("not a folder")
    return wall / "target"


def assert_clean_error(result, path: Path) -> None:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert str(path) in result.output, result.output


COMMANDS = {
    "predict --segments --output": lambda m, c, t: (
        "predict",
        "--model",
        m.path,
        c,
        "--segments",
        "--output",
        t.with_suffix(".jsonl"),
    ),
    "predict --segments --plot": lambda m, c, t: (
        "predict",
        "--model",
        m.path,
        c,
        "--segments",
        "--plot",
        t.with_suffix(".png"),
    ),
    "predict --output": lambda m, c, t: ("predict", "--model", m.path, c, "--output", t),
    "export --out": lambda m, c, t: ("export", m.path, "--out", t.with_suffix(".onnx")),
    "demo-clip": lambda m, c, t: ("demo-clip", t.with_suffix(".wav"), "--engine", "numpy"),
    "plot": lambda m, c, t: ("plot", "waveform", c, "-o", t.with_suffix(".png")),
    "evaluate --out": lambda m, c, t: tiny_cli(
        "evaluate", ["--data", m.corpus, "--labels", LABELS], t, "--folds", "1", epochs=1
    )[:-2],
    "evaluate --cache-dir": lambda m, c, t: [
        *tiny_cli(
            "evaluate", ["--data", m.corpus, "--labels", LABELS], t.parent.parent / "ev", epochs=1
        )[:-1],
        "--cache-dir",
        t,
    ],
    "train --out": lambda m, c, t: tiny_cli(
        "train", ["--data", m.corpus, "--labels", LABELS], t, epochs=1
    ),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_an_unwritable_target_is_one_line_naming_it(
    name: str, model: SimpleNamespace, clip: Path, tmp_path: Path
) -> None:
    target = blocked(tmp_path)
    args = COMMANDS[name](model, clip, target)
    result = invoke(*args)
    assert_clean_error(result, target.parent)


def test_resume_refuses_a_checkpoint_of_other_labels_or_model(
    model: SimpleNamespace, tmp_path: Path
) -> None:
    out = tmp_path / "m"
    first = tiny_cli("train", ["--data", model.corpus, "--labels", LABELS], out, epochs=1)
    assert invoke(*first).exit_code == 0
    fewer = ",".join(SYNTH_EMOTIONS[:3])
    other = tiny_cli("train", ["--data", model.corpus, "--labels", fewer], out, "--resume")
    result = invoke(*other)
    assert result.exit_code == 1 and "labels" in result.output and "Traceback" not in result.output
    wider = [a if a != "channels=[4,8,8,8]" else "channels=[4,8,8,16]" for a in first]
    result = invoke(*wider, "--resume")
    assert result.exit_code == 1 and "model parameters" in result.output
    assert json.loads((out / "checkpoint" / "run.json").read_text())["labels"] == list(
        SYNTH_EMOTIONS
    )
    # the same command resumes
    assert invoke(*first, "--resume").exit_code == 0


# -- predict: every format, nothing lost, nothing overwritten -------------------------------------


@pytest.fixture()
def clips(tmp_path: Path) -> list[Path]:
    return [write_tone(tmp_path / f"c{i}.wav", seconds=1.0, freq=200.0 + 50 * i) for i in range(3)]


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_every_format_on_stdout_and_in_output(
    fmt: str, model: SimpleNamespace, clips: list[Path], tmp_path: Path
) -> None:
    result = invoke("predict", "--model", model.path, *clips, "--format", fmt)
    assert result.exit_code == 0, result.output
    out = tmp_path / f"preds.{fmt}"
    written = invoke("predict", "--model", model.path, *clips, "--format", fmt, "--output", out)
    assert written.exit_code == 0, written.output
    for text in (result.stdout, out.read_text()):
        if fmt == "json":
            assert [Path(p["file"]).name for p in json.loads(text)] == [
                "c0.wav",
                "c1.wav",
                "c2.wav",
            ]
        elif fmt == "jsonl":
            rows = [json.loads(line) for line in text.splitlines()]
            assert [Path(r["file"]).name for r in rows] == ["c0.wav", "c1.wav", "c2.wav"]
        elif fmt == "csv":
            assert text.splitlines()[0].startswith("file,label,")
            assert len(text.splitlines()) == 4
        else:
            assert "emotion" in text and "c1.wav" in text
            with pytest.raises(json.JSONDecodeError):
                json.loads(text)


def test_output_never_overwrites_an_input_or_earlier_results(
    model: SimpleNamespace, clips: list[Path], tmp_path: Path
) -> None:
    before = clips[0].read_bytes()
    result = invoke("predict", "--model", model.path, *clips, "--output", clips[0])
    assert result.exit_code == 2 and "one of the inputs" in result.output
    result = invoke("predict", "--model", model.path, *clips, "--output", clips[0], "--overwrite")
    assert result.exit_code == 2 and clips[0].read_bytes() == before
    out = tmp_path / "p.jsonl"
    assert invoke("predict", "--model", model.path, *clips, "--output", out).exit_code == 0
    earlier = out.read_text()
    result = invoke("predict", "--model", model.path, clips[0], "--output", out)
    assert result.exit_code == 2 and "--resume" in result.output and out.read_text() == earlier
    result = invoke("predict", "--model", model.path, clips[0], "--output", out, "--overwrite")
    assert result.exit_code == 0 and len(out.read_text().splitlines()) == 1


def test_a_file_without_speech_keeps_its_line_in_segment_outputs(
    model: SimpleNamespace, tmp_path: Path
) -> None:
    import numpy as np
    import soundfile as sf

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000 * 3, dtype=np.float32), 16000)
    for ext in ("jsonl", "csv", "json"):
        out = tmp_path / f"seg.{ext}"
        result = invoke(
            "predict", "--model", model.path, silent, "--segments", "--vad", "energy",
            "--output", out,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        text = out.read_text()
        assert "silent.wav" in text and "no speech" in text, (ext, text)
    row = json.loads((tmp_path / "seg.jsonl").read_text().splitlines()[0])
    assert row["label"] is None and row["start"] is None and row["error"] is None


def test_an_empty_folder_says_so(model: SimpleNamespace, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("predict", "--model", model.path, empty)
    assert result.exit_code == 1
    assert "no audio files" in result.output and "Traceback" not in result.output


def test_csv_cells_are_never_spreadsheet_formulas(model: SimpleNamespace, tmp_path: Path) -> None:
    import csv

    from emovox.inference.batch import csv_plain, csv_text

    risky = write_tone(tmp_path / "=1+1.wav", seconds=1.0)
    out = tmp_path / "p.csv"
    result = invoke("predict", "--model", model.path, risky, "--output", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(out.open()))
    assert rows[1][0].endswith("=1+1.wav")  # a path: starts with the folder
    result = invoke("predict", "--model", model.path, "=1+1.wav", "--format", "csv")
    assert "'=1+1.wav" in result.stdout  # named as given: escaped
    for text in ("=SUM(A1)", "+1", "-1", "@x", "'quoted", "plain.wav"):
        assert csv_plain(csv_text(text)) == text
        assert not csv_text(text).startswith(("=", "+", "-", "@"))
    # resume reads escaped names back: nothing is scored twice
    (tmp_path / "sub").mkdir()
    import shutil

    shutil.copy(risky, tmp_path / "sub" / "=2.wav")
    out2 = tmp_path / "r.csv"
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path / "sub")
    try:
        assert invoke("predict", "--model", model.path, "=2.wav", "--output", out2).exit_code == 0
        again = invoke("predict", "--model", model.path, "=2.wav", "--output", out2, "--resume")
    finally:
        os.chdir(cwd)
    assert again.exit_code == 0 and "already there" in again.output
    assert len(out2.read_text().splitlines()) == 2


def test_the_table_follows_the_terminal_and_lists_errors_apart(
    model: SimpleNamespace, tmp_path: Path, monkeypatch
) -> None:
    deep = tmp_path / "a" / "very" / "long" / "folder" / "name" / "that" / "would" / "wrap"
    files = [write_tone(deep / f"clip_{i}.wav", seconds=1.0) for i in range(2)]
    bad = deep / "broken.wav"
    bad.write_bytes(b"RIFF not really audio at all")
    monkeypatch.setenv("COLUMNS", "160")
    result = invoke("predict", "--model", model.path, *files, bad)
    lines = result.stdout.splitlines()
    table = [line for line in lines if not line.startswith("broken.wav:")]
    assert max(len(line) for line in table) <= 160
    rows = [line for line in lines if "clip_0.wav" in line]
    assert len(rows) == 1 and str(deep) not in rows[0]  # relative to the common folder
    assert f"files in {deep}" in result.stdout.replace("\n", "")
    error_lines = [line for line in lines if line.startswith("broken.wav:")]
    assert len(error_lines) == 1 and "not" in error_lines[0]


# -- one vocabulary --------------------------------------------------------------------------


def test_one_vocabulary_across_commands() -> None:
    """``--model`` is what a command uses or trains, ``-o/--out`` what it writes; the older
    spellings (``--output``, a positional model folder for export) keep working."""
    import click

    commands = main.commands
    for name in ("predict", "live", "serve", "export"):
        opts = {o for p in commands[name].params for o in getattr(p, "opts", [])}
        assert "--model" in opts, name
    for name in ("train", "evaluate"):
        opts = {o for p in commands[name].params for o in p.opts}
        assert {"--arch", "--model", "-o", "--out"} <= opts, name
    for name in ("predict", "export", "plot", "demo"):
        opts = {o for p in commands[name].params for o in p.opts}
        assert {"-o", "--out"} <= opts, name
    assert "--output" in {o for p in commands["predict"].params for o in p.opts}
    ctx = click.Context(commands["predict"])
    assert "--out" in commands["predict"].get_help(ctx)


def test_export_takes_the_model_as_option_or_argument(model: SimpleNamespace, tmp_path) -> None:
    pytest.importorskip("onnxscript")
    out = tmp_path / "m.onnx"
    result = invoke("export", "--model", model.path, "-o", out)
    assert result.exit_code == 0 and out.is_file(), result.output
    assert "exporting" in result.output
    result = invoke("export", model.path, "--model", model.path, "-o", out)
    assert result.exit_code == 2 and "once" in result.output


def test_evaluate_resume_refuses_a_folder_of_another_run(
    model: SimpleNamespace, tmp_path: Path
) -> None:
    out = tmp_path / "ev"
    data = ["--data", model.corpus, "--labels", LABELS, "--protocol", "speakers-kfold:2"]
    first = tiny_cli("evaluate", data, out, "--folds", "1", epochs=1)
    assert invoke(*first).exit_code == 0
    fewer = [*data[:3], ",".join(SYNTH_EMOTIONS[:3]), *data[4:]]
    result = invoke(*tiny_cli("evaluate", fewer, out, "--folds", "1", "--resume", epochs=1))
    assert result.exit_code != 0 and "labels" in result.output, result.output
    assert "Traceback" not in result.output
    assert invoke(*first, "--resume").exit_code == 0  # the same run resumes


# -- speaker adaptation in batch outputs -------------------------------------------------------


@pytest.fixture(scope="module")
def norm_model(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("norm") / "model"
    args = tiny_cli(
        "train",
        ["--data", synth_corpus, "--labels", LABELS],
        out,
        "--train-param",
        "speaker_norm=true",
        epochs=1,
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return out


def test_speaker_adaptation_with_an_output_file(
    norm_model: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    from emovox.data.corpora import scan_corpus
    from emovox.inference.recognizer import Recognizer

    manifest = scan_corpus("ravdess", synth_corpus)
    manifest = manifest.filter(lambda u: u.speaker in manifest.speakers[:2])
    csv_path = tmp_path / "m.csv"
    manifest.save(csv_path)
    out = tmp_path / "adapted.jsonl"
    result = invoke(
        "predict", "--model", norm_model, "--manifest", csv_path, "--by-speaker", "-o", out,
        "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {r["file"]: r for r in map(json.loads, out.read_text().splitlines())}
    rec = Recognizer.load(norm_model)
    for speaker in manifest.speakers[:2]:
        files = [u.path for u in manifest if u.speaker == speaker]
        expected = rec.predict_batch(files, speaker_stats=rec.speaker_stats(files))
        for p in expected:
            for c in rec.labels:
                assert rows[p.file]["probabilities"][c] == pytest.approx(p.probabilities[c], 1e-5)
    # --one-speaker with an output file: the statistics of all the inputs together
    files = [u.path for u in manifest if u.speaker == manifest.speakers[0]]
    one = tmp_path / "one.csv"
    result = invoke("predict", "--model", norm_model, *files, "--one-speaker", "-o", one, "--quiet")
    assert result.exit_code == 0, result.output
    assert len(one.read_text().splitlines()) == len(files) + 1
    result = invoke("predict", "--model", norm_model, *files, "--by-speaker")
    assert result.exit_code == 2 and "--manifest" in result.output
