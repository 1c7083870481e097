"""A model that carries its pretrained encoder (``install_default_model(carry_encoder=True)``):
the encoder copied into ``encoder/<name>``, the feature's path made relative to the model's
folder, and the model then loaded from any copy of that folder, with the encoder gone from where
it was trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import synth_manifest
from tiny_whisper import make_tiny_whisper, train_on_tiny_whisper

from emovox import pretrained
from emovox.inference.bundle import CONFIG, ENCODER_DIR, BundleError, feature_config_in, load_bundle
from emovox.inference.recognizer import Recognizer
from emovox.pretrained import DEFAULT_MODEL_DIR, MODEL_CARD, install_default_model, model_size

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def whisper_bundle(synth_corpus: Path, tmp_path: Path) -> Path:
    """``encoder-lr`` trained on a tiny random Whisper encoder at ``tmp_path/encoders/tiny``."""
    encoder = make_tiny_whisper(tmp_path / "encoders" / "tiny")
    layers = ["--feature-param", "layers=1,2", "--feature-param", "combine=mean"]
    return train_on_tiny_whisper(synth_corpus, encoder, tmp_path / "trained", "encoder-lr", *layers)


def _model_folder(tmp_path: Path) -> Path:
    """A copy of the default model's folder (its card names result files) to install into."""
    folder = tmp_path / "shipped" / "default"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    return folder


def _sources(folder: Path) -> tuple[Path, Path]:
    text = (folder / MODEL_CARD).read_text()
    metrics = text.split("metrics=")[1].split()[0]
    gain = text.split(" gain=")[1].split()[0]
    return REPO / metrics, REPO / gain


def test_a_carried_encoder_travels_with_the_model(
    whisper_bundle: Path, synth_corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    folder = _model_folder(tmp_path)
    files = [u.path for u in synth_manifest(synth_corpus)][:4]
    before = Recognizer.load(whisper_bundle).predict_batch(files)
    install_default_model(
        whisper_bundle, *_sources(folder), root=REPO, model_dir=folder, carry_encoder=True
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["feature"]["path"] == f"{ENCODER_DIR}/tiny"
    trained = json.loads((whisper_bundle / "config.json").read_text())["feature"]
    assert config["feature"]["fingerprint"] == trained["fingerprint"]
    assert (folder / ENCODER_DIR / "tiny" / "model.safetensors").is_file()
    assert model_size(folder) > model_size(folder / ENCODER_DIR)  # counted in the model's size
    # the encoder it was trained on is gone, and the model's folder has moved: it still runs
    shutil.rmtree(tmp_path / "encoders")
    monkeypatch.delenv("EMOVOX_ENCODER_PATH", raising=False)
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(folder, moved)
    shutil.rmtree(folder)
    after = Recognizer.load(moved).predict_batch(files)
    assert [p.probabilities for p in after] == [p.probabilities for p in before]
    assert load_bundle(moved).feature.folder == (moved / ENCODER_DIR / "tiny").resolve()
    # `emovox models` does not ask the user's machine for an encoder the model carries
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", moved.parent)
    monkeypatch.setattr(pretrained, "SHIPPED_MODELS", {"model": "a model with its encoder"})
    (listed,) = pretrained.shipped_models()
    assert listed.ready and listed.needs is None and listed.size_bytes == model_size(moved)


def test_a_relative_path_not_inside_the_model_is_left_to_the_encoder_search(
    tmp_path: Path,
) -> None:
    feature = {"name": "encoder-pooled", "path": "encoder/whisper-base-l3", "fingerprint": "x"}
    assert feature_config_in(feature, tmp_path) == feature  # not carried: searched by its name
    (tmp_path / "encoder" / "whisper-base-l3").mkdir(parents=True)
    inside = feature_config_in(feature, tmp_path)["path"]
    assert inside == str((tmp_path / "encoder" / "whisper-base-l3").resolve())
    absolute = {**feature, "path": str(tmp_path / "a")}
    assert feature_config_in(absolute, tmp_path) == absolute


def test_carrying_needs_an_encoder_and_a_new_model_drops_the_old_ones(
    whisper_bundle: Path, trained_bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    folder = _model_folder(tmp_path)
    with pytest.raises(BundleError, match="reads no pretrained encoder"):
        install_default_model(trained_bundle, root=REPO, model_dir=folder, carry_encoder=True)
    install_default_model(
        whisper_bundle, *_sources(folder), root=REPO, model_dir=folder, carry_encoder=True
    )
    install_default_model(trained_bundle, root=REPO, model_dir=folder)  # a model without one
    assert not (folder / ENCODER_DIR).exists()
    two_files = sum((whisper_bundle / n).stat().st_size for n in ("model.safetensors", CONFIG))
    monkeypatch.setattr(pretrained, "MAX_MODEL_BYTES", two_files + 100)
    with pytest.raises(BundleError, match="over the"):  # the encoder counts towards the limit
        install_default_model(whisper_bundle, root=REPO, model_dir=folder, carry_encoder=True)
