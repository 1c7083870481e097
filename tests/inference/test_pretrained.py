"""The bundled default model: found, loaded, used without --model, small, described truly."""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import SYNTH_EMOTIONS, require_espeak

from emovox import pretrained
from emovox.apps.cli import main
from emovox.data.corpora.ravdess import EMOTIONS
from emovox.data.synth import DEMO_SCRIPT, make_demo_clip
from emovox.inference.bundle import BundleError, load_bundle
from emovox.inference.recognizer import Recognizer
from emovox.pretrained import (
    DEFAULT_MODEL_DIR,
    MAX_MODEL_BYTES,
    MODEL_CARD,
    DefaultModelMissing,
    check_model_card,
    default_model_path,
    install_default_model,
    model_size,
    update_model_card,
)

REPO = Path(__file__).resolve().parents[2]
RAVDESS_EMOTIONS = list(EMOTIONS.values())
DEFAULT_EMOTIONS = ["neutral", "angry", "happy", "sad", "fearful", "disgust", "surprised"]


@pytest.fixture(scope="module")
def numpy_clip(tmp_path_factory: pytest.TempPathFactory):
    """The demo clip with the numpy voice (no espeak-ng needed)."""
    return make_demo_clip(tmp_path_factory.mktemp("clip") / "clip.wav", engine="numpy")


def _card_copy(tmp_path: Path) -> Path:
    """A copy of the bundled folder (weights, config, card) to change freely."""
    dst = tmp_path / "default"
    shutil.copytree(DEFAULT_MODEL_DIR, dst)
    return dst


# -- finding and loading --------------------------------------------------------------------------


def test_default_path_resolves_and_loads() -> None:
    path = default_model_path()
    assert path == DEFAULT_MODEL_DIR and path.is_dir()
    bundle = load_bundle(path)
    assert bundle.labels == DEFAULT_EMOTIONS
    assert bundle.config["model"]["name"] == "encoder-lr"
    corpora = {"ased", "baved", "emodb", "nemo", "ravdess", "tess"}  # BAVED: arousal only
    assert set(bundle.config["data"]["corpora"]) == corpora
    assert bundle.config["training"]["dimensions"]
    fast = load_bundle(pretrained.shipped_model_path("fast-7"))
    assert fast.labels == DEFAULT_EMOTIONS and fast.config["model"]["name"] == "cnn"
    assert set(fast.config["data"]["corpora"]) == corpora
    assert fast.config["training"]["corpus_balance"] and fast.config["training"]["dimensions"]


def test_recognizer_load_without_a_path_uses_the_default_model() -> None:
    rec = Recognizer.load()
    assert rec.bundle.path == DEFAULT_MODEL_DIR and rec.labels == DEFAULT_EMOTIONS
    rng = np.random.default_rng(0)
    pred = rec.predict(0.1 * rng.standard_normal(16000).astype(np.float32), sr=16000)
    assert pred.label in DEFAULT_EMOTIONS
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert -1 <= pred.arousal <= 1 and -1 <= pred.valence <= 1  # the dimensions head


def test_the_fast_model_ships_its_int8_export_of_these_weights(numpy_clip) -> None:
    pytest.importorskip("onnxruntime")
    from emovox.inference.onnx_backend import read_metadata, weights_digest

    folder = pretrained.shipped_model_path("fast-7")
    int8 = folder / pretrained.INT8_FILE
    assert read_metadata(int8)["weights_sha256"] == weights_digest(folder)
    rec_8 = Recognizer.load("fast-7", backend="onnx-int8")
    assert rec_8.onnx_model.quantization == "int8" and rec_8.labels == DEFAULT_EMOTIONS
    rec = Recognizer.load("fast-7")
    audio, sr = sf.read(str(numpy_clip.path), dtype="float32")
    sentences = [audio[round(s * sr) : round(e * sr)] for s, e, _, _ in numpy_clip.sentences]
    f = rec.predict_batch(sentences, sr=sr)
    q = rec_8.predict_batch(sentences, sr=sr)
    assert len(f) == len(DEMO_SCRIPT)
    for a, b in zip(f, q, strict=True):
        assert max(abs(a.probabilities[c] - b.probabilities[c]) for c in DEFAULT_EMOTIONS) < 0.1


def test_the_ravdess_8_model_ships_under_its_name(tmp_path: Path, monkeypatch) -> None:
    rec = Recognizer.load("ravdess-8")
    assert rec.bundle.path == pretrained.PRETRAINED_DIR / "ravdess-8"
    assert rec.labels == RAVDESS_EMOTIONS and "calm" in rec.labels
    assert pretrained.resolve_model("default") == DEFAULT_MODEL_DIR
    assert pretrained.resolve_model(None) == DEFAULT_MODEL_DIR
    with pytest.raises(ValueError, match=r"ships with emovox.*ravdess-8"):
        pretrained.shipped_model_path("ravdess-9")
    monkeypatch.chdir(tmp_path)  # a folder of the same name wins over the shipped model
    (tmp_path / "ravdess-8").mkdir()
    assert pretrained.resolve_model("ravdess-8") == Path("ravdess-8")
    assert pretrained.resolve_model("elsewhere/model") == Path("elsewhere/model")


def test_the_default_model_carries_the_first_layers_of_whisper_base(
    tmp_path: Path, monkeypatch
) -> None:
    from emovox.features.encoder import encoder_fingerprint

    folder = DEFAULT_MODEL_DIR
    config = json.loads((folder / "config.json").read_text())
    feature = config["feature"]
    assert feature["name"] == "encoder-pooled" and feature["path"] == "encoder/whisper-base-l3"
    assert feature["layers"] == "1,2,3" and feature["denoise"] == "wiener"
    encoder = folder / "encoder" / "whisper-base-l3"
    assert encoder_fingerprint(encoder) == feature["fingerprint"]
    shrunk = json.loads((encoder / "config.json").read_text())
    assert shrunk["encoder_layers"] == 3 and not shrunk["final_layer_norm"]
    assert shrunk["shrunk_from"]["fingerprint"] == "54b006fb20089773"  # Whisper base, converted
    card = (folder / MODEL_CARD).read_text()
    assert feature["fingerprint"] in card and "emovox encoder shrink" in card and "MIT" in card
    # a copy without its encoder looks for it by name and fingerprint, and says what is missing
    moved = tmp_path / "default"
    shutil.copytree(folder, moved, ignore=shutil.ignore_patterns("encoder"))
    monkeypatch.setenv("EMOVOX_ENCODER_PATH", str(tmp_path / "encoders"))
    with pytest.raises(Exception, match=r"whisper-base-l3.*EMOVOX_ENCODER_PATH"):
        Recognizer.load(moved)
    clip = tmp_path / "x.wav"
    sf.write(clip, np.zeros(16000, dtype=np.float32), 16000)
    res = CliRunner().invoke(main, ["predict", str(clip), "--model", str(moved)])
    assert res.exit_code == 1 and "emovox encoder convert" in res.output
    assert "Traceback" not in res.output


def test_predict_cli_takes_a_shipped_model_by_name(numpy_clip) -> None:
    args = ["predict", str(numpy_clip.path), "--format", "json", "--model", "ravdess-8"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.stdout)[0]["probabilities"]) == set(RAVDESS_EMOTIONS)
    res = CliRunner().invoke(main, ["predict", str(numpy_clip.path), "--model", "ravdess-9"])
    assert res.exit_code != 0 and "ravdess-9" in res.output


def test_the_four_class_restriction_works_on_the_default_model(numpy_clip) -> None:
    args = ["predict", str(numpy_clip.path), "--format", "json"]
    res = CliRunner().invoke(main, [*args, "--labels", "angry,happy,neutral,sad"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert set(row["probabilities"]) == {"angry", "happy", "neutral", "sad"}
    assert row["label"] in row["probabilities"]
    assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_a_missing_default_model_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    gone = tmp_path / "default"
    gone.mkdir()
    (gone / "config.json").write_text("{}")
    monkeypatch.setattr(pretrained, "DEFAULT_MODEL_DIR", gone)
    with pytest.raises(DefaultModelMissing, match=r"model\.safetensors missing"):
        default_model_path()
    with pytest.raises(BundleError, match=str(gone)):
        Recognizer.load()
    clip = tmp_path / "a.wav"
    sf.write(clip, np.zeros(16000, dtype=np.float32), 16000)
    res = CliRunner().invoke(main, ["predict", str(clip)])
    assert res.exit_code == 1 and "bundled default model is incomplete" in res.output
    assert "--model DIR" in res.output


def test_bundled_folder_is_under_the_size_limit() -> None:
    assert MAX_MODEL_BYTES <= 20_000_000
    for name in pretrained.SHIPPED_MODELS:
        assert 0 < model_size(pretrained.shipped_model_path(name)) <= MAX_MODEL_BYTES


def test_package_data_ships_every_file_of_the_bundled_folder() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["emovox"]
    package = REPO / "src" / "emovox"
    files = [
        p.relative_to(package).as_posix()
        for name in pretrained.SHIPPED_MODELS
        for p in (pretrained.PRETRAINED_DIR / name).rglob("*")
        if p.is_file()
    ]
    for name in pretrained.SHIPPED_MODELS:
        want = {f"pretrained/{name}/{n}" for n in ("model.safetensors", "config.json")}
        assert want <= set(files)
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not unshipped, f"not in [tool.setuptools.package-data]: {unshipped}"


# -- the command line without --model -------------------------------------------------------------


def test_predict_cli_without_model(numpy_clip) -> None:
    res = CliRunner().invoke(main, ["predict", str(numpy_clip.path), "--format", "json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["label"] in DEFAULT_EMOTIONS and row["error"] is None
    assert set(row["probabilities"]) == set(DEFAULT_EMOTIONS)


def test_predict_cli_segments_find_the_demo_clip_sentences(numpy_clip, tmp_path: Path) -> None:
    png = tmp_path / "timeline.png"
    args = ["predict", str(numpy_clip.path), "--segments", "--vad", "energy"]
    res = CliRunner().invoke(main, [*args, "--format", "json", "--plot", str(png)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    segments = doc[0]["segments"]
    assert len(segments) == len(DEMO_SCRIPT)
    for seg, (start, end, _, _) in zip(segments, numpy_clip.sentences, strict=True):
        assert seg["start"] < end and seg["end"] > start  # each segment covers its sentence
    assert png.stat().st_size > 0 and f"wrote {png}" in res.stderr


def test_model_option_still_overrides_the_default(trained_bundle: Path, numpy_clip) -> None:
    args = ["predict", "--model", str(trained_bundle), str(numpy_clip.path), "--format", "json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.stdout)[0]["probabilities"]) == set(SYNTH_EMOTIONS)


def test_export_without_model_dir_writes_the_default_model(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    res = CliRunner().invoke(main, ["export", "--format", "onnx"])
    assert res.exit_code == 2 and "needs --out" in res.output
    out = tmp_path / "default.onnx"
    res = CliRunner().invoke(main, ["export", "--format", "onnx", "--out", str(out)])
    assert res.exit_code == 0, res.output
    onnx.checker.check_model(onnx.load(str(out)))
    wave = (0.1 * np.random.default_rng(1).standard_normal(24000)).astype(np.float32)
    p_torch = Recognizer.load().predict(wave, sr=16000).probabilities
    p_onnx = Recognizer.load(backend="onnx", onnx_path=out).predict(wave, sr=16000).probabilities
    assert p_onnx == pytest.approx(p_torch, abs=1e-4)
    assert not (DEFAULT_MODEL_DIR / "model.onnx").exists()


# -- the model card -------------------------------------------------------------------------------


def test_model_card_names_the_licence_and_matches_the_metrics_file() -> None:
    card = (DEFAULT_MODEL_DIR / MODEL_CARD).read_text()
    assert "CC BY-NC-SA 4.0" in card and "e0196391" in card and "Livingstone" in card
    assert check_model_card(REPO) == []
    assert check_model_card(REPO, pretrained.PRETRAINED_DIR / "ravdess-8") == []
    assert check_model_card(REPO, pretrained.PRETRAINED_DIR / "fast-7") == []
    assert "non-commercial research use only" in card and "--model fast-7" in card
    m_rel = card.split("<!-- sources: metrics=")[1].split()[0]
    metrics = json.loads((REPO / m_rel).read_text())
    for key in ("ua", "wa", "macro_f1"):
        assert f"{metrics[key]:.2f} ± {metrics[f'{key}_std']:.2f}" in card
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert " ".join(config["command"]) in card


def test_model_card_check_catches_drift_and_card_rerenders(tmp_path: Path) -> None:
    folder = _card_copy(tmp_path)
    card = folder / MODEL_CARD
    metrics = json.loads((REPO / "benchmarks/results/cnn/metrics.json").read_text())
    ua = f"{metrics['ua']:.2f} ± {metrics['ua_std']:.2f}"
    if ua in card.read_text():  # the card reports the cnn row: change one number by hand
        card.write_text(card.read_text().replace(ua, "99.99 ± 0.01"))
        assert any("differs" in p for p in check_model_card(REPO, folder))
        update_model_card(root=REPO, model_dir=folder)  # the sources the card names
        assert check_model_card(REPO, folder) == []
    config = json.loads((folder / "config.json").read_text())
    # a setting the bundle predates counts as its default: absent = consistency 0, the default
    assert "consistency" not in config["training"] or config["training"]["consistency"] == 0.0
    config["training"].pop("consistency", None)
    (folder / "config.json").write_text(json.dumps(config))
    assert not any("training settings" in p for p in check_model_card(REPO, folder))
    config["training"]["consistency"] = 1.0  # a real difference
    (folder / "config.json").write_text(json.dumps(config))
    problems = check_model_card(REPO, folder)
    assert any("training settings differ" in p and "consistency" in p for p in problems)
    config["training"].pop("consistency")
    config["training"]["crop_seconds"] = 9.0
    (folder / "config.json").write_text(json.dumps(config))
    problems = check_model_card(REPO, folder)
    assert any("training settings differ" in p and "crop_seconds" in p for p in problems)
    card.write_text("no licence, no block\n")
    problems = check_model_card(REPO, folder)
    assert any("CC BY-NC-SA" in p for p in problems) and any("block" in p for p in problems)


def test_install_copies_a_bundle_and_rerenders_the_card(trained_bundle: Path, tmp_path) -> None:
    folder = _card_copy(tmp_path)
    metrics = REPO / "benchmarks/results/cnn/metrics.json"
    gain = REPO / (folder / MODEL_CARD).read_text().split(" gain=")[1].split()[0]
    install_default_model(trained_bundle, metrics, gain, root=REPO, model_dir=folder)
    assert load_bundle(folder).labels == list(SYNTH_EMOTIONS)
    n_params = json.loads((trained_bundle / "config.json").read_text())["model"]["n_parameters"]
    assert f"{n_params:,} parameters" in (folder / MODEL_CARD).read_text()
    # the tiny test model is not the recipe that metrics.json evaluated: the check says so
    problems = check_model_card(REPO, folder)
    assert any("labels differ" in p for p in problems)
    assert any("model_params differ" in p for p in problems)


def test_install_refuses_broken_and_oversized_bundles(
    trained_bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    folder = _card_copy(tmp_path)
    before = (folder / "model.safetensors").read_bytes()
    with pytest.raises(BundleError, match="no such model folder"):
        install_default_model(tmp_path / "nope", model_dir=folder, root=REPO)
    monkeypatch.setattr(pretrained, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(BundleError, match="over the"):
        install_default_model(trained_bundle, model_dir=folder, root=REPO)
    assert (folder / "model.safetensors").read_bytes() == before


def _loco_metrics(command: list[str]) -> dict:
    """A leave-one-corpus-out ``metrics.json`` of two test corpora, with guarded adaptation,
    the dimensions and two test conditions."""

    def corpus(four: float, own: float, classes: int) -> dict:
        return {
            "ua": own,
            "four_classes": {"ua": four, "classes": ["angry", "happy", "neutral", "sad"]},
            "own_classes": {"ua": own, "classes": ["c"] * classes},
            "speaker_adapted_guarded": {"four_classes": {"ua": four + 5}},
            "dimensions": {
                "arousal": {"ua_sign": 70.0, "n_sign": 9},
                "valence": {"ua_sign": 55.5, "n_sign": 9},
            },
        }

    baved = {  # a corpus without classes: scored on arousal alone
        "n": 12,
        "dimensions_only": True,
        "dimensions": {
            "arousal": {"ua_sign": 81.0, "n_sign": 8},
            "valence": {"ua_sign": 0.0, "n_sign": 0},
        },
    }
    return {
        "protocol": "loco",
        "command": command,
        "per_test_corpus": {
            "baved": baved,
            "emodb": corpus(60.0, 50.0, 7),
            "ravdess": corpus(45.0, 40.0, 8),
        },
        "conditions": {
            "clean": {"ua_delta": 0.0, "clipped_files": 0},
            "white:10": {"ua_delta": -12.25, "agreement": 71.5, "clipped_files": 0},
            "gain:20": {"ua_delta": -3.0, "agreement": 93.0, "clipped_files": 40},
        },
    }


def test_a_multi_corpus_model_card_has_data_loco_and_robustness_tables(
    trained_bundle: Path, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    folder = _card_copy(tmp_path)
    old = pretrained._SOURCES.search((folder / MODEL_CARD).read_text())
    for rel in old.group(1, 2):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, root / rel)
    loco = root / "benchmarks/results/loco/metrics.json"
    loco.parent.mkdir(parents=True)
    loco.write_text(json.dumps(_loco_metrics(["emovox", "evaluate", "--protocol", "loco"])))
    bundle = tmp_path / "multi"
    shutil.copytree(trained_bundle, bundle)
    config = json.loads((bundle / "config.json").read_text())
    config["data"]["corpora"] = ["emodb", "ravdess"]
    config["data"]["per_corpus"] = {
        "emodb": {"utterances": 454, "speakers": 10},
        "ravdess": {"utterances": 1440, "speakers": 24},
    }
    (bundle / "config.json").write_text(json.dumps(config))
    install_default_model(
        bundle, root / old.group(1), root / old.group(2), root=root, model_dir=folder, loco=loco
    )
    card = (folder / MODEL_CARD).read_text()
    assert "| emodb | German | 454 | 10 | free for research use |" in card
    assert "| ravdess | English (North American) | 1440 | 24 | CC BY-NC-SA 4.0 |" in card
    assert "| emodb | 60.0 | 50.0 (7) | 65.0 | 70.0 | 55.5 |" in card
    assert "| baved | – | – (0) | – | 81.0 | – |" in card  # no valence target: no score
    assert "Mean 4-class UA over the left-out corpora: 52.5 %" in card
    assert "arousal low/high UA 73.7 % (chance 50 %)" in card  # BAVED's fold included
    assert "| white:10 | -12.2 | 71.5 | 0 |" in card and "| gain:20 | -3.0 | 93.0 | 40 |" in card
    assert f"loco={loco.relative_to(root).as_posix()}" in card
    problems = check_model_card(root, folder)
    assert not [p for p in problems if "does not name" in p or "differs from" in p]
    # a number that drifts in the LOCO file is caught; so is a licence left out of the card
    changed = _loco_metrics(["emovox", "evaluate"])
    changed["per_test_corpus"]["emodb"]["four_classes"]["ua"] = 61.0
    loco.write_text(json.dumps(changed))
    assert any("differs from" in p for p in check_model_card(root, folder))
    (folder / MODEL_CARD).write_text(card.replace("free for research use", "?"))
    assert any("free for research use" in p for p in check_model_card(root, folder))


# -- the demo clip --------------------------------------------------------------------------------


def test_numpy_demo_clip(numpy_clip) -> None:
    info = sf.info(str(numpy_clip.path))
    assert info.samplerate == 16000 and info.channels == 1
    assert 10 <= info.duration <= 25 and info.duration == pytest.approx(
        numpy_clip.duration, abs=1e-3
    )
    assert numpy_clip.engine == "numpy" and len(numpy_clip.sentences) == len(DEMO_SCRIPT)
    audio, sr = sf.read(str(numpy_clip.path))
    for (s0, e0, _, _), (s1, _, _, _) in zip(
        numpy_clip.sentences, numpy_clip.sentences[1:], strict=False
    ):
        assert s1 - e0 >= 0.9  # a pause between sentences ...
        pause = audio[round(e0 * sr) : round(s1 * sr)]
        speech = audio[round(s0 * sr) : round(e0 * sr)]
        assert np.sqrt(np.mean(pause**2)) < 0.01 * np.sqrt(np.mean(speech**2))  # ... and quiet


def test_espeak_demo_clip_via_the_cli(tmp_path: Path) -> None:
    require_espeak()
    out = tmp_path / "clip.wav"
    res = CliRunner().invoke(main, ["demo-clip", str(out), "--engine", "espeak"])
    assert res.exit_code == 0, res.output
    assert "voice: espeak-ng" in res.output and "5 sentences" in res.output
    assert 10 <= sf.info(str(out)).duration <= 25
    segments = Recognizer.load().predict_segments(out, vad="energy")
    assert len(segments) == len(DEMO_SCRIPT)


def test_demo_clip_errors(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="engine"):
        make_demo_clip(tmp_path / "a.wav", engine="festival")
    with pytest.raises(ValueError, match="pause"):
        make_demo_clip(tmp_path / "a.wav", engine="numpy", pause=-1)
    monkeypatch.setattr("emovox.data.synth.espeak_available", lambda: False)
    res = CliRunner().invoke(main, ["demo-clip", str(tmp_path / "a.wav"), "--engine", "espeak"])
    assert res.exit_code == 2 and "espeak-ng" in res.output
    res = CliRunner().invoke(main, ["demo-clip", str(tmp_path / "b.wav")])  # auto: falls back
    assert res.exit_code == 0 and "voice: numpy" in res.output


def test_models_lists_the_shipped_models_and_whether_each_can_run_here(
    tmp_path: Path, monkeypatch
) -> None:
    from tiny_whisper import make_tiny_whisper

    from emovox.features.encoder import encoder_fingerprint

    # the shipped folders, the default's encoder left behind (as a trimmed install would)
    for name in pretrained.SHIPPED_MODELS:
        shutil.copytree(
            pretrained.PRETRAINED_DIR / name,
            tmp_path / "shipped" / name,
            ignore=shutil.ignore_patterns("encoder"),
        )
    config_file = tmp_path / "shipped" / "default" / "config.json"
    config = json.loads(config_file.read_text())
    fingerprint = config["feature"]["fingerprint"]
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "shipped")
    monkeypatch.setattr(pretrained, "DEFAULT_MODEL_DIR", tmp_path / "shipped" / "default")
    encoders = tmp_path / "encoders"
    monkeypatch.setenv("EMOVOX_ENCODER_PATH", str(encoders))
    found = {m.name: m for m in pretrained.shipped_models()}
    assert list(found) == list(pretrained.SHIPPED_MODELS)
    assert found["fast-7"].ready and found["ravdess-8"].ready
    assert found["fast-7"].dimensions == ["arousal", "valence"] and not found["ravdess-8"].needs
    default = found["default"]
    assert not default.ready and fingerprint in default.needs and "whisper-base-l3" in default.needs
    assert "EMOVOX_ENCODER_PATH" in default.problem and "emovox encoder" in default.problem
    assert len(default.labels) == 7 and default.dimensions == ["arousal", "valence"]
    # an encoder of that name but other weights: found, and refused by its fingerprint
    make_tiny_whisper(encoders / "whisper-base-l3")
    assert "fingerprint" in pretrained.shipped_models()[0].problem
    # the model's own fingerprint there: ready, as loading it would find it
    config["feature"]["fingerprint"] = encoder_fingerprint(encoders / "whisper-base-l3")
    config_file.write_text(json.dumps(config))
    assert pretrained.shipped_models()[0].ready, pretrained.shipped_models()[0].problem
    res = CliRunner().invoke(main, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == list(pretrained.SHIPPED_MODELS)
    assert all(r["ready"] for r in rows)
    (encoders / "whisper-base-l3" / "config.json").unlink()
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0 and "default  [not ready]" in res.output
    assert "fast-7  [ready]" in res.output and "reads the encoder whisper-base-l3" in res.output
