"""Ensembles of one architecture: members trained apart, probabilities averaged, one bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_CNN, synth_manifest, synth_scheme, tiny_config

from emovox.inference.bundle import load_bundle
from emovox.inference.recognizer import Recognizer
from emovox.models import MODELS, build_model
from emovox.models.cnn import CNN
from emovox.models.ensemble import Ensemble, ensemble_of
from emovox.train.pipeline import train
from emovox.train.recipe import Recipe

PARAMS = {"member_params": TINY_CNN}


def test_output_is_the_log_of_the_members_mean_probability() -> None:
    torch.manual_seed(0)
    model = build_model("cnn-x2", 4, (1, 64), **PARAMS).eval()
    x = torch.randn(3, 1, 64, 90)
    mask = torch.ones(3, 90, dtype=torch.bool)
    mask[1, 60:] = False
    with torch.no_grad():
        mean = torch.stack([m(x, mask).softmax(-1) for m in model.members]).mean(0)
        out = model(x, mask)
    assert torch.allclose(out.softmax(-1), mean, atol=1e-6)
    assert torch.allclose(out.exp().sum(-1), torch.ones(3), atol=1e-5)


def test_registered_ensemble_takes_its_members_recipe() -> None:
    cls = MODELS["cnn-x2"]
    assert issubclass(cls, Ensemble) and cls.member_cls is CNN
    assert cls.default_feature == CNN.default_feature
    assert cls.default_training == CNN.default_training
    three = ensemble_of(CNN, 3)
    assert three.name == "cnn-x3" and len(three(4, (1, 64), **PARAMS).members) == 3
    with pytest.raises(ValueError, match="n_members"):
        build_model("cnn-x2", 4, (1, 64), n_members=0)


@pytest.fixture(scope="module")
def ensemble_bundle(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ens") / "model"
    return train(
        synth_manifest(synth_corpus),
        synth_scheme(),
        Recipe.for_model("cnn-x2", training=tiny_config(epochs=2), params=PARAMS),
        out,
        progress=False,
    )


def test_members_are_trained_apart_and_the_bundle_round_trips(
    ensemble_bundle: Path, synth_corpus: Path
) -> None:
    bundle = load_bundle(ensemble_bundle)
    model = bundle.model
    assert isinstance(model, Ensemble) and len(model.members) == 2
    a, b = (dict(m.named_parameters()) for m in model.members)
    assert any(not torch.equal(a[k], b[k]) for k in a)  # own seeds, so own weights
    history = bundle.config["training_result"]
    assert history["epochs_run"] == 4  # two members of two epochs each
    rec = Recognizer.load(ensemble_bundle)
    files = sorted(synth_corpus.rglob("*.wav"))[:4]
    proba = rec.predict_proba([str(f) for f in files])
    feats = [rec.feature.extract(rec._read(str(f), None)) for f in files]
    with torch.no_grad():
        for p, f in zip(proba, feats, strict=True):
            x = torch.from_numpy(f)[None]
            mean = torch.stack([m(x).softmax(-1) for m in model.members]).mean(0)[0]
            assert np.allclose(p, mean.numpy(), atol=1e-5)


def test_ensemble_exports_to_onnx(ensemble_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from emovox.inference.onnx_backend import export_onnx

    path = export_onnx(ensemble_bundle, out=tmp_path / "ens.onnx")
    torch_rec = Recognizer.load(ensemble_bundle)
    onnx_rec = Recognizer.load(ensemble_bundle, backend="onnx", onnx_path=path)
    wave = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    assert np.allclose(
        torch_rec.predict_proba([wave], sr=16000), onnx_rec.predict_proba([wave], sr=16000),
        atol=1e-4,
    )
