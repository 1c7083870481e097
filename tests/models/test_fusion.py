"""``logmel-egemaps`` and ``cnn-egemaps``: the log-mel with the eGeMAPS functionals stacked
under it, and the late fusion of a CNN on the first with a logistic regression on the second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SYNTH_EMOTIONS, evaluate_and_train_fusion
from sklearn.linear_model import LogisticRegression

from emovox.features import make_feature
from emovox.features.functionals import FUNCTIONALS_DIM
from emovox.models import build_model, model_class

pytest.importorskip("opensmile")

SR = 16000
SMALL_CNN = {"channels": [4, 8, 8, 8]}


def voice(f0: float, seconds: float, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """A voiced-like tone with a little vibrato and noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / SR
    y = sum(np.sin(h * phase) / h for h in range(1, 8)) + 0.01 * rng.standard_normal(len(t))
    return (amp * y).astype(np.float32)


def blobs(n: int, k: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.standard_normal((k, dim))[y] * 1.5 + rng.standard_normal((n, dim))
    return x * rng.uniform(0.1, 10, dim) + rng.uniform(-3, 3, dim), y


# -- the feature --------------------------------------------------------------------------------


def test_feature_is_the_logmel_over_the_functionals() -> None:
    feat = make_feature("logmel-egemaps", n_mels=32, trim_db=40.0, amin=1e-20)
    logmel = make_feature("logmel", n_mels=32, trim_db=40.0, amin=1e-20)
    egemaps = make_feature("egemaps", level_db=-20.0)  # the level the feature scales to
    waves = [voice(140, 1.2), voice(230, 0.8, seed=1)]  # different lengths: padded in one batch
    got = feat(waves)
    ref_spec = logmel(waves)
    for wave, a, spec in zip(waves, got, ref_spec, strict=True):
        assert a.shape == (1, 32 + 88, spec.shape[-1])
        np.testing.assert_allclose(a[:, :32], spec, atol=1e-5)
        func = a[0, 32:]
        assert np.all(func == func[:, :1])  # the same value in every frame
        np.testing.assert_allclose(func[:, 0], egemaps.vector(wave), rtol=1e-5, atol=1e-5)
    # pitch reaches the functionals: the first is the mean F0 in semitones
    assert got[1][0, 32, 0] > got[0][0, 32, 0] + 5
    assert feat.to_dict()["name"] == "logmel-egemaps"


def test_normalize_level_is_gain_free_and_never_clips() -> None:
    from emovox.features.egemaps import normalize_level

    w = voice(150, 1.0)
    out = normalize_level(w, -20.0)
    rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert 20 * np.log10(rms) == pytest.approx(-20.0, abs=1e-3)
    for gain in (1e-3, 0.1, 3.0):
        np.testing.assert_allclose(normalize_level(w * np.float32(gain), -20.0), out, atol=1e-6)
    spiky = np.zeros(16000, dtype=np.float32)
    spiky[100] = 0.5  # a lone click: the RMS target would push its peak past full scale
    assert np.abs(normalize_level(spiky, -20.0)).max() == pytest.approx(0.999, abs=1e-6)
    silent = np.zeros(100, dtype=np.float32)
    assert not normalize_level(silent, -20.0).any()


def test_functionals_do_not_move_with_the_gain() -> None:
    feat = make_feature("logmel-egemaps", n_mels=16)
    as_recorded = make_feature("logmel-egemaps", n_mels=16, egemaps_level_db=None)
    w = voice(180, 1.5, amp=0.05)
    quiet = w * np.float32(0.1)  # -20 dB
    a, b = feat([w])[0], feat([quiet])[0]
    np.testing.assert_allclose(a[0, 16:, 0], b[0, 16:, 0], rtol=1e-3, atol=1e-3)
    raw_a, raw_b = as_recorded([w])[0], as_recorded([quiet])[0]
    assert np.abs(raw_a[0, 16:, 0] - raw_b[0, 16:, 0]).max() > 1.0  # loudness moves as recorded


def test_feature_refuses_audio_opensmile_cannot_summarise() -> None:
    feat = make_feature("logmel-egemaps")
    with pytest.raises(ValueError, match="non-finite eGeMAPS"):
        feat([np.zeros(400, dtype=np.float32)])


# -- the model ----------------------------------------------------------------------------------


def items(x: np.ndarray, frames: int = 20, n_mels: int = 8, seed: int = 0) -> list[np.ndarray]:
    """``[N, D]`` functionals as ``logmel-egemaps`` arrays over random log-mel bins."""
    rng = np.random.default_rng(seed)
    out = []
    for row in x:
        spec = rng.standard_normal((1, n_mels, frames)).astype(np.float32)
        func = np.repeat(row.astype(np.float32)[None, :, None], frames, axis=2)
        out.append(np.concatenate([spec, func], axis=1))
    return out


def test_regression_equals_scikit_learn() -> None:
    x, y = blobs(120, 4, 6)
    model = build_model("cnn-egemaps", 4, (1, 8 + 6), n_functionals=6, C=0.3, cnn=SMALL_CNN)
    model.fit_regression(x, y)
    mean, std = x.mean(0), x.std(0)
    ref = LogisticRegression(C=0.3, class_weight="balanced", max_iter=5000)
    ref.fit((x - mean) / std, y)
    probe = blobs(30, 4, 6, seed=3)[0]
    with torch.no_grad():
        got = torch.softmax(model.regression_logits(torch.from_numpy(probe).float()), 1).numpy()
    np.testing.assert_allclose(got, ref.predict_proba((probe - mean) / std), atol=1e-4)


def test_regression_with_absent_classes_never_predicts_them() -> None:
    x, y = blobs(60, 2, 5)
    model = build_model("cnn-egemaps", 4, (1, 13), n_functionals=5, cnn=SMALL_CNN)
    model.fit_regression(x, y * 2)  # classes 0 and 2 only: scikit-learn's binary case
    with torch.no_grad():
        p = torch.softmax(model.regression_logits(torch.from_numpy(x).float()), 1).numpy()
    assert p[:, [1, 3]].max() < 1e-6
    assert (p.argmax(1) == y * 2).mean() > 0.8


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_output_is_the_weighted_mean_probability(weight: float) -> None:
    x, y = blobs(40, 3, 6)
    model = build_model("cnn-egemaps", 3, (1, 14), n_functionals=6, weight=weight, cnn=SMALL_CNN)
    model.fit_regression(x, y)
    model.eval()
    batch = torch.from_numpy(np.stack(items(x[:5])))
    parts = model.components()
    assert set(parts) == {"cnn", "egemaps-lr"}
    with torch.no_grad():
        fused = torch.softmax(model(batch), 1)
        p_cnn = torch.softmax(parts["cnn"](batch), 1)
        p_lr = torch.softmax(parts["egemaps-lr"](batch), 1)
    torch.testing.assert_close(fused, (1 - weight) * p_cnn + weight * p_lr, atol=1e-6, rtol=1e-5)


def test_padding_does_not_change_the_functionals_read() -> None:
    x, y = blobs(40, 3, 6)
    model = build_model("cnn-egemaps", 3, (1, 14), n_functionals=6, cnn=SMALL_CNN)
    model.fit_regression(x, y)
    model.eval()
    a = items(x[:1], frames=12)[0]
    padded = np.zeros((1, 14, 30), dtype=np.float32)
    padded[..., :12] = a
    mask = torch.zeros(1, 30, dtype=torch.bool)
    mask[0, :12] = True
    with torch.no_grad():
        alone = model(torch.from_numpy(a)[None])
        in_batch = model(torch.from_numpy(padded)[None], mask)
    torch.testing.assert_close(alone, in_batch, atol=1e-5, rtol=1e-5)


def test_bad_hyperparameters_are_refused() -> None:
    for kwargs, match in (
        ({"n_functionals": 14}, "n_functionals"),
        ({"n_functionals": 6, "weight": 1.5}, "weight"),
        ({"n_functionals": 6, "C": 0}, "C must be positive"),
    ):
        with pytest.raises(ValueError, match=match):
            build_model("cnn-egemaps", 3, (1, 14), **kwargs)


def test_fit_arrays_fits_both_branches_and_reports_them() -> None:
    from emovox.train import fit_arrays
    from emovox.train.config import TrainConfig

    x_all, y_all = blobs(88, 2, 6)
    x, y, xv, yv = x_all[:64], y_all[:64], x_all[64:], y_all[64:]
    model = build_model("cnn-egemaps", 2, (1, 14), n_functionals=6, cnn=SMALL_CNN)
    before = {k: v.clone() for k, v in model.cnn.state_dict().items()}
    config = TrainConfig.for_model(model_class("cnn-egemaps"), epochs=2, batch_size=16)
    result = fit_arrays(model, items(x), y, items(xv, seed=1), yv, config, progress=False)
    assert len(result.history) == 2
    last = result.history[-1]
    assert last["val_ua_egemaps-lr"] > 80  # the blobs separate on the functionals
    assert {"val_ua_fused", "val_ua_cnn", "val_ua"} <= set(last)
    assert any(not torch.equal(before[k], v) for k, v in model.cnn.state_dict().items())
    assert not model.training


def test_recipe_defaults() -> None:
    cls = model_class("cnn-egemaps")
    assert cls.default_feature["name"] == "logmel-egemaps"
    assert cls.default_training["speaker_norm"] is True
    assert cls.default_training["epochs"] == 120


# -- end to end -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "branches", "feature_name"),
    [
        ("cnn-egemaps", {"cnn", "egemaps-lr"}, "logmel-egemaps"),
        (
            "cnn-functionals-egemaps",
            {"cnn", "functionals-lr", "egemaps-lr"},
            "logmel-functionals-egemaps",
        ),
    ],
)
def test_evaluate_reports_each_branch_and_the_bundle_predicts(
    synth_corpus: Path, tmp_path: Path, name: str, branches: set, feature_name: str
) -> None:
    metrics, saved, preds = evaluate_and_train_fusion(name, synth_corpus, tmp_path, SMALL_CNN)
    assert len(metrics["folds"]) == 2
    for fold in metrics["folds"]:
        assert set(fold["components"]) == branches
        assert fold["epochs_run"] == 3
    assert set(metrics["components"]) == branches
    assert metrics["components"]["egemaps-lr"]["folds"] == 2
    assert metrics["training"]["speaker_norm"] is True
    assert saved["feature"]["name"] == feature_name
    assert all(p.ok and p.label in SYNTH_EMOTIONS for p in preds)
    assert all(sum(p.probabilities.values()) == pytest.approx(1.0) for p in preds)


@pytest.mark.parametrize(
    ("name", "feature_name", "n_functionals"),
    [
        ("cnn-egemaps", "logmel-egemaps", 88),
        ("cnn-functionals-egemaps", "logmel-functionals-egemaps", FUNCTIONALS_DIM + 88),
    ],
)
def test_onnx_export_matches_torch(
    tmp_path: Path, name: str, feature_name: str, n_functionals: int
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from emovox.inference.bundle import save_bundle
    from emovox.inference.onnx_backend import export_onnx

    x, y = blobs(40, 3, n_functionals)
    model = build_model(name, 3, (1, 16 + n_functionals), cnn=SMALL_CNN)
    model.fit_regression(x, y)
    model.eval()
    feature = make_feature(feature_name, n_mels=16)
    path = save_bundle(tmp_path / "m", model, feature, ["a", "b", "c"])
    export_onnx(path)  # verifies itself against torch on random inputs
    assert (path / "model.onnx").is_file()


def test_augmented_variants_train_both_branches() -> None:
    from emovox.train import fit_arrays
    from emovox.train.config import TrainConfig

    x, y = blobs(48, 2, 6)
    noisy = x + np.random.default_rng(5).standard_normal(x.shape)
    pairs = list(zip(items(x), items(noisy, seed=2), strict=True))
    model = build_model("cnn-egemaps", 2, (1, 14), n_functionals=6, cnn=SMALL_CNN)
    assert model.trains_on_variants
    config = TrainConfig.for_model(model_class("cnn-egemaps"), epochs=1, batch_size=16)
    fit_arrays(model, pairs, y, config=config, progress=False)
    ref = build_model("cnn-egemaps", 2, (1, 14), n_functionals=6, cnn=SMALL_CNN)
    ref.fit_regression(np.concatenate([x, noisy]), np.concatenate([y, y]))
    torch.testing.assert_close(model.coef, ref.coef)
    torch.testing.assert_close(model.intercept, ref.intercept)


# -- three views: cnn-functionals-egemaps ---------------------------------------------------------


def test_three_view_feature_stacks_both_sets() -> None:
    from emovox.features.functionals import utterance_functionals

    feat = make_feature("logmel-functionals-egemaps", n_mels=16)
    egemaps = make_feature("egemaps", level_db=-20.0)
    wave = voice(160, 1.0)
    got = feat([wave])[0]
    assert got.shape[1] == 16 + FUNCTIONALS_DIM + 88
    func = got[0, 16:, 0]
    np.testing.assert_allclose(func[:FUNCTIONALS_DIM], utterance_functionals(wave), atol=1e-4)
    np.testing.assert_allclose(func[FUNCTIONALS_DIM:], egemaps.vector(wave), rtol=1e-5, atol=1e-5)


def test_three_view_model_fits_each_set_and_averages_three_branches() -> None:
    x, y = blobs(90, 3, 10)
    model = build_model(
        "cnn-functionals-egemaps",
        3,
        (1, 8 + 10),
        n_functionals=10,
        second_dim=4,
        weight=0.2,
        second_weight=0.5,
        C=0.3,
        second_C=1.0,
        cnn=SMALL_CNN,
    )
    model.fit_regression(x, y)
    model.eval()
    probe = blobs(12, 3, 10, seed=4)[0]
    for cols, c, logits in (
        (slice(0, 6), 0.3, model.regression_logits),
        (slice(6, 10), 1.0, model.second_logits),
    ):
        part = x[:, cols]
        mean, std = part.mean(0), part.std(0)
        ref = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        ref.fit((part - mean) / std, y)
        with torch.no_grad():
            got = torch.softmax(logits(torch.from_numpy(probe).float()), 1).numpy()
        np.testing.assert_allclose(
            got, ref.predict_proba((probe[:, cols] - mean) / std), atol=1e-4
        )
    batch = torch.from_numpy(np.stack(items(probe[:5])))
    parts = model.components()
    assert set(parts) == {"cnn", "functionals-lr", "egemaps-lr"}
    with torch.no_grad():
        fused = torch.softmax(model(batch), 1)
        p = {k: torch.softmax(m(batch), 1) for k, m in parts.items()}
    expected = 0.3 * p["cnn"] + 0.2 * p["functionals-lr"] + 0.5 * p["egemaps-lr"]
    torch.testing.assert_close(fused, expected, atol=1e-6, rtol=1e-5)
    assert model_class("cnn-functionals-egemaps").default_feature["name"] == (
        "logmel-functionals-egemaps"
    )


def test_three_view_bad_hyperparameters_are_refused() -> None:
    for kwargs, match in (
        ({"second_dim": 10}, "second_dim"),
        ({"second_dim": 4, "weight": 0.6, "second_weight": 0.5}, "second_weight"),
        ({"second_dim": 4, "second_C": 0.0}, "second_C"),
    ):
        with pytest.raises(ValueError, match=match):
            build_model("cnn-functionals-egemaps", 3, (1, 18), n_functionals=10, **kwargs)
