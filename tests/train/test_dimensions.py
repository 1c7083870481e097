"""Arousal and valence: the circumplex targets, the head trained with the emotions, and the two
scores carried by every prediction (Python API, batch outputs, segments, ONNX, server, live,
timeline plot)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import TOY_TRAINING, copy_bundle, tiny_cnn, toy_data, train_tiny

from emovox.data.manifest import Utterance
from emovox.data.taxonomy import AROUSAL, AROUSAL_LEVEL_SCORE, CIRCUMPLEX, DIMENSIONS
from emovox.inference.batch import render_predictions, render_segments
from emovox.inference.bundle import BundleError, load_bundle
from emovox.inference.recognizer import Prediction, Recognizer, segments_prediction
from emovox.train.aux import dimension_targets, known_mse
from emovox.train.config import TrainConfig
from emovox.train.trainer import Trainer

SR = 16000


# -- the table and the targets ------------------------------------------------------------------


def test_the_circumplex_table_agrees_with_the_arousal_levels() -> None:
    for emotion, (arousal, valence) in CIRCUMPLEX.items():
        assert -1 <= arousal <= 1 and -1 <= valence <= 1
        level = AROUSAL[emotion]
        assert {"high": arousal >= 0.5, "normal": abs(arousal) <= 0.2, "low": arousal <= -0.5}[
            level
        ], emotion
    assert CIRCUMPLEX["angry"][1] < 0 < CIRCUMPLEX["happy"][1]  # unpleasant vs pleasant
    # a level's score is the mean arousal of the table's emotions at that level
    for level, score in AROUSAL_LEVEL_SCORE.items():
        places = [CIRCUMPLEX[e][0] for e, lv in AROUSAL.items() if lv == level]
        assert score == pytest.approx(np.mean(places), abs=0.05)


def test_dimension_targets_from_emotions_and_from_arousal_levels() -> None:
    rows = [
        Utterance("a.wav", "angry", "s1", corpus="emodb"),
        Utterance("b.wav", "calm", "s2", corpus="ravdess"),  # before calm=neutral merges it
        Utterance("c.wav", "", "s3", corpus="baved", fields={"arousal": "high"}),
        Utterance("d.wav", "other", "s4", corpus="x"),
    ]
    t = dimension_targets(rows)
    assert t.shape == (4, len(DIMENSIONS)) and t.dtype == np.float32
    assert tuple(t[0]) == pytest.approx(CIRCUMPLEX["angry"])
    assert tuple(t[1]) == pytest.approx(CIRCUMPLEX["calm"])
    assert t[2, 0] == pytest.approx(AROUSAL_LEVEL_SCORE["high"]) and math.isnan(t[2, 1])
    assert np.isnan(t[3]).all()


def test_known_mse_ignores_unknown_targets() -> None:
    pred = torch.tensor([[0.5, 0.0], [0.0, 1.0]])
    target = torch.tensor([[1.0, float("nan")], [float("nan"), float("nan")]])
    assert float(known_mse(pred, target)) == pytest.approx(0.25)
    assert float(known_mse(pred, torch.full_like(pred, float("nan")))) == 0.0


def test_train_config_checks_dimensions() -> None:
    assert TrainConfig(dimensions=True).to_dict()["dimensions"] is True
    with pytest.raises(ValueError, match="dimensions must be true or false"):
        TrainConfig(dimensions="yes")
    with pytest.raises(ValueError, match="dimensions_weight"):
        TrainConfig(dimensions_weight=-1)


# -- the head ------------------------------------------------------------------------------------


def test_the_head_learns_arousal_with_the_emotions() -> None:
    xs, ys = toy_data(n_per_class=24, seed=1)
    model = tiny_cnn(seed=0)
    model.attach_dimensions(seed=0)
    targets = np.where(ys[:, None] == 1, [[0.8, -0.6]], [[-0.5, np.nan]]).astype(np.float32)
    config = TrainConfig(**{**TOY_TRAINING, "epochs": 25})
    result = Trainer(model, config, hop_seconds=0.01, progress=False).fit(
        xs, ys, dims_y=targets
    )
    assert "dims_loss" in result.history[-1]
    assert result.history[-1]["dims_loss"] < result.history[0]["dims_loss"]
    from emovox.inference.predict import predict_scores

    scores = predict_scores(model, xs)
    assert scores.shape == (len(xs), 2 + 2)
    np.testing.assert_allclose(scores[:, :2].sum(1), 1.0, rtol=1e-5)
    arousal = scores[:, 2]
    assert np.all(np.abs(scores[:, 2:]) <= 1)
    assert arousal[ys == 1].mean() > arousal[ys == 0].mean() + 0.5
    assert scores[ys == 1, 3].mean() < 0  # valence learnt where known


def test_the_trainer_needs_dimension_targets_of_the_right_shape() -> None:
    xs, ys = toy_data(n_per_class=4)
    model = tiny_cnn()
    model.attach_dimensions()
    trainer = Trainer(model, TrainConfig(**{**TOY_TRAINING, "epochs": 1}), 0.01, progress=False)
    with pytest.raises(ValueError, match="no dims_y"):
        trainer.fit(xs, ys)
    with pytest.raises(ValueError, match="shape"):
        trainer.fit(xs, ys, dims_y=np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        trainer.fit(xs, ys, dims_y=np.full((len(xs), 2), 2.0, np.float32))


def test_a_model_without_an_embedding_cannot_have_the_head() -> None:
    from emovox.models import build_model

    svm = build_model("egemaps-svm", 2, (1, 88))
    with pytest.raises(ValueError, match="dimensions"):
        svm.attach_dimensions()


# -- a trained bundle and its predictions ---------------------------------------------------------


@pytest.fixture(scope="module")
def dims_bundle(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(synth_corpus, tmp_path_factory.mktemp("dims") / "model", dimensions=True)


def test_the_bundle_keeps_the_head_and_predictions_carry_both_scores(
    dims_bundle: Path, synth_corpus: Path, trained_bundle: Path
) -> None:
    config = json.loads((dims_bundle / "config.json").read_text())
    assert config["model"]["dimensions"] == list(DIMENSIONS)
    assert config["data"]["per_corpus"] == {"ravdess": {"utterances": 32, "speakers": 4}}
    assert config["training"]["dimensions"] is True
    rec = Recognizer.load(dims_bundle)
    assert rec.dimensions == ["arousal", "valence"]
    files = sorted(synth_corpus.rglob("*.wav"))[:4]
    preds = rec.predict_batch(files)
    for p in preds:
        assert -1 <= p.arousal <= 1 and -1 <= p.valence <= 1
        assert set(p.to_dict()) >= {"arousal", "valence"}
    # restricting the labels changes the probabilities only
    sub = Recognizer.load(dims_bundle, labels=["happy", "sad"]).predict(files[0])
    assert sub.arousal == pytest.approx(preds[0].arousal)
    # a model trained without the head says nothing of either
    plain = Recognizer.load(trained_bundle).predict(files[0])
    assert plain.arousal is None and plain.valence is None


def test_a_bundle_with_a_bad_dimensions_entry_is_refused(dims_bundle: Path, tmp_path: Path) -> None:
    folder = copy_bundle(dims_bundle, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["dimensions"] = ["loudness"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="dimensions"):
        load_bundle(folder)
    del config["model"]["dimensions"]  # the weights then hold a head the model lacks
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="do not fit"):
        load_bundle(folder)


def test_every_output_format_has_both_scores(dims_bundle: Path, synth_corpus: Path) -> None:
    rec = Recognizer.load(dims_bundle)
    files = sorted(synth_corpus.rglob("*.wav"))[:2]
    preds = [*rec.predict_batch(files), Prediction("bad.wav", None, {}, "unreadable")]
    buf = io.StringIO()
    render_predictions(preds, rec.labels, "csv", buf)
    header, first, *_, last = buf.getvalue().splitlines()
    cols = header.split(",")
    assert cols[-4:] == ["arousal", "valence", "basis", "error"]
    arousal = float(first.split(",")[cols.index("arousal")])
    assert arousal == pytest.approx(preds[0].arousal, abs=1e-6)
    assert last.split(",")[cols.index("arousal")] == ""
    buf = io.StringIO()
    render_predictions(preds, rec.labels, "jsonl", buf)
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert rows[0]["valence"] == pytest.approx(preds[0].valence) and rows[-1]["valence"] is None
    buf = io.StringIO()
    render_predictions(preds, rec.labels, "table", buf)
    assert "arousal" in buf.getvalue() and "valence" in buf.getvalue()


def long_recording(synth_corpus: Path, path: Path) -> Path:
    """Four synthetic utterances with a second of silence after each."""
    parts = []
    for f in sorted(synth_corpus.rglob("*.wav"))[:4]:
        x, sr = sf.read(str(f), dtype="float32")
        assert sr == SR
        parts += [x, np.zeros(SR, np.float32)]
    sf.write(str(path), np.concatenate(parts), SR)
    return path


def test_segments_and_long_recordings_carry_both_scores(
    dims_bundle: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    rec = Recognizer.load(dims_bundle)
    wav = long_recording(synth_corpus, tmp_path / "long.wav")
    segs = rec.predict_segments(wav, vad="energy")
    assert segs and all(-1 <= s["arousal"] <= 1 and -1 <= s["valence"] <= 1 for s in segs)
    whole = segments_prediction(str(wav), segs, rec.labels)
    w = np.array([s["end"] - s["start"] for s in segs])
    assert whole.arousal == pytest.approx(np.dot(w, [s["arousal"] for s in segs]) / w.sum())
    buf = io.StringIO()
    render_segments({str(wav): segs}, {}, rec.labels, "csv", buf)
    header = buf.getvalue().splitlines()[0].split(",")
    assert header[-4:] == ["arousal", "valence", "note", "error"]
    from emovox.plots import plot_timeline

    png = plot_timeline(segs, rec.labels, tmp_path / "tl.png")
    assert png.stat().st_size > 0
    import matplotlib.image

    with_dims = matplotlib.image.imread(str(png)).shape[0]
    plain = [{k: v for k, v in s.items() if k not in DIMENSIONS} for s in segs]
    without = matplotlib.image.imread(str(plot_timeline(plain, rec.labels, tmp_path / "p.png")))
    assert with_dims > without.shape[0]  # the third panel


def test_onnx_export_carries_the_dimensions(dims_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from emovox.inference.onnx_backend import export_onnx

    folder = copy_bundle(dims_bundle, tmp_path / "m")
    export_onnx(folder)
    rng = np.random.default_rng(0)
    waves = [rng.normal(0, 0.05, int(s * SR)).astype(np.float32) for s in (0.6, 1.1, 1.1)]
    torch_preds = Recognizer.load(folder).predict_batch(waves, sr=SR)
    onnx_preds = Recognizer.load(folder, backend="onnx").predict_batch(waves, sr=SR)
    for a, b in zip(torch_preds, onnx_preds, strict=True):
        assert a.arousal == pytest.approx(b.arousal, abs=1e-4)
        assert a.valence == pytest.approx(b.valence, abs=1e-4)


def test_the_server_and_live_mode_report_both_scores(dims_bundle: Path, synth_corpus: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emovox.apps.live import LiveSession, run_live
    from emovox.apps.server import create_app

    rec = Recognizer.load(dims_bundle)
    data = sorted(synth_corpus.rglob("*.wav"))[0].read_bytes()
    with TestClient(create_app(recognizer=rec, vad="energy")) as c:
        body = c.post("/v1/predict", files={"audio": ("a.wav", data, "audio/wav")}).json()
    assert -1 <= body["arousal"] <= 1 and -1 <= body["valence"] <= 1
    x, _ = sf.read(io.BytesIO(data), dtype="float32")
    audio = np.concatenate([np.zeros(SR // 2, np.float32), x, np.zeros(SR, np.float32)])
    blocks = [(audio[i : i + 1600], 0.0) for i in range(0, len(audio), 1600)]
    out = run_live(LiveSession(rec, vad="energy"), blocks)
    assert out["utterances"] and all(-1 <= u["arousal"] <= 1 for u in out["utterances"])


def test_concordance_and_dimension_metrics() -> None:
    from emovox.metrics import concordance, dimension_metrics

    t = np.array([-0.6, -0.5, 0.0, 0.6, 0.8])
    assert concordance(t, t) == pytest.approx(1.0)
    assert concordance(t - t.mean(), t.mean() - t) == pytest.approx(-1.0)
    assert concordance(t + 0.5, t) < 1.0  # a shifted prediction is not concordant
    m = dimension_metrics([-0.1, 0.2, 0.9, 0.5, -0.3], [-0.6, -0.5, 0.0, 0.6, float("nan")])
    assert m["n"] == 4 and m["n_sign"] == 3  # the NaN left out, the 0.0 target has no side
    assert m["ua_sign"] == pytest.approx(100 * (1 / 2 + 1) / 2)  # low: 1 of 2 right, high: 1 of 1


def test_evaluation_scores_the_dimensions(synth_corpus: Path, tmp_path: Path) -> None:
    import csv

    from conftest import run_cli, tiny_cli

    out = tmp_path / "eval"
    result = run_cli(
        tiny_cli(
            "evaluate",
            ["--data", synth_corpus, "--labels", "neutral,happy,sad,angry"],
            out,
            *("--protocol", "speakers-kfold", "--k", "2", "--train-param", "dimensions=true"),
            epochs=1,
        )
    )
    assert "arousal CCC" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for d in DIMENSIONS:
        assert set(metrics["dimensions"][d]) == {"n", "ccc", "mae", "n_sign", "ua_sign"}
        assert metrics["dimensions"][d]["n"] == metrics["n_test_predictions"]
    assert all("dimensions" in f for f in metrics["folds"])
    with (out / "fold_1" / "predictions.csv").open() as f:
        row = next(csv.DictReader(f))
    assert -1 <= float(row["arousal"]) <= 1
    assert float(row["arousal_target"]) == pytest.approx(CIRCUMPLEX[row["label"]][0])
