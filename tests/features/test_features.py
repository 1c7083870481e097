"""Features: agreement with librosa, batching, normalisation, trimming, configs and the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from conftest import tone, write_tone

from emovox.audio import load_audio
from emovox.features import (
    FEATURES,
    MFCC,
    FeatureCache,
    LogMel,
    TutorialMFCC,
    extract_files,
    feature_from_dict,
    make_feature,
)
from emovox.features.logmel import CMVN_STD_FLOOR_DB

SR = 16000


def _signal(seconds: float = 1.0, seed: int = 0, sr: int = SR) -> np.ndarray:
    """A speech-like test signal: two tones, a chirp-ish amplitude change and a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    env = 0.5 + 0.4 * np.sin(2 * np.pi * 3 * t)
    y = env * (0.4 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1800 * t))
    y += 0.02 * rng.standard_normal(n)
    return y.astype(np.float32)


def _librosa_logmel(y: np.ndarray, top_db: float | None) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=512, hop_length=160, win_length=400, n_mels=64
    )
    return librosa.power_to_db(mel, top_db=top_db)


# -- agreement with librosa ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_logmel_matches_librosa_without_top_db(seed):
    y = _signal(1.0, seed)
    ours = LogMel(normalize="none", top_db=None).extract(y)
    ref = _librosa_logmel(y, top_db=None)
    assert ours.shape == (1, *ref.shape)
    np.testing.assert_allclose(ours[0], ref, atol=1e-3, rtol=0)


def test_logmel_matches_librosa_with_top_db():
    y = _signal(1.0)
    y[: SR // 4] *= 1e-4  # a quiet stretch, so that the 80 dB floor really clips
    ours = LogMel(normalize="none", top_db=80.0).extract(y)
    ref = _librosa_logmel(y, top_db=80.0)
    assert ref.min() == pytest.approx(ref.max() - 80.0, abs=1e-3)  # the clip is active
    np.testing.assert_allclose(ours[0], ref, atol=1e-3, rtol=0)


def test_mfcc_matches_librosa():
    y = _signal(1.3, seed=4)
    ours = MFCC(n_fft=2048, hop_length=512, win_length=2048, n_mfcc=13, normalize="none").extract(y)
    ref = librosa.feature.mfcc(y=y, sr=SR, n_fft=2048, hop_length=512, win_length=2048, n_mfcc=13)
    assert ours.shape == (1, 13, ref.shape[1])
    np.testing.assert_allclose(ours[0], ref, atol=1e-3, rtol=0)


def test_deltas_match_librosa_away_from_edges():
    y = _signal(1.0, seed=2)
    ours = LogMel(normalize="none", top_db=None, deltas=2).extract(y)
    ref = _librosa_logmel(y, top_db=None)
    d1 = librosa.feature.delta(ref, width=9)
    d2 = librosa.feature.delta(d1, width=9)
    assert ours.shape == (3, 64, ref.shape[1])
    np.testing.assert_allclose(ours[0], ref, atol=1e-3, rtol=0)
    np.testing.assert_allclose(ours[1][:, 4:-4], d1[:, 4:-4], atol=1e-3, rtol=0)
    np.testing.assert_allclose(ours[2][:, 8:-8], d2[:, 8:-8], atol=1e-3, rtol=0)


# -- shapes and batching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "bins"),
    [
        (LogMel(), 64),
        (LogMel(n_mels=40, deltas=1), 40),
        (LogMel(deltas=2, normalize="cmvn"), 64),
        (MFCC(), 40),
        (MFCC(n_mfcc=20, deltas=2), 20),
    ],
)
def test_output_shape(feature, bins):
    y = _signal(0.73)
    out = feature.extract(y)
    assert out.dtype == np.float32
    assert out.shape == (1 + feature.deltas, bins, 1 + len(y) // feature.hop_length)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize(
    "feature",
    [
        LogMel(normalize="none", top_db=None),
        LogMel(),
        LogMel(deltas=2),
        MFCC(deltas=1),
        LogMel(normalize="cmvn", deltas=1, trim_db=30.0),
    ],
    ids=["logmel-raw", "logmel", "logmel-d2", "mfcc-d1", "logmel-cmvn-trim"],
)
def test_batch_equals_one_by_one(feature):
    lengths = [16000, 4321, 12000, 8000, 1601, 9999]
    waves = [_signal(n / SR, seed=i)[:n] for i, n in enumerate(lengths)]
    batched = feature(waves, batch_size=4)  # two batches, each padded to its longest item
    assert len(batched) == len(waves)
    for wave, got in zip(waves, batched, strict=True):
        alone = feature.extract(wave)
        assert got.shape == alone.shape
        np.testing.assert_allclose(got, alone, atol=1e-4, rtol=0)
        if feature.trim_db is None:
            assert got.shape[-1] == 1 + len(wave) // feature.hop_length


def test_batch_keeps_input_order():
    f = LogMel(normalize="none", top_db=None)
    waves = [tone(0.5, SR, 300.0), tone(1.0, SR, 3000.0), tone(0.3, SR, 1000.0)]
    out = f(waves, batch_size=2)
    mel_freqs = librosa.mel_frequencies(n_mels=64, fmax=SR / 2)
    peaks = [mel_freqs[int(np.argmax(o[0].mean(axis=1)))] for o in out]
    assert peaks[0] < 500 < peaks[2] < 1500 < peaks[1]
    assert [o.shape[-1] for o in out] == [51, 101, 31]


def test_hop_seconds():
    assert LogMel().hop_seconds == pytest.approx(0.01)
    assert MFCC(hop_length=320).hop_seconds == pytest.approx(0.02)


# -- normalisation -------------------------------------------------------------------------------


def test_utterance_normalisation_is_gain_invariant():
    y = _signal(1.0, seed=5)
    f = LogMel(normalize="utterance")
    loud, quiet = f.extract(y), f.extract(0.1 * y)
    np.testing.assert_allclose(loud, quiet, atol=1e-3, rtol=0)
    assert abs(float(loud.mean())) < 1e-4
    assert float(loud.std()) == pytest.approx(1.0, abs=1e-3)
    # without normalisation the gain shows (20 dB)
    raw = LogMel(normalize="none", top_db=None)
    assert float(raw.extract(y).mean() - raw.extract(0.1 * y).mean()) == pytest.approx(20, abs=0.5)


def test_utterance_normalisation_keeps_spectral_shape():
    """Utterance normalisation is one affine map for all bins, unlike cmvn."""
    y = _signal(1.0, seed=6)
    raw = LogMel(normalize="none").extract(y)[0]
    norm = LogMel(normalize="utterance").extract(y)[0]
    expected = (raw - raw.mean()) / raw.std()
    np.testing.assert_allclose(norm, expected, atol=1e-3)


def test_cmvn_per_bin():
    y = _signal(1.0, seed=7)
    out = LogMel(normalize="cmvn").extract(y)[0]
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=1), 1.0, atol=1e-2)
    mfcc = MFCC().extract(y)[0]  # cmvn is MFCC's default
    np.testing.assert_allclose(mfcc.mean(axis=1), 0.0, atol=1e-4)


def test_cmvn_floor_keeps_a_band_limited_bin_near_zero():
    """A telephone-band clip leaves its top mel bins with faint hiss alone, nearly constant:
    ``cmvn`` blows that residue up to unit variance, ``cmvn-floor`` keeps it small and leaves
    the bins with speech exactly as ``cmvn`` does."""
    import scipy.signal

    y = _signal(1.5, seed=10)
    narrow = scipy.signal.resample_poly(scipy.signal.resample_poly(y, 1, 2), 2, 1)  # 8 kHz
    hiss = np.random.default_rng(0).normal(0, 1e-4 * np.abs(y).max(), len(y))  # ~ -75 dB
    band = (narrow[: len(y)] + hiss).astype(np.float32)
    raw = LogMel(normalize="none").extract(band)[0]
    quiet = raw.std(axis=1) < 2.0  # the bins above the band: hiss, varying by 1-2 dB
    assert quiet[-8:].all()
    plain = LogMel(normalize="cmvn").extract(band)[0]
    floored = LogMel(normalize="cmvn-floor").extract(band)[0]
    np.testing.assert_allclose(plain[quiet].std(axis=1), 1.0, atol=1e-2)  # at speech scale
    assert floored[quiet].std(axis=1).max() < 2.0 / CMVN_STD_FLOOR_DB  # kept small
    loud = raw.std(axis=1) > CMVN_STD_FLOOR_DB
    np.testing.assert_allclose(floored[loud], plain[loud], atol=1e-4)


def test_normalisation_ignores_padding_in_a_batch():
    short, long = _signal(0.4, seed=8), _signal(1.5, seed=9)
    for norm in ("utterance", "cmvn"):
        f = LogMel(normalize=norm)
        out = f([short, long])[0]
        axis = None if norm == "utterance" else 1
        np.testing.assert_allclose(out[0].mean(axis=axis), 0.0, atol=1e-4)


# -- trimming ------------------------------------------------------------------------------------


def test_trim_db_removes_leading_and_trailing_silence():
    burst = tone(0.5, SR, 440.0)
    padded = np.concatenate([np.zeros(SR, np.float32), burst, np.zeros(SR, np.float32)])
    f = LogMel(normalize="none", trim_db=40.0)
    untrimmed = LogMel(normalize="none").extract(padded)
    trimmed = f.extract(padded)
    assert untrimmed.shape[-1] == 1 + len(padded) // 160  # 251
    tone_frames = len(burst) // 160  # 50
    assert abs(trimmed.shape[-1] - tone_frames) <= 6
    # what remains is the tone, not silence
    assert trimmed[0].max(axis=0).min() > untrimmed[0].max() - 40.0
    # trimming a tone without silence keeps (nearly) everything
    assert f.extract(burst).shape[-1] >= 1 + len(burst) // 160 - 2


def test_trim_db_works_for_mfcc_and_batches():
    burst = tone(0.3, SR, 600.0)
    padded = np.concatenate([np.zeros(SR // 2, np.float32), burst, np.zeros(SR, np.float32)])
    f = MFCC(trim_db=30.0, deltas=1)
    out = f([padded, burst])
    assert abs(out[0].shape[-1] - len(burst) // 160) <= 6
    assert out[0].shape[0] == 2


# -- devices -------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    waves = [_signal(1.0, seed=1), _signal(0.6, seed=2)]
    for f in (LogMel(deltas=2), MFCC(normalize="none")):
        cpu = f(waves)
        gpu = f(waves, device="cuda")
        for a, b in zip(cpu, gpu, strict=True):
            assert isinstance(b, np.ndarray)
            np.testing.assert_allclose(a, b, atol=2e-2, rtol=1e-3)


# -- the tutorial's MFCC summary -----------------------------------------------------------------


def _tutorial_reference(path) -> np.ndarray:
    y = load_audio(path, sr=44100, offset=0.5, duration=2.5)
    return np.mean(librosa.feature.mfcc(y=y, sr=44100, n_mfcc=13), axis=0)


def test_tutorial_mfcc_matches_the_tutorial(tmp_path):
    path = tmp_path / "three.wav"
    rng = np.random.default_rng(0)
    y = np.concatenate([tone(1.5, 44100, 300.0), tone(1.5, 44100, 900.0)])
    y += 0.01 * rng.standard_normal(len(y)).astype(np.float32)
    import soundfile as sf

    sf.write(path, y, 44100, subtype="PCM_16")
    f = TutorialMFCC()
    (out,), errors = extract_files(f, [path], progress=False)
    assert errors == {}
    assert out.shape == (1, 1, 216)
    ref = _tutorial_reference(path)
    assert ref.shape == (216,)
    np.testing.assert_allclose(out[0, 0], ref, atol=1e-3, rtol=1e-5)
    # the same through load + extract
    np.testing.assert_allclose(f.extract(f.load(path)), out, atol=1e-6)


def test_tutorial_mfcc_resamples_other_rates(tmp_path):
    path = write_tone(tmp_path / "sixteen.wav", seconds=3.0, sr=16000, freq=500.0)
    f = TutorialMFCC()
    out = f.extract(f.load(path))
    assert out.shape == (1, 1, 216)
    np.testing.assert_allclose(out[0, 0], _tutorial_reference(path), atol=1e-3, rtol=1e-5)


def test_tutorial_mfcc_pads_short_files(tmp_path):
    path = write_tone(tmp_path / "one.wav", seconds=1.0, sr=44100, freq=400.0)
    f = TutorialMFCC()
    out = f.extract(f.load(path))
    assert out.shape == (1, 1, 216)
    ref = _tutorial_reference(path)  # 0.5 s read from 0.5 s: 1 + 22050 // 512 frames
    assert len(ref) == 44
    np.testing.assert_allclose(out[0, 0, :44], ref, atol=1e-3, rtol=1e-5)
    assert np.all(out[0, 0, 44:] == 0)
    assert np.all(out[0, 0, :44] != 0)


def test_tutorial_mfcc_reads_from_the_start_when_shorter_than_the_offset(tmp_path):
    path = write_tone(tmp_path / "blip.wav", seconds=0.3, sr=44100, freq=400.0)
    f = TutorialMFCC()
    audio = f.load(path)
    assert len(audio) == int(0.3 * 44100)
    assert f.extract(audio).shape == (1, 1, 216)


# -- configurations ------------------------------------------------------------------------------


NON_DEFAULT = {
    "logmel": {"n_mels": 40, "deltas": 1, "fmax": 7600.0, "top_db": None, "trim_db": 35.0},
    "mfcc": {"n_mfcc": 20, "normalize": "utterance", "hop_length": 320},
    "tutorial-mfcc": {"offset": 0.25, "n_frames": 100},
    "egemaps": {"min_seconds": 0.3, "sample_rate": 22050},
    "librosa-stats": {"n_mfcc": 20, "n_mels": 64, "sample_rate": 16000},
    "logmel-egemaps": {"n_mels": 32, "egemaps_level_db": None, "trim_db": None},
    "functionals": {"level_db": -30.0, "sample_rate": 22050},
    "logmel-functionals": {"n_mels": 32, "functionals_level_db": -26.0, "trim_db": 40.0},
    "logmel-functionals-egemaps": {"n_mels": 40, "egemaps_level_db": None},
    "encoder": {"layer": 1},
    "encoder-pooled": {"layer": 0, "pooling": "mean"},
}

NEEDS_ENCODER = ("encoder", "encoder-pooled")
"""Features that need a pretrained encoder's folder (``path``)."""


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_feature_config_round_trip(name, request):
    required = {}
    if name in NEEDS_ENCODER:
        required = {"path": str(request.getfixturevalue("tiny_encoder"))}
    for params in ({}, NON_DEFAULT[name]):
        f = make_feature(name, **required, **params)
        assert isinstance(f, FEATURES[name])
        d = f.to_dict()
        assert d["name"] == name
        again = feature_from_dict(json.loads(json.dumps(d)))
        assert type(again) is type(f)
        assert again == f
        assert again.to_dict() == d
    assert make_feature(name, **required, **NON_DEFAULT[name]) != make_feature(name, **required)


def test_every_registered_feature_has_non_default_params_tested():
    assert set(NON_DEFAULT) == set(FEATURES)


def test_unknown_feature_and_bad_params():
    with pytest.raises(ValueError, match="unknown feature"):
        make_feature("wav2vec9")
    with pytest.raises(ValueError, match="unknown feature"):
        feature_from_dict({"name": "nope"})
    with pytest.raises(ValueError, match="bad parameters"):
        make_feature("logmel", n_mel=64)
    with pytest.raises(ValueError, match="normalize"):
        LogMel(normalize="global")
    with pytest.raises(ValueError, match="deltas"):
        MFCC(deltas=3)


# -- extract_files and the cache -----------------------------------------------------------------


class _CountingLoads:
    def __init__(self, feature, monkeypatch):
        self.calls: list[str] = []
        original = feature.load

        def load(path):
            self.calls.append(Path(path).name)
            return original(path)

        monkeypatch.setattr(feature, "load", load)


@pytest.fixture
def some_files(tmp_path):
    good = [
        write_tone(tmp_path / "audio" / f"t{i}.wav", seconds=0.3 + 0.1 * i, freq=200.0 * (i + 1))
        for i in range(3)
    ]
    missing = tmp_path / "audio" / "gone.wav"
    text = tmp_path / "audio" / "words.wav"
    text.write_text("definitely not audio\n" * 10)
    return good, missing, text


def test_extract_files_reports_bad_files(some_files):
    good, missing, text = some_files
    f = LogMel()
    paths = [good[0], missing, good[1], text, good[2]]
    out, errors = extract_files(f, paths, progress=False)
    assert set(errors) == {str(missing), str(text)}
    assert "no such file" in errors[str(missing)]
    assert "not a readable audio file" in errors[str(text)]
    assert out[1] is None and out[3] is None
    for i, p in ((0, good[0]), (2, good[1]), (4, good[2])):
        np.testing.assert_allclose(out[i], f.extract(load_audio(p)), atol=1e-5)


def test_cache_hits_on_second_call(tmp_path, some_files, monkeypatch):
    good, missing, text = some_files
    f = LogMel(deltas=1)
    cache = FeatureCache(tmp_path / "cache")
    counter = _CountingLoads(f, monkeypatch)
    first, errors1 = extract_files(f, [*good, missing, text], cache=cache, progress=False)
    assert sorted(counter.calls) == sorted(p.name for p in [*good, missing, text])
    counter.calls.clear()
    second, errors2 = extract_files(f, [*good, missing, text], cache=cache, progress=False)
    assert sorted(counter.calls) == sorted([missing.name, text.name])  # bad files are retried
    assert errors2 == errors1
    for a, b in zip(first[:3], second[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    # the cache is plain .npy files plus the configuration they were made with
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 3
    (config_dir,) = (p for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert json.loads((config_dir / "feature.json").read_text()) == f.to_dict()


def test_cache_invalidated_by_touch_and_by_edit(tmp_path, some_files, monkeypatch):
    good, _, _ = some_files
    f = LogMel()
    cache = FeatureCache(tmp_path / "cache")
    counter = _CountingLoads(f, monkeypatch)
    before, _ = extract_files(f, good, cache=cache, progress=False)
    counter.calls.clear()

    # touching (a new modification time, same content) invalidates the entry
    st = good[0].stat()
    os.utime(good[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again, _ = extract_files(f, good, cache=cache, progress=False)
    assert counter.calls == [good[0].name]
    # computed alone now, in a padded batch before: equal up to the CPU's rounding (some CPUs'
    # kernels sum in another order for another batch size)
    np.testing.assert_allclose(again[0], before[0], rtol=1e-5, atol=1e-5)
    counter.calls.clear()

    # rewriting the file with other audio of the same size gives the new features, not stale ones
    st = good[1].stat()
    write_tone(good[1], seconds=0.4, freq=3000.0)
    assert good[1].stat().st_size == st.st_size
    os.utime(good[1], ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))
    edited, _ = extract_files(f, good, cache=cache, progress=False)
    assert counter.calls == [good[1].name]
    assert not np.allclose(edited[1], before[1])
    np.testing.assert_allclose(edited[1], f.extract(load_audio(good[1])), atol=1e-5)


def test_cache_separates_configurations(tmp_path, some_files, monkeypatch):
    good, _, _ = some_files
    cache = FeatureCache(tmp_path / "cache")
    a, b = LogMel(n_mels=64), LogMel(n_mels=32)
    assert cache.config_key(a) != cache.config_key(b)
    assert cache.config_key(a) == cache.config_key(LogMel(n_mels=64))
    out_a, _ = extract_files(a, good, cache=cache, progress=False)
    counter = _CountingLoads(b, monkeypatch)
    out_b, _ = extract_files(b, good, cache=cache, progress=False)
    assert len(counter.calls) == 3  # nothing reused across configurations
    assert out_a[0].shape[1] == 64 and out_b[0].shape[1] == 32


def test_cache_separates_revisions_of_a_computation(tmp_path, some_files, monkeypatch):
    good, _, _ = some_files
    cache = FeatureCache(tmp_path / "cache")
    old = LogMel(n_mels=16)
    extract_files(old, good, cache=cache, progress=False)

    class Revised(LogMel):  # same parameters, new computation
        revision = 2

    new = Revised(n_mels=16)
    assert new.to_dict() == old.to_dict()
    assert cache.config_key(new) != cache.config_key(old)
    counter = _CountingLoads(new, monkeypatch)
    extract_files(new, good, cache=cache, progress=False)
    assert len(counter.calls) == 3  # the old computation's arrays are not served
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2


def test_damaged_cache_entry_is_recomputed(tmp_path, some_files, monkeypatch):
    good, _, _ = some_files
    f = LogMel()
    cache = FeatureCache(tmp_path / "cache")
    before, _ = extract_files(f, good[:1], cache=cache, progress=False)
    (entry,) = (tmp_path / "cache").rglob("*.npy")
    entry.write_bytes(b"garbage")
    counter = _CountingLoads(f, monkeypatch)
    after, errors = extract_files(f, good[:1], cache=cache, progress=False)
    assert errors == {} and counter.calls == [good[0].name]
    np.testing.assert_array_equal(after[0], before[0])


def test_relative_floor_makes_quiet_audio_gain_invariant() -> None:
    """With a tiny absolute floor, top_db alone sets the floor: a quiet utterance with digital
    silence keeps exactly its normalised features 20 and 40 dB quieter."""
    rng = np.random.default_rng(0)
    speech = 0.003 * rng.standard_normal(16000).astype(np.float32)  # about -50 dBFS
    audio = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(8000, np.float32)])
    relative = LogMel(amin=1e-20)
    base = relative.extract(audio)
    for gain in (0.1, 0.01):
        assert np.abs(relative.extract(audio * gain) - base).max() < 1e-3
    # the librosa-compatible default floor (-100 dB) is what breaks invariance on such audio
    default = LogMel()
    assert np.abs(default.extract(audio * 0.01) - default.extract(audio)).max() > 0.05


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [
        (16000, 512, 64, 0.0, None),
        (16000, 400, 40, 20.0, 7600.0),
        (44100, 2048, 128, 0.0, None),
        (8000, 256, 23, 50.0, 3800.0),
    ],
)
def test_mel_filterbank_is_librosas_without_importing_it(sr, n_fft, n_mels, fmin, fmax) -> None:
    from emovox.features.spectral import _mel_filters_np

    ours = _mel_filters_np(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [(16000, 512, 64, 0.0, None), (16000, 400, 40, 20.0, 7600.0), (8000, 256, 23, 50.0, 3800.0)],
)
def test_banded_mel_product_equals_the_dense_one(sr, n_fft, n_mels, fmin, fmax) -> None:
    from emovox.features.spectral import apply_mel, mel_filters

    power = torch.rand(3, n_fft // 2 + 1, 17) ** 4 * 100.0  # a wide dynamic range
    dense = mel_filters(sr, n_fft, n_mels, fmin, fmax) @ power
    banded = apply_mel(power, sr, n_fft, n_mels, fmin, fmax)
    assert banded.shape == dense.shape
    torch.testing.assert_close(banded, dense, rtol=1e-5, atol=1e-6)


def test_power_spectrogram_is_the_squared_magnitude() -> None:
    from emovox.features.spectral import power_spectrogram

    audio = torch.randn(2, 4000)
    window = torch.hann_window(400)
    spec = torch.stft(audio, 512, 160, 400, window, pad_mode="constant", return_complex=True)
    torch.testing.assert_close(power_spectrogram(audio, 512, 160, 400), spec.abs() ** 2)
