"""Redrawing hard-clipped runs before features (``emovox.features.declip``, ``declip=true``)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features import feature_from_dict, make_feature
from emovox.features.cache import FeatureCache
from emovox.features.declip import MAX_GAIN, METHODS, clipped_mask, declip, runs_at_least

SR = 16000


def voice(seconds: float = 0.5, f0: float = 150.0) -> np.ndarray:
    """A vowel-like wave: eight harmonics of ``f0`` with falling amplitudes, peak 1."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 9))
    return (x / np.abs(x).max()).astype(np.float32)


def test_runs_at_least_keeps_only_the_long_runs() -> None:
    flags = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], dtype=bool)
    assert runs_at_least(flags, 2).tolist() == [0, 0, 1, 1, 0, 1, 1, 1, 0, 0]
    assert runs_at_least(flags, 3).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert runs_at_least(flags, 1).tolist() == flags.tolist()
    assert not runs_at_least(np.zeros(4, dtype=bool), 2).any()


def test_the_mask_finds_the_flat_runs_of_each_side_and_nothing_in_clean_audio() -> None:
    x = voice()
    assert not clipped_mask(x).any()  # peaks are single samples, not runs
    loud = np.clip(2 * x, -1, 1)
    mask = clipped_mask(loud)
    assert np.array_equal(mask, runs_at_least(np.abs(2 * x) >= 1, 2))
    assert mask.sum() > 100
    one_side = np.minimum(2 * x, 0.9)  # only the positive side hit a limit (below full scale)
    mask = clipped_mask(one_side)
    assert mask.any() and np.all(one_side[mask] == pytest.approx(0.9))
    int16 = np.clip(np.round(2 * x * 32768), -32768, 32767) / 32768  # +32767 / -32768
    assert np.array_equal(clipped_mask(int16), runs_at_least(np.abs(2 * x) >= 32767 / 32768, 2))


def test_declip_redraws_the_runs_closer_to_the_true_wave() -> None:
    x = voice()
    for drive in (1.25, 1.5):  # a sixth and a fifth of the samples clipped
        true = drive * x
        loud = np.clip(true, -1, 1).astype(np.float32)
        fixed = declip(loud)
        mask = clipped_mask(loud)
        assert fixed.dtype == np.float32 and fixed.shape == loud.shape
        assert np.array_equal(fixed[~mask], loud[~mask])  # only the runs change
        assert np.all(np.abs(fixed[mask]) >= np.abs(loud[mask]))  # never below the ceiling
        assert np.all(np.abs(fixed[mask]) <= MAX_GAIN + 1e-6)
        before = np.abs(loud - true)[mask].mean()
        after = np.abs(fixed - true)[mask].mean()
        assert after < 0.5 * before, (drive, before, after)


def speech_like(seconds: float = 1.0) -> np.ndarray:
    """Voiced syllables: harmonics of a gliding pitch under a rising and falling envelope,
    with a little noise between them; peak 1."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 40 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase + k) / k for k in range(1, 13))
    x = x * np.sin(np.pi * 4 * t) ** 2 + 0.01 * rng.standard_normal(t.size)
    return (x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("drive", [1.5, 3.0])
def test_the_sparse_method_is_consistent_and_closer_than_the_spline_when_much_is_clipped(
    drive: float,
) -> None:
    true = drive * speech_like()
    loud = np.clip(true, -1, 1).astype(np.float32)
    mask = clipped_mask(loud)
    fixed = declip(loud, "sparse")
    assert fixed.dtype == np.float32 and fixed.shape == loud.shape
    assert np.array_equal(fixed[~mask], loud[~mask])  # only the runs change
    assert np.all(np.abs(fixed[mask]) >= np.abs(loud[mask]))  # at or beyond the ceiling
    assert np.all(np.sign(fixed[mask]) == np.sign(loud[mask]))
    assert np.all(np.abs(fixed[mask]) <= MAX_GAIN + 1e-6)

    def sdr(y: np.ndarray) -> float:
        return float(10 * np.log10(np.sum(true**2) / np.sum((y - true) ** 2)))

    assert sdr(fixed) > sdr(declip(loud)) + 3, (sdr(declip(loud)), sdr(fixed))
    if drive == 1.5:  # a twentieth of the samples clipped: far closer than the clipped wave
        assert sdr(fixed) > sdr(loud) + 10, (sdr(loud), sdr(fixed))


def test_declip_leaves_clean_or_hopeless_audio_alone() -> None:
    x = voice()
    square = np.sign(voice()).astype(np.float32)  # everything at the ceiling
    square[square == 0] = 1.0
    for method in METHODS:
        assert declip(x, method) is x
        assert declip(square, method) is square
        assert declip(np.zeros(100, dtype=np.float32), method).tolist() == [0.0] * 100
        with pytest.raises(ValueError, match="1-D"):
            declip(np.zeros((2, 100), dtype=np.float32), method)
    with pytest.raises(ValueError, match="spline, sparse"):
        declip(x, "cubic")


def test_the_feature_setting_declips_before_computing_and_is_saved_only_when_on() -> None:
    plain, fixed = make_feature("logmel"), make_feature("logmel", declip=True)
    assert "declip" not in plain.to_dict()  # configurations made before it read the same
    assert fixed.to_dict()["declip"] is True
    assert feature_from_dict(fixed.to_dict()) == fixed
    assert feature_from_dict(plain.to_dict()) == plain
    assert FeatureCache.config_key(plain) != FeatureCache.config_key(fixed)
    x = voice(1.0)
    assert np.array_equal(plain.extract(x), fixed.extract(x))  # clean audio: the same features
    loud = np.clip(1.5 * x, -1, 1).astype(np.float32)
    ref = plain.extract(x)
    err_plain = np.abs(plain.extract(loud) - ref).mean()
    err_fixed = np.abs(fixed.extract(loud) - ref).mean()
    assert err_fixed < 0.8 * err_plain
    with pytest.raises(ValueError, match="true or false"):
        feature_from_dict({**fixed.to_dict(), "declip": "yes"})


def test_the_declip_method_is_a_setting_saved_only_when_it_is_not_the_spline() -> None:
    spline = make_feature("logmel", declip=True, declip_method="spline")
    sparse = make_feature("logmel", declip=True, declip_method="sparse")
    assert spline.to_dict() == make_feature("logmel", declip=True).to_dict()  # as before
    assert sparse.to_dict()["declip_method"] == "sparse"
    assert "declip_method" not in make_feature("logmel", declip_method="sparse").to_dict()
    assert feature_from_dict(sparse.to_dict()) == sparse
    assert FeatureCache.config_key(spline) != FeatureCache.config_key(sparse)
    for name in ("logmel", "functionals", "mfcc"):
        with pytest.raises(ValueError, match="declip method must be one of spline, sparse"):
            make_feature(name, declip=True, declip_method="magic")
    x = voice(1.0)
    assert np.array_equal(sparse.extract(x), make_feature("logmel").extract(x))
    loud = np.clip(1.5 * speech_like(), -1, 1).astype(np.float32)
    ref = make_feature("logmel").extract(1.5 * speech_like())
    err_plain, err_spline, err_sparse = (
        np.abs(f.extract(loud) - ref).mean() for f in (make_feature("logmel"), spline, sparse)
    )
    assert err_sparse < 0.7 * err_spline < 0.7 * err_plain, (err_plain, err_spline, err_sparse)


def test_utterance_features_declip_too() -> None:
    x = voice(1.0)
    loud = np.clip(4 * x, -1, 1).astype(np.float32)
    plain, fixed = make_feature("functionals"), make_feature("functionals", declip=True)
    assert np.array_equal(plain.extract(x), fixed.extract(x))
    assert not np.array_equal(plain.extract(loud), fixed.extract(loud))
