"""int8: the quantised ONNX export, its calibration, and prediction with ``--backend onnx-int8``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_bundle, run_cli

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from click.testing import CliRunner

from emovox.apps.cli import main
from emovox.inference.bundle import BundleError
from emovox.inference.onnx_backend import INT8_FILE, export_onnx, read_metadata
from emovox.inference.quantize import synthetic_calibration
from emovox.inference.recognizer import Recognizer


@pytest.fixture(scope="module")
def int8_bundle(trained_bundle: Path, synth_corpus: Path, tmp_path_factory) -> Path:
    folder = copy_bundle(trained_bundle, tmp_path_factory.mktemp("int8") / "model")
    files = sorted(str(f) for f in synth_corpus.rglob("*.wav"))[::2]
    export_onnx(folder)
    export_onnx(folder, quantize="int8", calibrate=files)
    return folder


def proba(preds, labels) -> np.ndarray:
    return np.array([[p.probabilities[c] for c in labels] for p in preds])


def test_the_int8_file_keeps_the_metadata_and_says_how_it_was_made(int8_bundle: Path) -> None:
    meta = read_metadata(int8_bundle / INT8_FILE)
    assert meta["quantization"] == "int8"
    assert json.loads(meta["calibration"])["of"].endswith("files given")
    labels = json.loads((int8_bundle / "config.json").read_text())["labels"]
    assert json.loads(meta["labels"]) == labels
    import onnx

    ops = {n.op_type for n in onnx.load(str(int8_bundle / INT8_FILE)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops


def test_int8_labels_agree_with_float(int8_bundle: Path, synth_corpus: Path) -> None:
    files = sorted(synth_corpus.rglob("*.wav"))  # half of them were not calibrated on
    float_rec = Recognizer.load(int8_bundle, backend="onnx")
    int8_rec = Recognizer.load(int8_bundle, backend="onnx-int8")
    assert (float_rec.backend, int8_rec.backend) == ("onnx", "onnx-int8")
    a = proba(float_rec.predict_batch(files), float_rec.labels)
    b = proba(int8_rec.predict_batch(files), int8_rec.labels)
    assert np.abs(a - b).max() < 0.05
    # where float is not torn between two classes, int8 gives the same label
    top2 = np.sort(a, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 0.02
    assert clear.sum() >= len(files) // 4
    assert (a.argmax(1) == b.argmax(1))[clear].mean() >= 0.95


def test_synthetic_calibration_without_files(trained_bundle: Path, tmp_path: Path) -> None:
    waves = synthetic_calibration(16000, n=8)
    assert len(waves) == 8 and all(w.dtype == np.float32 and np.abs(w).max() <= 1 for w in waves)
    levels = [float(np.abs(w).max()) for w in waves]
    assert max(levels) / min(levels) > 2  # several recording levels
    out = export_onnx(trained_bundle, tmp_path / "x.int8.onnx", quantize="int8")
    assert json.loads(read_metadata(out)["calibration"])["of"] == "synthetic speech"
    with pytest.raises(ValueError, match="int8"):
        export_onnx(trained_bundle, tmp_path / "y.onnx", quantize="int4")
    with pytest.raises(ValueError, match="could be read"):
        export_onnx(trained_bundle, tmp_path / "z.onnx", quantize="int8", calibrate=["nope.wav"])


def test_cli_export_int8_and_predict_with_it(
    trained_bundle: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    folder = copy_bundle(trained_bundle, tmp_path / "m")
    clip = str(next(synth_corpus.rglob("*.wav")))
    args = ["predict", "--model", str(folder), "--backend", "onnx-int8"]
    missing = CliRunner().invoke(main, [*args, clip])
    assert missing.exit_code != 0 and "--quantize int8" in missing.output
    refused = CliRunner().invoke(main, ["export", str(folder), "--calibrate", str(synth_corpus)])
    assert refused.exit_code == 2 and "--quantize" in refused.output
    calibrate = ["--calibrate", str(synth_corpus / "Actor_01")]
    run_cli(["export", str(folder), "--quantize", "int8", *calibrate])
    assert (folder / INT8_FILE).is_file()
    row = json.loads(run_cli([*args, "--format", "json", clip]).stdout)[0]
    assert row["label"] in json.loads((folder / "config.json").read_text())["labels"]
    with pytest.raises(BundleError):
        Recognizer.load(tmp_path / "nowhere", backend="onnx-int8")
