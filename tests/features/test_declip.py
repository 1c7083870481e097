"""Redrawing hard-clipped runs before features (``emovox.features.declip``, ``declip=true``)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features import feature_from_dict, make_feature
from emovox.features.cache import FeatureCache
from emovox.features.declip import MAX_GAIN, clipped_mask, declip, runs_at_least

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


def test_declip_leaves_clean_or_hopeless_audio_alone() -> None:
    x = voice()
    assert declip(x) is x
    square = np.sign(voice()).astype(np.float32)  # everything at the ceiling
    square[square == 0] = 1.0
    assert declip(square) is square
    assert declip(np.zeros(100, dtype=np.float32)).tolist() == [0.0] * 100
    with pytest.raises(ValueError, match="1-D"):
        declip(np.zeros((2, 100), dtype=np.float32))


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


def test_utterance_features_declip_too() -> None:
    x = voice(1.0)
    loud = np.clip(4 * x, -1, 1).astype(np.float32)
    plain, fixed = make_feature("functionals"), make_feature("functionals", declip=True)
    assert np.array_equal(plain.extract(x), fixed.extract(x))
    assert not np.array_equal(plain.extract(loud), fixed.extract(loud))
