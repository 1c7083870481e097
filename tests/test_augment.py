"""Waveform augmentation (speed, noise, gain, pitch, reverb), its cache entries, its use in
training, and the test conditions of robustness reports."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
from click.testing import CliRunner
from conftest import (
    SYNTH_EMOTIONS,
    peak_frequency,
    run_cli,
    synth_manifest,
    synth_scheme,
    tiny_cli,
    tiny_config,
    tiny_recipe,
    tone,
    write_tone,
)

import emovox.evaluate.runner as evaluation
from emovox import augment as aug
from emovox.apps.cli import main
from emovox.augment import speed_perturb
from emovox.features import FeatureCache, LogMel, extract_files
from emovox.train.config import TrainConfig
from emovox.train.dataset import load_dataset
from emovox.train.pipeline import fit
from emovox.train.trainer import Trainer


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_changes_length_and_pitch(factor: float) -> None:
    x = tone(2.0, 16000, 440.0)
    y = speed_perturb(x, 16000, factor)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) / factor) <= 2
    assert peak_frequency(y, 16000) == pytest.approx(440.0 * factor, rel=0.01)


def test_speed_one_is_identity_and_bad_factor_raises() -> None:
    x = tone(0.5)
    assert speed_perturb(x, 16000, 1.0) is x
    with pytest.raises(ValueError, match="positive"):
        speed_perturb(x, 16000, 0.0)
    with pytest.raises(ValueError, match="positive"):
        TrainConfig(speed_perturb=(1.1, -1.0))


def test_speed_variants_are_cached_apart(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "a.wav", seconds=1.0)
    cache = FeatureCache(tmp_path / "cache")
    feature = LogMel()
    (plain,), _ = extract_files(feature, [path], cache=cache, progress=False)
    (fast,), _ = extract_files(feature, [path], cache=cache, progress=False, speed=1.1)
    assert fast.shape[-1] < plain.shape[-1]
    assert cache.get(feature, path) is not None
    assert np.array_equal(cache.get(feature, path, "speed1.1"), fast)
    assert cache.get(feature, path, "speed0.9") is None


def test_dataset_variants_reach_the_trainer(synth_corpus: Path, monkeypatch) -> None:
    config = tiny_config(speed_perturb=(0.9, 1.1), epochs=1)
    data = load_dataset(
        synth_manifest(synth_corpus),
        synth_scheme(),
        LogMel(),
        progress=False,
        speeds=config.speed_perturb,
    )
    assert len(data.variants) == len(data.features)
    assert all(len(v) == 2 for v in data.variants)
    items, _ = data.subset([0, 1], augmented=True)
    assert isinstance(items[0], tuple) and len(items[0]) == 3
    plain, _ = data.subset([0, 1])
    assert isinstance(plain[0], np.ndarray)
    seen = []
    real_fit = Trainer.fit

    def spy(self, train_x, *args, **kwargs):
        seen.extend(train_x)
        return real_fit(self, train_x, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    recipe = tiny_recipe(config)
    _model, result, _ = fit(data, range(len(data.features)), recipe, progress=False)
    assert len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])
    assert seen and all(isinstance(x, tuple) and len(x) == 3 for x in seen)
    # the variants are really different: slower copies are longer
    assert all(x[1].shape[-1] > x[0].shape[-1] > x[2].shape[-1] for x in seen)


# -- waveform augmentations -----------------------------------------------------------------------

SR = 16000


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Syllable-like bursts: a 150 Hz harmonic series switched on and off four times a second."""
    t = np.arange(round(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * 150 * h * t + h) / h for h in range(1, 8))
    gate = (np.sin(2 * np.pi * 4 * t) > -0.2).astype(float)
    noise = 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.2 * voice * gate + noise).astype(np.float32)


def with_silence(x: np.ndarray, before: float, after: float) -> np.ndarray:
    return np.concatenate([np.zeros(round(before * SR)), x, np.zeros(round(after * SR))]).astype(
        np.float32
    )


def test_active_speech_power_ignores_silences() -> None:
    x = tone(1.0, SR, 300.0, amp=0.5)
    padded = with_silence(x, 2.0, 1.0)
    assert aug.active_speech_power(x, SR) == pytest.approx(0.125, rel=1e-3)
    assert aug.active_speech_power(padded, SR) == pytest.approx(0.125, rel=1e-3)
    assert np.mean(padded**2) == pytest.approx(0.125 / 4, rel=1e-3)  # a plain mean would be 4x off
    assert aug.active_speech_power(np.zeros(SR, np.float32), SR) == 0.0


@pytest.mark.parametrize("kind", ["white", "speech"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_noise_has_the_snr_asked_for_on_active_speech(kind: str, snr: float) -> None:
    x = speechlike(1.5)
    for audio in (x, with_silence(x, 1.0, 2.0)):
        y = aug.add_noise(audio, snr, kind, np.random.default_rng(1), SR)
        assert y.dtype == np.float32 and y.shape == audio.shape
        noise = y.astype(np.float64) - audio
        # the speech's power over its own (non-silent) samples, measured independently
        speech_power = np.mean(x.astype(np.float64) ** 2)
        measured = 10 * np.log10(speech_power / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.3)


def test_silent_audio_gets_no_noise_and_bad_kind_raises() -> None:
    z = np.zeros(SR, np.float32)
    assert np.array_equal(aug.add_noise(z, 10, "white", np.random.default_rng(0)), z)
    with pytest.raises(ValueError, match="pink"):
        aug.add_noise(z, 10, "pink", np.random.default_rng(0))


def band_db(x: np.ndarray, lo: float, hi: float) -> float:
    f, p = scipy.signal.welch(x, SR, nperseg=1024)
    return float(10 * np.log10(p[(f >= lo) & (f <= hi)].mean()))


def test_speech_shaped_noise_falls_with_frequency_and_white_is_flat() -> None:
    rng = np.random.default_rng(0)
    speech = aug.make_noise(10 * SR, "speech", rng, SR)
    white = aug.make_noise(10 * SR, "white", rng, SR)
    # flat below the knee, then SPEECH_SLOPE_DB per octave: 1 kHz -> 4 kHz is two octaves
    assert band_db(speech, 150, 450) - band_db(speech, 950, 1050) == pytest.approx(
        aug.SPEECH_SLOPE_DB, abs=1.5
    )
    assert band_db(speech, 950, 1050) - band_db(speech, 3900, 4100) == pytest.approx(
        2 * aug.SPEECH_SLOPE_DB, abs=1.5
    )
    assert abs(band_db(white, 950, 1050) - band_db(white, 3900, 4100)) < 1.0


def test_gain_scales_clips_and_counts() -> None:
    x = tone(1.0, SR, 220.0, amp=0.5)
    loud, clipped = aug.gain(x, 20.0)
    assert loud.dtype == np.float32 and loud.shape == x.shape
    assert clipped == int(np.count_nonzero(np.abs(x.astype(np.float64) * 10.0) > 1.0))
    assert 0 < clipped < len(x)
    assert np.abs(loud).max() == 1.0
    quiet, none = aug.gain(x, -20.0)
    assert none == 0
    np.testing.assert_allclose(quiet, x * 0.1, rtol=1e-5)
    assert aug.hard_clip(np.array([2.0, -3.0, 0.5]))[1] == 2


def test_pitch_shift_moves_pitch_keeps_length() -> None:
    x = tone(1.0, SR, 440.0)
    y = aug.pitch_shift(x, SR, 2.0)
    assert y.dtype == np.float32 and len(y) == len(x)
    assert peak_frequency(y, SR) == pytest.approx(440.0 * 2 ** (2 / 12), rel=0.015)
    short = tone(0.1, SR, 440.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(aug.pitch_shift(short, SR, -1.0)) == len(short)


def schroeder_rt60(rir: np.ndarray, sr: int) -> float:
    """RT60 from the -5 to -25 dB slope of the backward-integrated energy (T20 x 3)."""
    edc = np.cumsum(rir[::-1] ** 2)[::-1]
    db = 10 * np.log10(edc / edc[0])
    t5, t25 = np.argmax(db <= -5) / sr, np.argmax(db <= -25) / sr
    return 3 * (t25 - t5)


@pytest.mark.parametrize("rt60", [0.3, 0.7])
def test_room_impulse_response_decays_at_rt60(rt60: float) -> None:
    rir = aug.room_impulse_response(SR, rt60, np.random.default_rng(3), drr_db=0.0)
    assert rir[0] == 1.0 and len(rir) == round(rt60 * SR)
    assert schroeder_rt60(rir[1:], SR) == pytest.approx(rt60, rel=0.2)
    assert np.sum(rir[1:] ** 2) == pytest.approx(1.0, rel=1e-6)  # DRR 0 dB


def test_reverb_keeps_length_and_level_and_fills_pauses() -> None:
    x = with_silence(speechlike(1.0), 0.0, 1.0)
    y = aug.reverb(x, SR, 0.6, np.random.default_rng(0))
    assert y.dtype == np.float32 and len(y) == len(x)
    assert aug.active_speech_power(y, SR) == pytest.approx(aug.active_speech_power(x, SR), rel=1e-4)
    pause = slice(SR + SR // 20, SR + SR // 5)  # 50-200 ms after the speech ends
    assert np.all(x[pause] == 0) and np.mean(y[pause] ** 2) > 1e-4
    with pytest.raises(ValueError, match="rt60"):
        aug.reverb(x, SR, 0.0, np.random.default_rng(0))


def test_random_augment_is_deterministic_by_rng_and_uses_only_the_kinds_asked() -> None:
    x = speechlike(1.0)
    a = aug.random_augment(x, SR, ("noise", "reverb"), np.random.default_rng(7))
    b = aug.random_augment(x, SR, ("noise", "reverb"), np.random.default_rng(7))
    c = aug.random_augment(x, SR, ("noise", "reverb"), np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.dtype == np.float32 and len(a) == len(x)
    seen: set[str] = set()
    for seed in range(40):
        params = aug.draw_augment(["gain", "pitch"], np.random.default_rng(seed))
        assert params and set(params) <= {"gain", "pitch"}  # never empty, never others
        seen |= set(params)
        if "gain" in params:
            assert -20.0 <= params["gain"]["db"] <= 20.0
        if "pitch" in params:
            assert -2.0 <= params["pitch"]["semitones"] <= 2.0
    assert seen == {"gain", "pitch"}
    with pytest.raises(ValueError, match="'echo'"):
        aug.random_augment(x, SR, ("noise", "echo"), np.random.default_rng(0))


def test_gain_augmentation_clips_when_loud() -> None:
    x = tone(1.0, SR, 220.0, amp=0.5)
    y, clipped = aug.apply_augment(x, SR, {"gain": {"db": 20.0}}, np.random.default_rng(0))
    assert clipped > 0 and np.abs(y).max() == 1.0


def test_overdrive_clips_the_same_share_of_a_quiet_and_a_loud_recording() -> None:
    loud, quiet = tone(1.0, SR, 220.0, amp=0.9), tone(1.0, SR, 220.0, amp=0.01)
    a, n_loud = aug.overdrive(loud, 12.0)
    b, n_quiet = aug.overdrive(quiet, 12.0)
    assert np.abs(a).max() == 1.0 and np.abs(b).max() == 1.0
    assert n_loud == n_quiet > len(loud) // 2  # a sine 12 dB over full scale: ~84 % clipped
    assert np.allclose(a, b, atol=1e-4)  # the same shape whatever the recorded level
    _, light = aug.overdrive(loud, 1.0)
    _, heavy = aug.overdrive(loud, 30.0)
    assert 0 < light < n_loud < heavy
    silent, n = aug.overdrive(np.zeros(SR, dtype=np.float32), 20.0)
    assert n == 0 and not silent.any()


def test_clip_augmentation_draws_its_range_and_counts_the_clipped_samples() -> None:
    seen = []
    for seed in range(30):
        params = aug.draw_augment(["clip"], np.random.default_rng(seed))
        assert set(params) == {"clip"}  # the only kind asked: always applied
        seen.append(params["clip"]["over_db"])
    assert min(seen) >= 0.0 and max(seen) <= 30.0 and max(seen) - min(seen) > 10.0
    x = speechlike(1.0)
    y, clipped = aug.apply_augment(x, SR, {"clip": {"over_db": 20.0}}, np.random.default_rng(0))
    assert clipped > 0 and np.abs(y).max() == 1.0 and len(y) == len(x)
    # after gain, clip adds its own clipped samples to the count
    _, both = aug.apply_augment(
        x, SR, {"gain": {"db": 20.0}, "clip": {"over_db": 20.0}}, np.random.default_rng(0)
    )
    assert both > aug.gain(x, 20.0)[1]
    assert aug.CHAIN_ORDER[-1] == "clip" and "clip" in aug.AUGMENT_KINDS
    with pytest.raises(ValueError, match="clip"):
        TrainConfig(augment_copies=1)


# -- transforms and the feature cache -------------------------------------------------------------


def write_speech(path: Path, seconds: float = 0.6, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), speechlike(seconds, seed), SR, subtype="FLOAT")
    return path


def test_transform_seeds_depend_on_seed_copy_and_file_not_on_the_folder(tmp_path: Path) -> None:
    a = write_speech(tmp_path / "one" / "spk1" / "a.wav")
    moved = tmp_path / "two" / "spk1" / "a.wav"
    moved.parent.mkdir(parents=True)
    shutil.copy(a, moved)
    x = speechlike(0.6)
    t = aug.augment_transform(("noise",), seed=1, copy=0)
    first = t(x, SR, a)[0]
    assert np.array_equal(first, t(x, SR, moved)[0])  # a corpus moved elsewhere: same copy
    assert not np.array_equal(first, t(x, SR, tmp_path / "one" / "spk2" / "a.wav")[0])
    assert not np.array_equal(first, aug.augment_transform(("noise",), 1, 1)(x, SR, a)[0])
    assert not np.array_equal(first, aug.augment_transform(("noise",), 2, 0)(x, SR, a)[0])


def test_cache_variants_differ_per_copy_kinds_seed_and_version() -> None:
    keys = {
        aug.augment_variant(("noise",), 0, 0),
        aug.augment_variant(("noise",), 0, 1),
        aug.augment_variant(("noise",), 1, 0),
        aug.augment_variant(("noise", "gain"), 0, 0),
        aug.augment_variant(("noise",), 0, 0, aug.AugmentRanges(p=1.0)),
        aug.condition_transform("white:20").variant,
        aug.condition_transform("white:10").variant,
        aug.condition_transform("speech:20").variant,
    }
    assert len(keys) == 8
    assert aug.augment_variant(("gain", "noise"), 0, 0) == aug.augment_variant("noise,gain", 0, 0)
    assert f"aug{aug.AUGMENT_VERSION}-" in aug.augment_variant(("noise",), 0, 0)
    assert aug.speed_transform(1.1).variant == "speed1.1"  # the speed cache keys are unchanged


def test_augmented_features_are_independent_of_workers_and_order(tmp_path: Path) -> None:
    paths = [write_speech(tmp_path / f"s{i}" / f"u{i}.wav", 0.4 + 0.1 * i, i) for i in range(5)]
    t = aug.augment_transform(aug.AUGMENT_KINDS, seed=0, copy=2)
    feature = LogMel()
    one, _ = extract_files(feature, paths, workers=1, batch_size=1, progress=False, transform=t)
    many, _ = extract_files(
        feature, paths[::-1], workers=3, batch_size=2, progress=False, transform=t
    )
    for a, b in zip(one, many[::-1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    plain, _ = extract_files(feature, paths, workers=1, progress=False)
    assert any(a.shape != p.shape or not np.allclose(a, p) for a, p in zip(one, plain, strict=True))


def test_transformed_features_and_clip_counts_are_cached(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "a.wav", seconds=0.5)
    cache = FeatureCache(tmp_path / "cache")
    feature = LogMel()
    t = aug.condition_transform("gain:20")
    clipped: dict[str, int] = {}
    (first,), errors = extract_files(
        feature, [path], cache=cache, progress=False, transform=t, clipped=clipped
    )
    assert not errors and clipped[str(path)] > 0
    assert np.array_equal(cache.get(feature, path, t.variant), first)
    assert cache.get(feature, path) is None  # the clean entry is apart

    def boom(*_args):
        raise AssertionError("a cached transform was computed again")

    again: dict[str, int] = {}
    (second,), errors = extract_files(
        feature,
        [path],
        cache=cache,
        progress=False,
        transform=aug.WaveTransform(boom, t.variant),
        clipped=again,
    )
    assert not errors and np.array_equal(first, second) and again == clipped
    with pytest.raises(ValueError, match="either"):
        extract_files(feature, [path], progress=False, speed=1.1, transform=t)


# -- training settings and the dataset ------------------------------------------------------------


def test_train_config_checks_augment() -> None:
    c = TrainConfig(augment=["reverb", " noise"], augment_copies=2)
    assert c.augment == ("noise", "reverb")
    assert json.loads(json.dumps(c.to_dict()))["augment"] == ["noise", "reverb"]
    assert TrainConfig(augment=("gain",), augment_copies=1).augment == ("gain",)
    with pytest.raises(ValueError, match="'echo'"):
        TrainConfig(augment=["noise", "echo"], augment_copies=1)
    with pytest.raises(ValueError, match="augment_copies"):
        TrainConfig(augment=["noise"])
    with pytest.raises(ValueError, match="needs augment"):
        TrainConfig(augment_copies=2)
    with pytest.raises(ValueError, match="whole number"):
        TrainConfig(augment=["noise"], augment_copies=-1)
    with pytest.raises(ValueError, match="augment must be a list of names"):
        TrainConfig(augment="noise,gain", augment_copies=1)  # the CLI splits comma lists


def test_load_dataset_adds_augmented_variants(synth_corpus: Path, tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    data = load_dataset(
        synth_manifest(synth_corpus),
        synth_scheme(),
        LogMel(),
        cache=cache,
        progress=False,
        speeds=(1.1,),
        augment=("noise", "gain"),
        augment_copies=2,
        augment_seed=3,
    )
    assert len(data.variants) == len(data.features) == 32
    assert all(len(v) == 3 for v in data.variants)
    for f, (fast, c0, c1) in zip(data.features, data.variants, strict=True):
        assert fast.shape[-1] < f.shape[-1] and c0.shape == c1.shape == f.shape
        assert not np.array_equal(c0, f) and not np.array_equal(c0, c1)
    names = {p.name for p in cache.root.iterdir()}
    assert any(n.endswith("aug1-noise+gain-s3-c0") for n in names)
    assert any(n.endswith("aug1-noise+gain-s3-c1") for n in names)
    # validation and test items are plain arrays, training items carry the variants
    items, _ = data.subset([0, 1])
    assert all(isinstance(x, np.ndarray) for x in items)
    items, _ = data.subset([0, 1], augmented=True)
    assert all(isinstance(x, tuple) and len(x) == 4 for x in items)


# -- test conditions ------------------------------------------------------------------------------


def test_parse_condition() -> None:
    assert aug.parse_condition("white:20") == aug.Condition("white", 20.0)
    assert aug.parse_condition(" Gain:-20.0 ").name == "gain:-20"
    assert aug.parse_condition("clean").name == "clean"
    for bad, match in [
        ("pink:10", "unknown test condition"),
        ("white", "needs a number"),
        ("white:loud", "needs a number"),
        ("reverb:0", "RT60"),
        ("clean:3", "no value"),
    ]:
        with pytest.raises(ValueError, match=match):
            aug.parse_condition(bad)


def test_condition_noise_is_seeded_per_file(tmp_path: Path) -> None:
    x = speechlike(0.5)
    t = aug.condition_transform("speech:5")
    a = t(x, SR, tmp_path / "s1" / "a.wav")[0]
    assert np.array_equal(a, t(x, SR, tmp_path / "s1" / "a.wav")[0])
    assert not np.array_equal(a, t(x, SR, tmp_path / "s1" / "b.wav")[0])


def evaluate_with(corpus: Path, out: Path, conditions, **kwargs) -> dict:
    return evaluation.evaluate(
        synth_manifest(corpus),
        synth_scheme(),
        tiny_recipe(epochs=2),
        out,
        protocol="speakers-kfold",
        k=2,
        progress=False,
        conditions=conditions,
        **kwargs,
    )


@pytest.mark.slow
def test_evaluate_scores_conditions_and_resume_keeps_them(
    synth_corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "eval"
    conds = ["white:0", "gain:0", "gain:20", "speech:10"]
    m = evaluate_with(synth_corpus, out, conds)
    c = m["conditions"]
    assert list(c) == ["clean", *conds]
    assert c["clean"]["ua"] == pytest.approx(m["ua"]) and c["clean"]["ua_delta"] == 0.0
    # 0 dB gain is the clean audio again: the same scores, through the condition path
    assert c["gain:0"]["ua"] == pytest.approx(m["ua"])
    assert c["gain:0"]["agreement"] == pytest.approx(100.0)  # every label kept
    assert c["gain:0"]["clipped_files"] == 0
    assert 0 <= c["white:0"]["agreement"] <= 100
    assert c["gain:20"]["clipped_files"] > 0 and c["gain:20"]["clipped_samples"] > 0
    for name in conds:
        per_fold = [f["conditions"][name] for f in m["folds"]]
        assert c[name]["ua"] == pytest.approx(np.mean([f["ua"] for f in per_fold]))
        assert c[name]["ua_std"] == pytest.approx(np.std([f["ua"] for f in per_fold]))
        assert c[name]["ua_delta"] == pytest.approx(c[name]["ua"] - m["ua"])
        assert c[name]["n_folds"] == 2 and sum(f["n_test"] for f in per_fold) == 32
        assert {"ua", "wa", "macro_f1", "ua_std", "clipped_files", "clipped_samples"} <= set(
            c[name]
        )
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["conditions"] == json.loads(json.dumps(c))
    report = (out / "report.md").read_text()
    assert "Test conditions" in report and "| gain:20 |" in report and "labels kept" in report
    assert f"{c['gain:20']['ua_delta']:+.2f}" in report

    # --resume: finished folds keep their condition results, nothing is trained again
    def no_fit(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(evaluation, "fit", no_fit)
    again = evaluate_with(synth_corpus, out, [*conds, "reverb:0.5"], resume=True)
    assert {k: again["conditions"][k] for k in c} == c
    # a condition asked for later is scored with each fold's saved model, nothing retrained
    assert again["conditions"]["reverb:0.5"]["n_folds"] == 2
    assert 0 <= again["conditions"]["reverb:0.5"]["agreement"] <= 100
    assert (out / "fold_1" / "model" / "model.safetensors").is_file()
    import shutil

    shutil.rmtree(out / "fold_1" / "model")  # without its model a fold cannot be scored again
    third = evaluate_with(synth_corpus, out, [*conds, "reverb:0.5", "pitch:1"], resume=True)
    assert third["conditions"]["pitch:1"]["n_folds"] == 1
    with pytest.raises(ValueError, match="unknown test condition"):
        evaluate_with(synth_corpus, tmp_path / "bad", ["loud:3"])


@pytest.mark.slow
def test_cli_evaluate_with_augment_and_conditions(synth_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = tiny_cli(
        "evaluate",
        ["--data", synth_corpus, "--labels", ",".join(SYNTH_EMOTIONS)],
        out,
        *("--protocol", "speakers-kfold:2", "--folds", "1"),
        *("--train-param", "augment=noise,gain,reverb", "--train-param", "augment_copies=1"),
        *("--condition", "white:20", "--condition", "GAIN:-20"),
        epochs=1,
    )
    result = run_cli(args)
    m = json.loads((out / "metrics.json").read_text())
    assert m["training"]["augment"] == ["noise", "gain", "reverb"]
    assert m["training"]["augment_copies"] == 1
    assert list(m["conditions"]) == ["clean", "white:20", "gain:-20"]
    assert "white:20: UA" in result.output

    for bad, match in [
        (["--condition", "white"], "needs a number"),
        (["--train-param", "augment=noise,echo", "--train-param", "augment_copies=1"], "echo"),
    ]:
        bad_args = [*args[:-4], *bad, "--out", str(tmp_path / "x"), "--quiet", "--no-cache"]
        result = CliRunner().invoke(main, bad_args)
        assert result.exit_code == 2, result.output
        assert match in result.output


def test_condition_features_are_extracted_only_for_the_scored_items(
    synth_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emovox.evaluate.conditions as robustness

    data = load_dataset(
        synth_manifest(synth_corpus), synth_scheme(), LogMel(), cache=None, progress=False
    )
    asked: list[str] = []
    real = robustness.extract_files

    def counting(feature, paths, **kwargs):
        asked.extend(str(p) for p in paths)
        return real(feature, paths, **kwargs)

    monkeypatch.setattr(robustness, "extract_files", counting)
    scorer = robustness.ConditionScorer(data, ["gain:-10"], progress=False)
    cond = scorer.conditions[0]
    first, _ = scorer.dataset(cond, [0, 1])
    assert first.features[0] is not None and first.features[1] is not None
    assert all(f is None for f in first.features[2:])
    again, _ = scorer.dataset(cond, [1, 2])  # item 1 is kept, only item 2 is new
    assert asked == [data.manifest[i].path for i in (0, 1, 2)]
    assert again.features[2] is not None and again.features[3] is None
    # the features equal a direct extraction of the changed audio
    direct, _ = extract_files(
        data.feature,
        [data.manifest[2].path],
        transform=aug.condition_transform(cond),
        progress=False,
    )
    np.testing.assert_array_equal(again.features[2], direct[0])


# -- the line and the file: telephone band and MP3 ---------------------------------------------


def band_gain(x: np.ndarray, y: np.ndarray, hz: float) -> float:
    """``|Y| / |X|`` at ``hz`` (the input holds a tone there)."""
    f = np.fft.rfftfreq(len(x), 1.0 / SR)
    i = int(np.argmin(np.abs(f - hz)))
    return float(np.abs(np.fft.rfft(y))[i] / np.abs(np.fft.rfft(x))[i])


def test_telephone_band_keeps_the_voice_band_and_removes_the_rest() -> None:
    t = np.arange(2 * SR) / SR
    x = sum(0.1 * np.sin(2 * np.pi * hz * t) for hz in (100.0, 1000.0, 2000.0, 6000.0))
    y = aug.band_limit(x.astype(np.float32), SR)
    assert y.dtype == np.float32 and len(y) == len(x)
    assert band_gain(x, y, 1000.0) == pytest.approx(1.0, abs=0.05)
    assert band_gain(x, y, 2000.0) == pytest.approx(1.0, abs=0.05)
    assert band_gain(x, y, 100.0) < 0.05  # below 300 Hz
    assert band_gain(x, y, 6000.0) < 1e-3  # above the 4 kHz Nyquist limit of 8 kHz sampling
    with pytest.raises(ValueError, match="below 4000"):
        aug.band_limit(x, SR, 300.0, 4500.0)
    assert len(aug.band_limit(np.zeros(5, np.float32), SR)) == 5  # too short to filter


@pytest.mark.parametrize("kbps", [16, 32, 64])
def test_mp3_roundtrip_has_the_bitrate_and_stays_aligned(kbps: int) -> None:
    x = speechlike(2.0, seed=3)
    y = aug.mp3_roundtrip(x, SR, kbps)
    assert y.dtype == np.float32 and len(y) == len(x)
    # aligned: the decoded copy correlates with the input at lag 0, not ~1105 samples later
    assert np.corrcoef(x, y)[0, 1] > (0.9 if kbps == 16 else 0.98)
    import io

    buf = io.BytesIO()
    with sf.SoundFile(
        buf,
        "w",
        SR,
        1,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=aug._mp3_level(SR, kbps),
        bitrate_mode="CONSTANT",
    ) as f:
        f.write(x)
    measured = len(buf.getvalue()) * 8 / (len(x) / SR) / 1000
    assert measured == pytest.approx(kbps, rel=0.15)
    with pytest.raises(ValueError, match="8-160 kbit/s"):
        aug.mp3_roundtrip(x, SR, 500)


def test_lossy_codec_removes_more_at_lower_bitrates() -> None:
    x = speechlike(2.0, seed=4)
    err = [float(np.mean((aug.mp3_roundtrip(x, SR, k) - x) ** 2)) for k in (16, 32, 64)]
    assert err[0] > err[1] > err[2] > 0


def test_telephone_and_codec_augmentations_and_conditions() -> None:
    seen: set[str] = set()
    for seed in range(30):
        params = aug.draw_augment(["telephone", "codec"], np.random.default_rng(seed))
        seen |= set(params)
        if "telephone" in params:
            assert 200 <= params["telephone"]["low_hz"] <= 400
            assert 3000 <= params["telephone"]["high_hz"] <= 3800
        if "codec" in params:
            assert params["codec"]["kbps"] in aug.MP3_BITRATES_KBPS
    assert seen == {"telephone", "codec"}
    # the older kinds draw the same chains as before the new kinds were added at the end
    assert aug.draw_augment(["noise", "gain"], np.random.default_rng(1)) == aug.draw_augment(
        ["noise", "gain", "telephone"][:2], np.random.default_rng(1)
    )
    assert aug.CHAIN_ORDER[:4] == ("pitch", "reverb", "noise", "gain")
    x = speechlike(1.0)
    y, _ = aug.parse_condition("telephone").apply(x, SR, np.random.default_rng(0))
    assert np.array_equal(y, aug.band_limit(x, SR))
    y, _ = aug.parse_condition("mp3:32").apply(x, SR, np.random.default_rng(0))
    assert np.array_equal(y, aug.mp3_roundtrip(x, SR, 32))
    assert aug.condition_transform("mp3:32").variant != aug.condition_transform("telephone").variant
    for bad, match in [("telephone:3", "no value"), ("mp3", "needs a number"), ("mp3:999", "kbit")]:
        with pytest.raises(ValueError, match=match):
            aug.parse_condition(bad)
