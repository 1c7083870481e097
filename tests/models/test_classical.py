"""Tests for the classical baselines: ``egemaps`` / ``librosa-stats`` and the SVM models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SYNTH_EMOTIONS, synth_manifest, synth_scheme
from sklearn.svm import SVC

from emovox.audio import AudioError
from emovox.features import FeatureCache, extract_files, make_feature
from emovox.inference.bundle import BundleError, load_bundle, save_bundle
from emovox.models import build_model
from emovox.models.svm import SVMModel, fit_temperature

SR = 16000


def harmonic(f0: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    """A voiced-like tone: ``f0`` and its first eight overtones, float32."""
    t = np.arange(round(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 10))
    return (amp * y).astype(np.float32)


def blobs(n: int, k: int, dim: int, seed: int = 0, shift: float = 1.5):
    """``n`` points in ``dim`` dimensions, ``k`` classes with shifted means (overlapping)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.standard_normal((k, dim)) * shift
    x = centres[y] + rng.standard_normal((n, dim)) + rng.uniform(-3, 3, dim)
    return x * rng.uniform(0.1, 10, dim), y


def as_items(x: np.ndarray) -> list[np.ndarray]:
    """``[N, D]`` vectors as the ``[1, D, 1]`` feature arrays a Dataset holds."""
    return [row.astype(np.float32)[None, :, None] for row in x]


def fitted_svc(x: np.ndarray, y: np.ndarray, **kwargs) -> tuple[SVC, np.ndarray, np.ndarray]:
    mean, scale = x.mean(0), x.std(0)
    svc = SVC(kernel="rbf", class_weight="balanced", **kwargs).fit((x - mean) / scale, y)
    return svc, mean, scale


# -- features -------------------------------------------------------------------------------------


def test_librosa_stats_equals_a_direct_librosa_computation() -> None:
    feature = make_feature("librosa-stats")
    sr = feature.sample_rate
    rng = np.random.default_rng(1)
    wave = harmonic(180.0, 0.8, sr) + 0.02 * rng.standard_normal(round(0.8 * sr)).astype(np.float32)
    (got,) = feature([wave])
    assert got.shape == (1, 180, 1) and got.dtype == np.float32
    # the classic recipe, written out independently
    stft = np.abs(librosa.stft(wave))
    mfccs = np.mean(librosa.feature.mfcc(y=wave, sr=sr, n_mfcc=40).T, axis=0)
    chroma = np.mean(librosa.feature.chroma_stft(S=stft, sr=sr).T, axis=0)
    mel = np.mean(librosa.feature.melspectrogram(y=wave, sr=sr).T, axis=0)
    expected = np.concatenate([mfccs, chroma, mel])
    np.testing.assert_allclose(got[0, :, 0], expected, rtol=1e-4, atol=1e-5)
    # the batched path gives the same vectors, whatever the other waveforms' lengths
    batched, _ = feature.compute(
        torch.from_numpy(np.stack([wave, np.pad(wave[: sr // 2], (0, len(wave) - sr // 2))])),
        torch.tensor([len(wave), sr // 2]),
    )
    assert batched.shape == (2, 1, 180, 1)
    np.testing.assert_allclose(batched[0].numpy(), got, rtol=1e-6)
    np.testing.assert_allclose(batched[1].numpy(), feature([wave[: sr // 2]])[0], rtol=1e-6)


def test_librosa_stats_dimensions_follow_the_parameters() -> None:
    feature = make_feature("librosa-stats", n_mfcc=13, n_mels=64, sample_rate=SR)
    assert feature.dim == 13 + 12 + 64
    assert feature([harmonic(200.0)])[0].shape == (1, 89, 1)
    with pytest.raises(ValueError, match="n_mfcc"):
        make_feature("librosa-stats", n_mfcc=0)


def test_egemaps_has_88_values_that_track_pitch_and_loudness() -> None:
    pytest.importorskip("opensmile")
    feature = make_feature("egemaps")
    low, high, quiet = feature([harmonic(220.0), harmonic(440.0), harmonic(220.0, amp=0.03)])
    assert low.shape == (1, 88, 1) and low.dtype == np.float32
    assert all(np.isfinite(a).all() for a in (low, high, quiet))
    names = feature.feature_names
    f0 = names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    # semitones above 27.5 Hz: 220 Hz is 3 octaves up (36), 440 Hz is 4 (48)
    assert low[0, f0, 0] == pytest.approx(36.0, abs=0.5)
    assert high[0, f0, 0] == pytest.approx(48.0, abs=0.5)
    loud = names.index("loudness_sma3_amean")
    assert quiet[0, loud, 0] < 0.5 * low[0, loud, 0]


def test_egemaps_without_opensmile_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from emovox.features.egemaps import OpenSmileUnavailable

    monkeypatch.setitem(sys.modules, "opensmile", None)  # makes `import opensmile` fail
    feature = make_feature("egemaps")
    with pytest.raises(OpenSmileUnavailable, match=r"pip install \"emovox\[classical\]\""):
        feature([harmonic(200.0)])


def test_utterance_features_round_trip_through_json() -> None:
    from emovox.features import feature_from_dict

    for name in ("egemaps", "librosa-stats"):
        feature = make_feature(name, min_seconds=0.3)
        config = json.loads(json.dumps(feature.to_dict()))
        assert feature_from_dict(config) == feature
        assert feature.fixed_length and feature.n_frames == 1 and feature.hop_seconds == 0.0


@pytest.mark.parametrize("name", ["egemaps", "librosa-stats"])
def test_too_short_audio_is_refused_naming_the_file(name: str, tmp_path: Path) -> None:
    if name == "egemaps":
        pytest.importorskip("opensmile")
    feature = make_feature(name, min_seconds=0.5)
    short = tmp_path / "short clip.wav"
    sf.write(short, harmonic(200.0, 0.3, SR), SR)
    good = tmp_path / "good.wav"
    sf.write(good, harmonic(200.0, 0.6, SR), SR)
    with pytest.raises(AudioError, match=r"short clip\.wav") as info:
        feature.load(short)
    assert "shorter than the minimum 0.5" in str(info.value)
    feats, errors = extract_files(feature, [short, good], progress=False)
    assert feats[0] is None and feats[1] is not None
    assert list(errors) == [str(short)] and "shorter" in errors[str(short)]
    with pytest.raises(ValueError, match=r"waveform 1 is 0\.300 s long"):
        feature(
            [harmonic(200.0, 0.6, feature.sample_rate), harmonic(200.0, 0.3, feature.sample_rate)]
        )


# -- the SVM in torch -----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [3, 5])
def test_torch_svm_equals_sklearn_multiclass(k: int) -> None:
    x, y = blobs(150, k, 12, seed=k)
    svc, mean, scale = fitted_svc(x, y, C=2.0, gamma="scale")
    model = build_model("librosa-stats-svm", k, (1, 12))
    model.set_svm(svc, mean, scale)
    x_test, _ = blobs(60, k, 12, seed=k + 10)
    z_test = (x_test - mean) / scale
    ours = model.decision_function(x_test)
    np.testing.assert_allclose(ours, svc.decision_function(z_test), atol=1e-9)
    tie_free = SVC(kernel="rbf", class_weight="balanced", C=2.0, gamma="scale", break_ties=True)
    tie_free.fit((x - mean) / scale, y)
    np.testing.assert_array_equal(ours.argmax(1), tie_free.predict(z_test))
    # forward: float32 features [B, 1, D, 1] -> the same scores (temperature 1)
    logits = model(torch.from_numpy(np.stack(as_items(x_test))))
    assert logits.dtype == torch.float32 and logits.shape == (60, k)
    np.testing.assert_allclose(logits.numpy(), ours, atol=1e-4)


def test_torch_svm_binary_and_absent_classes() -> None:
    x, y = blobs(80, 2, 6, seed=3)
    y = np.where(y == 1, 3, 1)  # the model has 4 classes; the training data only 1 and 3
    svc, mean, scale = fitted_svc(x, y, C=1.0, gamma=0.2)
    model = build_model("egemaps-svm", 4, (1, 6))
    model.set_svm(svc, mean, scale, temperature=0.5)
    x_test, _ = blobs(40, 2, 6, seed=4)
    z_test = (x_test - mean) / scale
    scores = model.decision_function(x_test)
    np.testing.assert_array_equal(scores.argmax(1), svc.predict(z_test))
    assert np.all(scores[:, [0, 2]] == -1.0)  # never predicted
    # the binary decision's sign and size: class 3's score minus class 1's grows with it
    margin = svc.decision_function(z_test)
    assert np.all(np.sign(scores[:, 3] - scores[:, 1]) == np.sign(margin))
    logits = model(torch.from_numpy(np.stack(as_items(x_test)))).double().numpy()
    np.testing.assert_allclose(logits, scores / 0.5, atol=1e-4)


def test_forward_averages_frames_under_the_mask() -> None:
    x, y = blobs(60, 3, 4, seed=5)
    svc, mean, scale = fitted_svc(x, y, C=1.0, gamma="scale")
    model = build_model("egemaps-svm", 3, (1, 4))
    model.set_svm(svc, mean, scale)
    frames = torch.randn(2, 1, 4, 7, dtype=torch.float64)
    mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
    got = model(frames, mask).double()
    expected = model.decision_function(
        np.stack([frames[0, 0].mean(-1).numpy(), frames[1, 0, :, :3].mean(-1).numpy()])
    )
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


def test_fit_closed_form_chooses_c_on_validation_then_refits_on_everything() -> None:
    x, y = blobs(120, 3, 8, seed=7, shift=0.8)
    x_val, y_val = blobs(60, 3, 8, seed=8, shift=0.8)
    model = build_model("librosa-stats-svm", 3, (1, 8), c_grid=[0.01, 1.0, 100.0])
    result = model.fit_closed_form((as_items(x), y), (as_items(x_val), y_val), progress=False)
    grid, final = result.history[:-1], result.history[-1]
    assert [r["C"] for r in grid] == [0.01, 1.0, 100.0] and final["refit"] == 1
    best = max(grid, key=lambda r: r["val_ua"])
    assert result.best_epoch == best["epoch"] and result.best_val_ua == best["val_ua"]
    assert [r["selected"] for r in grid] == [int(r is best) for r in grid]
    # each grid point's val UA is the UA of an SVC fitted on the training part only
    for row in grid:
        svc, mean, scale = fitted_svc(x, y, C=row["C"], gamma="scale", break_ties=True)
        pred = svc.predict((x_val - mean) / scale)
        ua = np.mean([np.mean(pred[y_val == c] == c) for c in range(3)])
        assert row["val_ua"] == pytest.approx(100 * ua)
    # the final machine: the chosen C refitted on training + validation data
    x_all, y_all = np.concatenate([x, x_val]), np.concatenate([y, y_val])
    svc, mean, scale = fitted_svc(x_all, y_all, C=best["C"], gamma="scale")
    probe, _ = blobs(30, 3, 8, seed=9)
    np.testing.assert_allclose(
        model.decision_function(probe), svc.decision_function((probe - mean) / scale), atol=1e-6
    )
    assert float(model.penalty) == best["C"] and final["n_support"] == len(svc.support_)
    assert float(model.temperature) == pytest.approx(final["temperature"])
    assert float(model.temperature) != 1.0


def test_fit_closed_form_without_validation_uses_the_defaults() -> None:
    x, y = blobs(60, 3, 5, seed=11)
    model = build_model("egemaps-svm", 3, (1, 5), c_grid=[0.1, 10.0])
    result = model.fit_closed_form((as_items(x), y), None, progress=False)
    assert result.best_val_ua is None and len(result.history) == 1
    assert float(model.penalty) == 1.0 and float(model.temperature) == 1.0
    with pytest.raises(ValueError, match="single class"):
        model.fit_closed_form((as_items(x), np.zeros(60, dtype=int)), progress=False)


def test_temperature_fit_lowers_the_log_loss() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    scores = rng.standard_normal((200, 4))
    scores[np.arange(200), y] += 1.0  # informative but overconfident at T = 1 after scaling
    scores *= 5

    def nll(t: float) -> float:
        z = scores / t
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(200), y]))

    t = fit_temperature(scores, y)
    assert t > 1.0 and nll(t) < nll(1.0)
    assert nll(t) <= min(nll(t * 1.2), nll(t / 1.2)) + 1e-9


def test_bad_hyperparameters_are_refused() -> None:
    for params in (
        {"c_grid": []},
        {"c_grid": [0]},
        {"gamma_grid": ["auto"]},
        {"class_weight": "x"},
    ):
        with pytest.raises(ValueError, match=r"bad parameters|must"):
            build_model("egemaps-svm", 3, (1, 4), **params)


# -- bundles and ONNX -----------------------------------------------------------------------------


def fitted_model(k: int = 4, dim: int = 10) -> SVMModel:
    x, y = blobs(100, k, dim, seed=21)
    model = build_model("librosa-stats-svm", k, (1, dim), c_grid=[1.0, 10.0])
    x_val, y_val = blobs(40, k, dim, seed=22)
    model.fit_closed_form((as_items(x), y), (as_items(x_val), y_val), progress=False)
    return model


def test_bundle_round_trip_gives_the_same_predictions(tmp_path: Path) -> None:
    model = fitted_model()
    feature = make_feature("librosa-stats", n_mfcc=1, n_chroma=1, n_mels=8)  # 10 values
    labels = ["a", "b", "c", "d"]
    save_bundle(tmp_path / "m", model, feature, labels)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["params"]["c_grid"] == [1.0, 10.0]
    bundle = load_bundle(tmp_path / "m")
    probe = torch.from_numpy(np.stack(as_items(blobs(25, 4, 10, seed=23)[0])))
    with torch.no_grad():
        np.testing.assert_array_equal(bundle.model(probe).numpy(), model(probe).numpy())
    assert bundle.model.support.shape == model.support.shape
    assert bundle.model.n_parameters == model.n_parameters > 0


def test_inconsistent_svm_weights_raise_a_bundle_error(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = fitted_model()
    feature = make_feature("librosa-stats", n_mfcc=1, n_chroma=1, n_mels=8)
    path = save_bundle(tmp_path / "m", model, feature, ["a", "b", "c", "d"])
    state = load_file(str(path / "model.safetensors"))
    state["intercept"] = state["intercept"][:-1].clone()
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(BundleError, match=r"model\.safetensors: the weights do not fit"):
        load_bundle(path)
    fresh = build_model("librosa-stats-svm", 4, (1, 10))
    with pytest.raises(
        RuntimeError, match=r"inconsistent SVM buffers: pair_weights \(\d+, 6\) != \(\d+, 5\)"
    ):
        fresh.load_state_dict(state)


def test_onnx_export_matches_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from emovox.inference.onnx_backend import OnnxModel, export_onnx

    model = fitted_model()
    feature = make_feature("librosa-stats", n_mfcc=1, n_chroma=1, n_mels=8)
    path = save_bundle(tmp_path / "m", model, feature, ["a", "b", "c", "d"])
    onnx_file = export_onnx(path)  # verifies itself against torch on random inputs
    xs = as_items(blobs(9, 4, 10, seed=24)[0])
    got = OnnxModel(onnx_file, bundle=load_bundle(path)).predict_proba(xs)
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(np.stack(xs))), dim=1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)


# -- end to end -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["egemaps-svm", "librosa-stats-svm"])
def test_evaluate_and_recognize_end_to_end(
    model_name: str, synth_corpus: Path, tmp_path: Path
) -> None:
    if model_name == "egemaps-svm":
        pytest.importorskip("opensmile")
    from emovox.evaluate.runner import evaluate
    from emovox.inference.recognizer import Recognizer
    from emovox.train.pipeline import train

    manifest, scheme = synth_manifest(synth_corpus), synth_scheme()
    cache = FeatureCache(tmp_path / "cache")  # features are extracted once for both runs
    metrics = evaluate(
        manifest,
        scheme,
        model_name,
        tmp_path / "eval",
        protocol="speakers-kfold",
        k=2,
        cache=cache,
        progress=False,
    )
    assert len(metrics["folds"]) == 2 and metrics["n_test_predictions"] == len(manifest)
    for fold in metrics["folds"]:
        assert fold["best_val_ua"] is not None and len(fold["validation_speakers"]) == 1
        assert fold["epochs_run"] == 5  # four values of C, then the refit
        assert not set(fold["validation_speakers"]) & set(fold["test_speakers"])
    assert metrics["ua"] > 100 / len(SYNTH_EMOTIONS)  # the synthetic emotions are learnable
    assert (tmp_path / "eval" / "report.md").is_file()

    out = train(manifest, scheme, model_name, tmp_path / "model", cache=cache, progress=False)
    config = json.loads((out / "config.json").read_text())
    assert config["training_result"]["best_val_ua"] is not None
    assert (out / "training_curves.csv").is_file()
    recognizer = Recognizer.load(out)
    paths = [u.path for u in manifest][:6]
    preds = recognizer.predict_batch(paths)
    assert all(p.ok and p.label in SYNTH_EMOTIONS for p in preds)
    assert all(sum(p.probabilities.values()) == pytest.approx(1.0) for p in preds)
    # the recognizer's probabilities are the softmax of the model's scaled scores
    feats = recognizer.feature([recognizer.feature.load(p) for p in paths])
    with torch.no_grad():
        ref = torch.softmax(recognizer.model(torch.from_numpy(np.stack(feats))), 1).numpy()
    got = np.array([[p.probabilities[c] for c in recognizer.labels] for p in preds])
    np.testing.assert_allclose(got, ref, atol=1e-6)
