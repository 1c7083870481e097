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
