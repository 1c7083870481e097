"""``functionals`` / ``logmel-functionals`` / ``cnn-functionals``: the fast torch-native utterance
functionals, their stacking under the log-mel, and the late-fusion model that reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SYNTH_EMOTIONS, evaluate_and_train_fusion

from emovox.features import make_feature
from emovox.features.functionals import (
    FUNCTIONALS_DIM,
    functional_names,
    utterance_functionals,
)
from emovox.models import build_model, model_class

SR = 16000
SMALL_CNN = {"channels": [4, 8, 8, 8]}
NAMES = functional_names()


def voice(f0: float, seconds: float, amp: float = 0.1, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A harmonic tone with 3 % vibrato and a little noise (a crude vowel), float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / sr
    y = sum(np.sin(h * phase) / h for h in range(1, 10)) + 0.005 * rng.standard_normal(len(t))
    return (amp * y).astype(np.float32)


def value(vec: np.ndarray, name: str) -> float:
    return float(vec[NAMES.index(name)])


def semitones(f0: float) -> float:
    return 12 * np.log2(f0 / 27.5)


def test_names_match_the_vector() -> None:
    assert len(NAMES) == FUNCTIONALS_DIM == len(set(NAMES))
    assert make_feature("functionals").feature_names == NAMES
    vec = utterance_functionals(voice(150, 1.0))
    assert vec.shape == (FUNCTIONALS_DIM,) and vec.dtype == np.float32


@pytest.mark.parametrize("f0", [85.0, 150.0, 260.0, 420.0])
def test_pitch_is_found_without_octave_errors(f0: float) -> None:
    vec = utterance_functionals(voice(f0, 1.5))
    assert value(vec, "f0_semitone_p50") == pytest.approx(semitones(f0), abs=0.6)
    # 3 % vibrato spans about +-0.5 semitone: a sane spread, not octave jumps
    assert value(vec, "f0_semitone_range_20_80") < 1.5
    assert value(vec, "voiced_ratio") > 0.9
    assert value(vec, "hnr_db_mean") > 10


def test_noise_is_unvoiced() -> None:
    noise = (0.05 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32)
    vec = utterance_functionals(noise)
    assert value(vec, "voiced_ratio") < 0.1
    assert value(vec, "alpha_ratio_unvoiced_mean") < value(
        utterance_functionals(voice(150, 1.0)), "alpha_ratio_voiced_mean"
    )


def test_only_the_recording_level_moves_with_the_gain() -> None:
    w = voice(180, 1.2, amp=0.05)
    ref = utterance_functionals(w)
    level = NAMES.index("level_dbfs")
    for gain in (0.01, 0.1, 3.0):
        got = utterance_functionals(w * np.float32(gain))
        assert got[level] - ref[level] == pytest.approx(20 * np.log10(gain), abs=0.01)
        np.testing.assert_allclose(
            np.delete(got, level), np.delete(ref, level), atol=2e-3, rtol=1e-3
        )


def test_rhythm_counts_voiced_segments_and_pauses() -> None:
    gap = np.zeros(round(0.3 * SR), dtype=np.float32)
    w = np.concatenate([voice(150, 0.5), gap, voice(150, 0.5, seed=1), gap, voice(150, 0.5)])
    vec = utterance_functionals(w)
    speech_s = 1.5 + 0.6  # the pauses lie inside the speech span
    assert value(vec, "voiced_segments_per_s") * speech_s == pytest.approx(3, abs=0.6)
    assert value(vec, "voiced_segment_s_mean") == pytest.approx(0.5, abs=0.06)
    assert value(vec, "unvoiced_segment_s_mean") == pytest.approx(0.3, abs=0.06)


def test_louder_and_brighter_voices_read_so() -> None:
    soft = voice(150, 1.0)
    b, a = np.array([1.0, -0.95]), np.array([1.0])  # pre-emphasis: more energy up high
    from scipy.signal import lfilter

    bright = lfilter(b, a, soft).astype(np.float32)
    vs, vb = utterance_functionals(soft), utterance_functionals(bright)
    assert value(vb, "alpha_ratio_voiced_mean") < value(vs, "alpha_ratio_voiced_mean") - 3
    assert value(vb, "hammarberg_voiced_mean") < value(vs, "hammarberg_voiced_mean")
    assert value(vb, "centroid_khz_voiced_mean") > value(vs, "centroid_khz_voiced_mean")
    swell = voice(150, 1.0) * np.linspace(0.1, 1.0, SR, dtype=np.float32)
    assert value(utterance_functionals(swell), "loudness_rise_mean") > 0
    assert value(utterance_functionals(swell), "loudness_std") > value(vs, "loudness_std")


@pytest.mark.parametrize(
    "wave",
    [
        np.zeros(SR, dtype=np.float32),  # silence
        np.zeros(10, dtype=np.float32),  # almost nothing
        voice(150, 0.1),  # 100 ms
        np.sign(voice(150, 0.5)).astype(np.float32),  # clipped square wave
        voice(150, 0.5) + np.float32(0.5),  # DC offset
        np.full(SR // 2, 1.0, dtype=np.float32),  # constant
    ],
    ids=["silence", "ten-samples", "100ms", "clipped", "dc", "constant"],
)
def test_always_finite(wave: np.ndarray) -> None:
    vec = utterance_functionals(wave)
    assert vec.shape == (FUNCTIONALS_DIM,) and np.all(np.isfinite(vec))


@pytest.mark.parametrize("sr", [8000, 22050, 44100])
def test_other_sample_rates(sr: int) -> None:
    vec = make_feature("functionals", sample_rate=sr).vector(voice(200, 1.0, sr=sr))
    assert value(vec, "f0_semitone_p50") == pytest.approx(semitones(200), abs=0.6)


def test_logmel_functionals_stacks_the_vector_under_the_logmel() -> None:
    feat = make_feature("logmel-functionals", n_mels=32, trim_db=40.0)
    logmel = make_feature("logmel", n_mels=32, trim_db=40.0)
    waves = [voice(140, 1.2), voice(230, 0.8, seed=1)]  # different lengths: padded in one batch
    for wave, got, spec in zip(waves, feat(waves), logmel(waves), strict=True):
        assert got.shape == (1, 32 + FUNCTIONALS_DIM, spec.shape[-1])
        np.testing.assert_allclose(got[:, :32], spec, atol=1e-5)
        func = got[0, 32:]
        assert np.all(func == func[:, :1])
        np.testing.assert_allclose(func[:, 0], utterance_functionals(wave), rtol=1e-5, atol=1e-4)
    assert make_feature("functionals").extract(waves[0]).shape == (1, FUNCTIONALS_DIM, 1)


# -- the model ----------------------------------------------------------------------------------


def test_recipe_defaults_and_branches() -> None:
    cls = model_class("cnn-functionals")
    assert cls.default_feature["name"] == "logmel-functionals"
    assert cls.default_training["speaker_norm"] is True
    model = build_model("cnn-functionals", 4, (1, 64 + FUNCTIONALS_DIM), cnn=SMALL_CNN)
    assert model.hparams["n_functionals"] == FUNCTIONALS_DIM and model.C == 0.03
    assert set(model.components()) == {"cnn", "functionals-lr"}
    assert build_model("cnn-egemaps", 4, (1, 64 + 88), cnn=SMALL_CNN).C == 0.1


def test_evaluate_and_bundle_end_to_end(synth_corpus: Path, tmp_path: Path) -> None:
    metrics, saved, preds = evaluate_and_train_fusion(
        "cnn-functionals", synth_corpus, tmp_path, SMALL_CNN, epochs=2
    )
    assert set(metrics["components"]) == {"cnn", "functionals-lr"}
    assert all(0 <= f["ua"] <= 100 for f in metrics["folds"])
    assert saved["feature"]["name"] == "logmel-functionals"
    assert all(p.ok and p.label in SYNTH_EMOTIONS for p in preds)
