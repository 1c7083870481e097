"""ONNX export and the onnxruntime backend: same probabilities as torch, dynamic axes, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import copy_bundle, tone, write_tone

from emovox.apps.cli import main
from emovox.inference.bundle import BundleError
from emovox.inference.recognizer import Recognizer

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from emovox.inference.onnx_backend import (
    ONNX_FILE,
    OnnxModel,
    OnnxUnavailable,
    export_onnx,
    read_metadata,
)

SR = 16000


@pytest.fixture(scope="module")
def exported(trained_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained bundle with ``model.onnx`` written by ``export_onnx``."""
    folder = copy_bundle(trained_bundle, tmp_path_factory.mktemp("onnx") / "model")
    path = export_onnx(folder)
    assert path == folder / ONNX_FILE
    return folder


def waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for i, seconds in enumerate((0.4, 0.75, 1.3, 2.0, 3.1, 0.75)):
        x = tone(seconds, SR, freq=180.0 + 70 * i) * np.hanning(round(seconds * SR))
        out.append((x + 0.01 * rng.standard_normal(x.size)).astype(np.float32))
    return out


def test_metadata_holds_labels_and_feature(exported: Path) -> None:
    meta = read_metadata(exported / ONNX_FILE)
    config = json.loads((exported / "config.json").read_text())
    assert json.loads(meta["labels"]) == config["labels"]
    assert json.loads(meta["feature"]) == config["feature"]
    assert int(meta["sample_rate"]) == config["sample_rate"]
    assert json.loads(meta["model"])["name"] == "cnn"


def test_onnx_probabilities_match_torch_for_many_lengths_and_a_batch(exported: Path) -> None:
    rec_t = Recognizer.load(exported)
    rec_o = Recognizer.load(exported, backend="onnx")
    assert rec_o.backend == "onnx" and rec_t.backend == "torch"
    ws = waves()
    # one at a time
    for w in ws:
        pt = rec_t.predict(w, sr=SR).probabilities
        po = rec_o.predict(w, sr=SR).probabilities
        assert np.allclose(list(pt.values()), list(po.values()), atol=1e-4)
    # a batch of different lengths (torch pads and masks; onnx groups equal lengths)
    bt = rec_t.predict_batch(ws, sr=SR)
    bo = rec_o.predict_batch(ws, sr=SR, batch_size=4)
    for a, b in zip(bt, bo, strict=True):
        assert a.label == b.label
        assert np.allclose(
            list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-4
        )


def test_time_and_batch_axes_are_dynamic(exported: Path) -> None:
    rec = Recognizer.load(exported)
    onnx_model = OnnxModel(exported / ONNX_FILE, bundle=rec.bundle)
    assert isinstance(onnx_model.input_shape[0], str)
    assert isinstance(onnx_model.input_shape[3], str)
    s, f = rec.model.in_shape
    rng = np.random.default_rng(1)
    for batch, frames in ((1, 17), (3, 64), (2, 401)):
        x = rng.standard_normal((batch, s, f, frames)).astype(np.float32)
        (proba,) = onnx_model.session.run(["probabilities"], {"features": x})
        with torch.no_grad():
            ref = torch.softmax(rec.model(torch.from_numpy(x)), dim=1).numpy()
        assert proba.shape == (batch, len(rec.labels))
        assert np.allclose(proba, ref, atol=1e-4)


def test_the_cnn_pools_with_onnx_maxpool_not_slices(exported: Path) -> None:
    import onnx

    ops = [node.op_type for node in onnx.load(str(exported / ONNX_FILE)).graph.node]
    assert ops.count("MaxPool") == 3  # one per pooling block of the cnn
    assert "Slice" not in ops  # torch's eval-time pooling (strided slices) is not exported


def test_masked_batches_are_run_in_equal_length_groups(exported: Path) -> None:
    rec = Recognizer.load(exported)
    onnx_model = OnnxModel(exported / ONNX_FILE, bundle=rec.bundle)
    s, f = rec.model.in_shape
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((s, f, t)).astype(np.float32) for t in (30, 90, 30, 57, 90, 30)]
    from emovox.inference.predict import predict_proba

    ref = predict_proba(rec.model, xs, batch_size=6)  # padded + masked in torch
    got = onnx_model.predict_proba(xs, batch_size=2)
    assert np.allclose(got, ref, atol=1e-4)


def test_missing_onnxruntime_is_a_clear_error(exported: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(OnnxUnavailable, match=r"onnxruntime.*emovox\[onnx\]"):
        Recognizer.load(exported, backend="onnx")


def test_an_onnx_file_of_another_model_is_refused(exported: Path, tmp_path: Path) -> None:
    other = copy_bundle(exported, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    config["labels"] = list(reversed(config["labels"]))
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="does not fit"):
        Recognizer.load(other, backend="onnx", onnx_path=exported / ONNX_FILE)
    with pytest.raises(BundleError, match=r"no such ONNX file.*emovox export"):
        Recognizer.load(other, backend="onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(BundleError, match=r"bad\.onnx: not a readable ONNX model"):
        Recognizer.load(exported, backend="onnx", onnx_path=bad)


def test_cli_export_and_predict_with_the_onnx_backend(trained_bundle: Path, tmp_path: Path) -> None:
    folder = copy_bundle(trained_bundle, tmp_path / "m")
    out = tmp_path / "exported" / "emo.onnx"
    r = CliRunner().invoke(main, ["export", str(folder), "--format", "onnx", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file() and not (folder / ONNX_FILE).exists()
    import soundfile as sf

    clip = tmp_path / "clip.wav"
    sf.write(clip, waves()[3], SR)
    results = {}
    for backend in ("torch", "onnx"):
        args = ["predict", "--model", str(folder), str(clip), "--format", "json"]
        if backend == "onnx":
            args += ["--backend", "onnx", "--onnx", str(out)]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        results[backend] = json.loads(r.output)[0]["probabilities"]
    assert np.allclose(list(results["torch"].values()), list(results["onnx"].values()), atol=1e-4)
    r = CliRunner().invoke(
        main, ["predict", "--model", str(folder), str(clip), "--backend", "onnx"]
    )
    assert r.exit_code != 0 and "emovox export" in r.output


def test_the_tutorial_model_exports_with_its_fixed_length(tmp_path: Path) -> None:
    from emovox.features import TutorialMFCC
    from emovox.inference.bundle import save_bundle
    from emovox.models import build_model

    torch.manual_seed(0)
    model = build_model("tutorial-cnn1d", 3, (1, 1)).eval()
    folder = save_bundle(tmp_path / "tut", model, TutorialMFCC(), ["angry", "happy", "sad"])
    export_onnx(folder)
    rec_t, rec_o = Recognizer.load(folder), Recognizer.load(folder, backend="onnx")
    ws = [tone(s, 44100, freq=300.0 + 50 * s) for s in (0.3, 1.0, 3.5)]
    for a, b in zip(
        rec_t.predict_batch(ws, sr=44100), rec_o.predict_batch(ws, sr=44100), strict=True
    ):
        assert np.allclose(
            list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-4
        )


def test_the_bundled_model_runs_on_onnx_without_writing_into_the_package(
    tmp_path: Path, monkeypatch, numpy_clip_path: Path
) -> None:
    import emovox.features.cache as cache_mod
    from emovox.pretrained import DEFAULT_MODEL_DIR

    monkeypatch.setattr(cache_mod, "DEFAULT_CACHE_DIR", tmp_path / "cache")
    before = sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir())
    rec = Recognizer.load(backend="onnx")
    assert rec.backend == "onnx"
    assert sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir()) == before
    (exported,) = (tmp_path / "cache" / "onnx").iterdir()
    torch_rec = Recognizer.load()
    a, b = rec.predict(numpy_clip_path), torch_rec.predict(numpy_clip_path)
    for c in rec.labels:
        assert a.probabilities[c] == pytest.approx(b.probabilities[c], abs=1e-4)
    stamp = exported.stat().st_mtime_ns
    Recognizer.load(backend="onnx")  # the second time reuses the export
    assert exported.stat().st_mtime_ns == stamp


@pytest.fixture()
def numpy_clip_path(tmp_path: Path) -> Path:
    return write_tone(tmp_path / "clip.wav", seconds=3.0)
