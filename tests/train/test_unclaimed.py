"""A new training or evaluation never writes over an earlier run's results unasked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import synth_manifest, synth_scheme, tiny_cli, tiny_recipe

from emovox.train.checkpoint import check_unclaimed


def no_work(*args, **kwargs):
    """A stand-in for ``load_dataset``: a refused folder must fail before any data are loaded."""
    raise AssertionError("the data were loaded for a refused folder")


def test_check_unclaimed_names_the_folder_and_the_ways_on(tmp_path: Path) -> None:
    check_unclaimed(tmp_path / "absent", ("run.json",), resume=False, overwrite=False)
    check_unclaimed(tmp_path, ("run.json",), resume=False, overwrite=False)  # empty folder
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "run.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"holds an earlier run \(sub/run.json\)") as err:
        check_unclaimed(tmp_path, ("metrics.json", "sub/run.json"), resume=False, overwrite=False)
    assert str(tmp_path) in str(err.value)
    assert "--resume" in str(err.value) and "--overwrite" in str(err.value)
    check_unclaimed(tmp_path, ("sub/run.json",), resume=True, overwrite=False)
    check_unclaimed(tmp_path, ("sub/run.json",), resume=False, overwrite=True)


def test_train_refuses_a_bundle_folder_before_any_work(
    trained_bundle: Path, synth_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emovox.train.pipeline as pipeline

    monkeypatch.setattr(pipeline, "load_dataset", no_work)
    before = (trained_bundle / "config.json").read_bytes()
    with pytest.raises(FileExistsError, match=r"config\.json"):
        pipeline.train(synth_manifest(synth_corpus), synth_scheme(), tiny_recipe(), trained_bundle)
    assert (trained_bundle / "config.json").read_bytes() == before


def test_evaluate_refuses_an_earlier_run_and_overwrite_replaces_it(
    synth_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emovox.evaluate import runner

    out = tmp_path / "eval"
    out.mkdir()
    (out / "run.json").write_text('{"mine": true}')
    (out / "metrics.json").write_text('{"ua": 99.0}')

    with monkeypatch.context() as m:
        m.setattr(runner, "load_dataset", no_work)
        for call in (runner.evaluate, runner.evaluate_cross_corpus):
            args = (synth_manifest(synth_corpus), synth_scheme(), tiny_recipe(), out)
            if call is runner.evaluate_cross_corpus:
                args = (synth_manifest(synth_corpus), *args)
            with pytest.raises(FileExistsError, match=r"run\.json"):
                call(*args, progress=False)
    assert json.loads((out / "metrics.json").read_text()) == {"ua": 99.0}
    m = runner.evaluate(
        synth_manifest(synth_corpus),
        synth_scheme(),
        tiny_recipe(epochs=1),
        out,
        protocol="speakers-kfold",
        k=2,
        folds=[1],
        progress=False,
        overwrite=True,
    )
    assert json.loads((out / "metrics.json").read_text())["ua"] == pytest.approx(m.ua)


def test_cli_refuses_an_earlier_run_and_says_how_to_go_on(
    synth_corpus: Path, tmp_path: Path
) -> None:
    from emovox.apps.cli import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"ua": 99.0}')
    data = ["--data", synth_corpus, "--labels", "neutral,happy,sad,angry"]
    for command in ("evaluate", "train"):
        args = tiny_cli(command, data, out, epochs=1)
        if command == "train":
            (out / "config.json").write_text("{}")
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code != 0
        assert "holds an earlier run" in result.output and "--overwrite" in result.output
        assert "Traceback" not in result.output
    assert json.loads((out / "metrics.json").read_text()) == {"ua": 99.0}
    assert (out / "config.json").read_text() == "{}"


def test_train_on_several_processes_refuses_before_they_start(
    synth_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emovox.apps.cli import main
    from emovox.apps.cli import train as train_cli

    def no_launch(nproc: int) -> None:
        raise AssertionError("processes were started for a refused folder")

    monkeypatch.setattr(train_cli, "_launch", no_launch)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    out = tmp_path / "model"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "run.json").write_text("{}")
    data = ["--data", synth_corpus, "--labels", "neutral,happy,sad,angry"]
    result = CliRunner().invoke(main, [str(a) for a in tiny_cli("train", data, out, "--nproc", 2)])
    assert result.exit_code != 0
    assert "checkpoint/run.json" in result.output and "--resume" in result.output
