"""Filtering steady background noise out before features (``emovox.features.denoise``,
``--feature-param denoise=wiener``)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features import feature_from_dict, make_feature
from emovox.features.cache import FeatureCache
from emovox.features.denoise import FRAME, GAIN_FLOOR, denoise, noise_power, wiener_gains

SR = 16000


def utterance(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Three vowel-like bursts (harmonics of a gliding f0 under a smooth envelope) with digital
    silence between them, peak 0.5: speech with pauses, recorded in a quiet studio."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wave = sum(np.sin(k * phase + rng.uniform(0, 6)) / k for k in range(1, 12))
    envelope = np.zeros(n)
    for start in (0.15, 0.8, 1.4):
        a, b = int(start * SR), int((start + 0.4) * SR)
        envelope[a:b] = np.hanning(b - a)
    x = wave * envelope
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``x`` plus white noise at ``snr_db`` (over the whole clip), and the noise."""
    noise = np.random.default_rng(seed).standard_normal(len(x))
    noise *= np.sqrt(np.mean(x.astype(np.float64) ** 2) / 10 ** (snr_db / 10) / np.mean(noise**2))
    return (x + noise).astype(np.float32), noise.astype(np.float32)


def snr(clean: np.ndarray, other: np.ndarray) -> float:
    """dB of ``clean`` over what ``other`` differs from it by."""
    clean64 = clean.astype(np.float64)
    return 10 * np.log10(np.sum(clean64**2) / np.sum((other - clean64) ** 2))


def test_noise_is_lowered_and_clean_speech_comes_back_unchanged() -> None:
    x = utterance()
    noisy, _ = with_noise(x, 10.0)
    out = denoise(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert snr(x, out) > snr(x, noisy) + 4.0, (snr(x, noisy), snr(x, out))
    # in the pauses the noise falls by at least 10 dB (it is lowered, not gated: the floor)
    pause = slice(int(0.6 * SR), int(0.75 * SR))
    drop = 10 * np.log10(np.mean(noisy[pause] ** 2) / np.mean(out[pause] ** 2))
    assert 10.0 < drop <= -20 * np.log10(GAIN_FLOOR) + 1.0, drop
    # a studio recording (digital silence in its pauses) is left all but as it was
    assert snr(x, denoise(x)) > 60.0


def test_the_filter_follows_the_recordings_gain() -> None:
    noisy, _ = with_noise(utterance(seed=2), 5.0)
    np.testing.assert_allclose(denoise(0.1 * noisy), 0.1 * denoise(noisy), atol=1e-6)


def test_the_noise_is_the_quietest_frames_and_the_gains_stay_in_range() -> None:
    power = np.ones((4, 40))
    power[:, :30] = 100.0  # 30 loud frames, 10 quiet ones
    assert np.allclose(noise_power(power), 1.0)
    gains = wiener_gains(power, noise_power(power))
    assert gains.shape == power.shape
    assert np.all(gains >= GAIN_FLOOR) and np.all(gains < 1.0)
    assert gains[:, 29].min() > 0.9 and gains[:, 39].max() < 0.2
    silent = np.zeros((3, 10))
    silent[1] = 1.0  # one frequency with a steady tone and two with nothing at all
    assert np.all(wiener_gains(silent, noise_power(silent))[[0, 2]] == 1.0)


def test_short_silent_or_malformed_audio() -> None:
    short = np.ones(FRAME - 1, dtype=np.float32)
    assert denoise(short) is short
    silence = np.zeros(SR, dtype=np.float32)
    assert denoise(silence) is silence
    x = utterance()
    assert denoise(x, "") is x
    with pytest.raises(ValueError, match="1-D"):
        denoise(np.zeros((2, SR), dtype=np.float32))
    with pytest.raises(ValueError, match="denoise must be one of wiener"):
        denoise(x, "spectral")


def test_the_feature_setting_filters_before_computing_and_is_saved_only_when_on() -> None:
    plain, filtered = make_feature("logmel"), make_feature("logmel", denoise="wiener")
    assert "denoise" not in plain.to_dict()  # configurations made before it read the same
    assert filtered.to_dict()["denoise"] == "wiener"
    assert feature_from_dict(filtered.to_dict()) == filtered
    assert feature_from_dict(plain.to_dict()) == plain
    assert FeatureCache.config_key(plain) != FeatureCache.config_key(filtered)
    x = utterance()
    noisy, _ = with_noise(x, 10.0)
    ref = plain.extract(x)
    err_plain = np.abs(plain.extract(noisy) - ref).mean()
    err_filtered = np.abs(filtered.extract(noisy) - ref).mean()
    assert err_filtered < 0.7 * err_plain, (err_plain, err_filtered)
    for name in ("logmel", "functionals", "mfcc"):
        with pytest.raises(ValueError, match="denoise must be one of wiener"):
            make_feature(name, denoise="magic")
    # declipped first, then filtered: both settings go together
    both = make_feature("functionals", declip=True, denoise="wiener")
    loud = np.clip(4 * noisy, -1, 1).astype(np.float32)
    assert np.all(np.isfinite(both.extract(loud)))
    assert not np.array_equal(both.extract(loud), make_feature("functionals").extract(loud))


def test_cleaned_up_switches_clean_up_on_in_a_copy_and_checks_the_methods() -> None:
    plain = make_feature("functionals")
    both = plain.cleaned_up(declip="sparse", denoise="wiener")
    assert both.denoise == "wiener" and both.declip and both.declip_method == "sparse"
    assert not plain.denoise and not plain.declip  # the feature itself is not changed
    assert plain.cleaned_up() == plain and both.cleaned_up(denoise="").denoise == ""
    assert both.cleaned_up(denoise="").declip  # None keeps what is there
    with pytest.raises(ValueError, match="denoise must be one of"):
        plain.cleaned_up(denoise="spectral")
    with pytest.raises(ValueError, match="declip method must be one of"):
        plain.cleaned_up(declip="cubic")
