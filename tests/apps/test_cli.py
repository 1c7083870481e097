"""Tests for the ``emovox`` command line (click's CliRunner, and the installed console script)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from conftest import SYNTH_EMOTIONS, copy_bundle, tiny_cli, write_tone

from emovox import __version__
from emovox.apps.cli import main
from emovox.data.manifest import Manifest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LABELS = ",".join(SYNTH_EMOTIONS)


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def train_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [*tiny_cli("train", ["--data", corpus, "--labels", LABELS], out), *extra]


def table_row(output: str, key: str) -> list[str]:
    """The cells of the table row whose first cell is ``key`` (rich's box characters dropped)."""
    for line in output.splitlines():
        cells = re.findall(r"[\w.()-]+", line)
        if cells and cells[0] == key:
            return cells
    raise AssertionError(f"no row {key!r} in:\n{output}")


@pytest.fixture(scope="module")
def cli_model(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A model trained with ``emovox train`` (read-only: copy it before changing it)."""
    out = tmp_path_factory.mktemp("cli") / "model"
    args = train_args(synth_corpus, out)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return SimpleNamespace(path=out, args=args, output=result.output)


@pytest.fixture(scope="module")
def good_files(synth_corpus: Path) -> list[str]:
    return [str(p) for p in sorted(synth_corpus.rglob("*.wav"))[:3]]


def predict_json(model: Path, *inputs, extra: tuple[str, ...] = ()):
    result = invoke("predict", *inputs, "--model", model, "--format", "json", *extra)
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


# -- basics ---------------------------------------------------------------------------------------


def test_console_script_help() -> None:
    exe = shutil.which("emovox") or str(Path(sys.executable).with_name("emovox"))
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    for command in ("data", "train", "evaluate", "predict", "plot", "demo"):
        assert command in proc.stdout


def test_version_and_help() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output
    result = invoke("predict", "-h")
    assert result.exit_code == 0
    assert "--format" in result.output


# -- data summary ---------------------------------------------------------------------------------


def test_data_summary_counts_and_warns_once(fake_ravdess, tmp_path: Path) -> None:
    saved = tmp_path / "manifest.csv"
    with pytest.warns(UserWarning) as record:
        result = invoke("data", "summary", fake_ravdess.root, "--save", saved)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "12 utterances, 2 speakers, 6.0 s" in out
    for label in ("neutral", "calm", "happy", "sad", "angry", "fearful"):
        assert table_row(out, label) == [label, "2", "16.7"]
    # per speaker: gender, total, then one count per label (alphabetical)
    assert table_row(out, "Actor_01") == ["Actor_01", "male", "6", *["1"] * 6]
    assert table_row(out, "Actor_02") == ["Actor_02", "female", "6", *["1"] * 6]
    assert table_row(out, "female") == ["female", "6", "50.0"]
    assert table_row(out, "male") == ["male", "6", "50.0"]
    bad_names = [w for w in record if "not RAVDESS names" in str(w.message)]
    assert len(bad_names) == 1
    message = str(bad_names[0].message)
    assert "foo.wav" in message
    assert "03-01-09-01-01-01-01.wav" in message
    assert len(Manifest.load(saved)) == 12


def test_data_summary_without_durations(fake_ravdess) -> None:
    with pytest.warns(UserWarning, match="not RAVDESS names"):
        result = invoke("data", "summary", fake_ravdess.root, "--no-duration")
    assert result.exit_code == 0, result.output
    assert "12 utterances, 2 speakers" in result.stdout
    assert " s (" not in result.stdout


def test_data_summary_of_a_missing_folder(tmp_path: Path) -> None:
    result = invoke("data", "summary", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "nowhere" in result.output


# -- train ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_writes_a_bundle_and_records_the_command(cli_model: SimpleNamespace) -> None:
    assert "saved" in cli_model.output
    cfg = json.loads((cli_model.path / "config.json").read_text())
    assert cfg["command"] == ["emovox", *cli_model.args]
    assert cfg["labels"] == list(SYNTH_EMOTIONS)
    assert cfg["model"]["params"]["channels"] == [4, 8, 8, 8]
    assert cfg["training"]["epochs"] == 2
    assert cfg["training"]["batch_size"] == 8
    assert cfg["training_result"]["epochs_run"] == 2
    assert (cli_model.path / "training_curves.png").is_file()


@pytest.mark.slow
def test_train_resume_after_a_finished_run(cli_model: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "model"
    shutil.copytree(cli_model.path, out)
    before = (out / "model.safetensors").read_bytes()
    result = invoke(*train_args(Path(cli_model.args[2]), out, "--resume"))
    assert result.exit_code == 0, result.output
    assert "saved" in result.output
    assert (out / "model.safetensors").read_bytes() == before
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training_result"]["epochs_run"] == 2


@pytest.mark.parametrize(
    "extra",
    [
        ("--labels", "neutral,bogus"),
        ("--labels", "happy"),
        ("--model", "no-such-model"),
        ("--train-param", "optimizer=sgd"),
        ("--feature-param", "normalize=loud"),
        ("--param", "nokeyvalue"),
    ],
)
def test_bad_training_options_are_usage_errors(
    extra: tuple[str, str], synth_corpus: Path, tmp_path: Path
) -> None:
    args = train_args(synth_corpus, tmp_path / "model")
    args += list(extra)  # the last value of an option wins
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Error" in result.output
    assert not (tmp_path / "model").exists()


def test_an_option_given_twice_is_a_usage_error(synth_corpus: Path, tmp_path: Path) -> None:
    result = invoke(*train_args(synth_corpus, tmp_path / "m"), "--train-param", "epochs=1")
    assert result.exit_code == 2, result.output
    assert "epochs given both" in result.output
    assert not (tmp_path / "m").exists()


def test_training_settings_only_as_train_params(synth_corpus: Path, tmp_path: Path) -> None:
    from emovox.apps.cli.options import TrainingSetup
    from emovox.data.corpora import scan_corpus

    manifest = scan_corpus("ravdess", synth_corpus)
    options = {
        "labels": LABELS,
        "model_name": "cnn",
        "params": (),
        "feature_params": (),
        "train_params": ("epochs=3", "seed=7", "val_fraction=0"),
        "cache_dir": None,
        "no_cache": True,
        "quiet": True,
    }
    setup = TrainingSetup.from_options(options, manifest)
    config = setup.recipe.training
    assert (config.epochs, config.seed, config.val_fraction) == (3, 7, 0.0)
    assert setup.recipe.model == "cnn" and setup.cache is None and not setup.progress


def test_bad_labels_name_the_offender(synth_corpus: Path, tmp_path: Path) -> None:
    result = invoke(*train_args(synth_corpus, tmp_path / "m"), "--labels", "neutral,bogus")
    assert result.exit_code == 2
    assert "bogus" in result.output


# -- predict --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_predict_json_csv_and_table(cli_model: SimpleNamespace, good_files: list[str]) -> None:
    result, preds = predict_json(cli_model.path, *good_files)
    assert result.exit_code == 0, result.output
    assert [p["file"] for p in preds] == good_files
    for p in preds:
        assert p["error"] is None
        assert p["label"] in SYNTH_EMOTIONS
        assert list(p["probabilities"]) == list(SYNTH_EMOTIONS)
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    result = invoke("predict", *good_files, "--model", cli_model.path, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["file", "label", *SYNTH_EMOTIONS, "basis", "error"]
    assert [r[0] for r in rows[1:]] == good_files
    assert [r[1] for r in rows[1:]] == [p["label"] for p in preds]
    for r, p in zip(rows[1:], preds, strict=True):
        for c, v in zip(SYNTH_EMOTIONS, r[2:6], strict=True):
            assert float(v) == pytest.approx(p["probabilities"][c], abs=1e-5)

    result = invoke("predict", *good_files, "--model", cli_model.path)  # table is the default
    assert result.exit_code == 0, result.output
    assert "emotion" in result.stdout
    for c in SYNTH_EMOTIONS:
        assert c in result.stdout
    assert Path(good_files[0]).name[:10] in result.stdout.replace("\n", "")


@pytest.mark.slow
def test_predict_searches_folders_recursively(
    cli_model: SimpleNamespace, synth_corpus: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "in"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "notes.txt").write_text("not audio, and not picked up from a folder\n")
    files = sorted(synth_corpus.rglob("*.wav"))
    shutil.copy(files[0], tree / "top.wav")
    shutil.copy(files[1], tree / "a" / "mid.wav")
    shutil.copy(files[2], tree / "a" / "b" / "deep.wav")
    result, preds = predict_json(cli_model.path, tree)
    assert result.exit_code == 0, result.output
    assert sorted(Path(p["file"]).name for p in preds) == ["deep.wav", "mid.wav", "top.wav"]
    assert all(p["error"] is None for p in preds)


@pytest.mark.slow
def test_predict_reports_bad_inputs_and_goes_on(
    cli_model: SimpleNamespace, good_files: list[str], tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    missing = tmp_path / "missing.wav"
    result, preds = predict_json(cli_model.path, good_files[0], missing, text, good_files[1])
    assert result.exit_code == 0, result.output
    by_source = {p["file"]: p for p in preds}
    assert len(preds) == 4
    assert by_source[good_files[0]]["label"] in SYNTH_EMOTIONS
    assert by_source[good_files[1]]["label"] in SYNTH_EMOTIONS
    assert by_source[str(missing)]["error"]
    assert by_source[str(missing)]["label"] is None
    assert "not a readable audio file" in by_source[str(text)]["error"]
    assert "2 of 4 input(s) could not be read" in result.stderr

    result = invoke(
        "predict", good_files[0], missing, text, "--model", cli_model.path, "--format", "csv"
    )
    rows = list(csv.reader(io.StringIO(result.stdout)))
    errors = {r[0]: r[-1] for r in rows[1:]}
    assert errors[good_files[0]] == ""
    assert errors[str(missing)] and errors[str(text)]


@pytest.mark.slow
def test_predict_fails_when_nothing_could_be_read(
    cli_model: SimpleNamespace, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    result, preds = predict_json(cli_model.path, text, tmp_path / "missing.wav")
    assert result.exit_code == 1
    assert len(preds) == 2
    assert all(p["error"] for p in preds)
    assert "2 of 2" in result.stderr
    (tmp_path / "empty").mkdir()
    result = invoke("predict", tmp_path / "empty", "--model", cli_model.path)
    assert result.exit_code == 1


@pytest.mark.slow
def test_predict_with_a_label_subset(cli_model: SimpleNamespace, good_files: list[str]) -> None:
    result = invoke(
        "predict",
        *good_files,
        "--model",
        cli_model.path,
        "--format",
        "csv",
        "--labels",
        "sad,happy",
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["file", "label", "sad", "happy", "basis", "error"]
    for r in rows[1:]:
        assert r[1] in ("sad", "happy")
        assert float(r[2]) + float(r[3]) == pytest.approx(1.0, abs=1e-5)
    result = invoke("predict", *good_files, "--model", cli_model.path, "--labels", "sad,bored")
    assert result.exit_code == 1
    assert "bored" in result.output


def test_the_declip_option_offers_the_features_methods_and_the_cli_starts_without_torch() -> None:
    from emovox.apps.cli.options import DECLIP_METHODS, DENOISE_METHODS
    from emovox.features import declip, denoise

    assert DECLIP_METHODS == declip.METHODS and DENOISE_METHODS == denoise.METHODS
    code = "import sys, emovox.apps.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_predict_declip_keeps_clean_files_and_refuses_what_it_cannot_do(
    cli_model: SimpleNamespace, good_files: list[str]
) -> None:
    _, plain = predict_json(cli_model.path, *good_files)
    result, fixed = predict_json(cli_model.path, *good_files, extra=("--declip", "sparse"))
    assert result.exit_code == 0, result.output
    assert fixed == plain  # none of them clips
    result = invoke("predict", *good_files, "--model", cli_model.path, "--declip", "cubic")
    assert result.exit_code == 2 and "cubic" in result.output
    result = invoke(
        "predict", *good_files, "--declip", "sparse", "--engine", "ray", "-o", "x.jsonl"
    )
    assert result.exit_code == 2 and "--declip and --denoise do not go" in result.output


@pytest.mark.slow
def test_predict_denoise_filters_noisy_files_and_refuses_what_it_cannot_do(
    cli_model: SimpleNamespace, good_files: list[str], tmp_path: Path
) -> None:
    import numpy as np
    import soundfile as sf

    from emovox.audio import SAMPLE_RATE, load_audio

    noisy = []
    for i, f in enumerate(good_files):
        wave = load_audio(f)
        noise = np.random.default_rng(i).normal(0, 0.3 * np.std(wave), len(wave))
        noisy.append(str(tmp_path / f"noisy_{i}.wav"))
        sf.write(noisy[-1], (wave + noise).astype(np.float32), SAMPLE_RATE)
    result, plain = predict_json(cli_model.path, *noisy)
    assert result.exit_code == 0, result.output
    result, filtered = predict_json(cli_model.path, *noisy, extra=("--denoise", "wiener"))
    assert result.exit_code == 0, result.output
    assert len(filtered) == len(plain) == len(noisy) and filtered != plain
    result = invoke("predict", *noisy, "--model", cli_model.path, "--denoise", "spectral")
    assert result.exit_code == 2 and "spectral" in result.output
    result = invoke(
        "predict", *noisy, "--denoise", "wiener", "--engine", "ray", "-o", "x.jsonl"
    )
    assert result.exit_code == 2 and "--declip and --denoise do not go" in result.output


@pytest.mark.slow
def test_predict_with_a_corrupt_model(
    cli_model: SimpleNamespace, good_files: list[str], tmp_path: Path
) -> None:
    model = copy_bundle(cli_model.path, tmp_path / "model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    result = invoke("predict", good_files[0], "--model", model)
    assert result.exit_code != 0
    assert str(weights) in result.output
    assert "Traceback" not in result.output

    result = invoke("predict", good_files[0], "--model", tmp_path / "nowhere")
    assert result.exit_code != 0
    assert str(tmp_path / "nowhere") in result.output


# -- evaluate -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_one_fold(synth_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    cache = tmp_path / "cache"
    args = tiny_cli(
        "evaluate",
        ["--data", synth_corpus, "--labels", LABELS],
        out,
        *("--protocol", "speakers-kfold:2", "--folds", "1"),
        cache=cache,
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "speakers-kfold-2" in result.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["command"] == ["emovox", *args]
    assert m["protocol"] == "speakers-kfold-2"
    assert [f["fold"] for f in m["folds"]] == [1]
    assert m["n_test_predictions"] == 16
    assert (out / "report.md").is_file()
    assert list(cache.rglob("*.npy"))  # the feature cache went where it was told

    bad = list(args)
    bad[bad.index("--folds") + 1] = "7"
    bad[bad.index("--out") + 1] = str(tmp_path / "bad")
    result = invoke(*bad)
    assert result.exit_code == 2
    assert "do not exist" in result.output


# -- plot -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["waveform", "spectrogram", "mfcc"])
def test_plot_writes_a_png(kind: str, tmp_path: Path) -> None:
    audio = write_tone(tmp_path / "tone.wav", seconds=1.0, sr=22050)
    out = tmp_path / f"{kind}.png"
    result = invoke("plot", kind, audio, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_plot_refuses_a_non_audio_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n")
    result = invoke("plot", "waveform", text, "-o", tmp_path / "x.png")
    assert result.exit_code == 1
    assert str(text) in result.output
    assert not (tmp_path / "x.png").exists()
    result = invoke("plot", "histogram", text, "-o", tmp_path / "x.png")
    assert result.exit_code == 2
