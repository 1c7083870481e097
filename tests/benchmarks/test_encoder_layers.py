"""benchmarks/encoder_layers.py: every layer of an encoder cached in one pass per clip, under
the keys that ``--feature-param layer=K`` runs look up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_module, write_tone
from tiny_whisper import make_tiny_whisper

from emovox.apps.cli.options import load_specs
from emovox.augment import augment_transform, condition_transform
from emovox.features import FeatureCache, extract_files


def whisper_and_tones(tmp_path: Path, n: int) -> tuple[str, list[str]]:
    """A tiny Whisper folder and ``n`` tones of different lengths and pitches."""
    folder = str(make_tiny_whisper(tmp_path / "whisper"))
    paths = [
        str(write_tone(tmp_path / f"{i}.wav", 0.5 + 0.25 * i, freq=150.0 * (i + 1)))
        for i in range(n)
    ]
    return folder, paths


def test_every_layer_is_cached_as_the_single_layer_feature_computes_it(tmp_path: Path) -> None:
    mod = benchmark_module("encoder_layers")
    folder, paths = whisper_and_tones(tmp_path, 3)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    cache = FeatureCache(tmp_path / "cache")
    features = mod.layer_features(folder)
    assert [f.layer for f in features] == [0, 1, 2]
    errors = mod.fill(features, [*paths, str(tmp_path / "bad.wav")], cache, progress=False)
    assert list(errors) == [str(tmp_path / "bad.wav")]  # reported, the others cached
    for f in features:
        cached = [cache.get(f, p) for p in paths]
        fresh, _ = extract_files(f, paths, cache=None, progress=False)
        for a, b in zip(cached, fresh, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    errors = mod.fill(features, paths, cache, condition="gain:20", progress=False)
    assert not errors
    variant = condition_transform("gain:20").variant
    info = cache.info(features[2], paths[0], variant)
    assert info is not None and info["clipped"] > 0  # a tone at +20 dB clips
    stamp = {p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.npy")}
    mod.fill(features, paths, cache, progress=False)  # all there: nothing recomputed
    assert {p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.npy")} == stamp
    # the feature settings reach every layer's feature (and its cache key)
    settings = {"level": "rms", "denoise": "wiener", "declip": True, "declip_method": "sparse"}
    cleaned = mod.layer_features(folder, up_to=1, settings=settings)
    assert [f.layer for f in cleaned] == [0, 1]
    for f in cleaned:
        assert (f.level, f.denoise, f.declip, f.declip_method) == ("rms", "wiener", True, "sparse")
    joined = mod.joined_features(folder, ["0,1:mean"], settings=settings)[0]
    assert joined.denoise == "wiener" and joined.declip_method == "sparse"
    assert cache.get(cleaned[1], paths[0]) is None  # another key than the plain layer's


def test_joined_layers_are_built_from_the_cached_single_layers(tmp_path: Path) -> None:
    mod = benchmark_module("encoder_layers")
    folder, paths = whisper_and_tones(tmp_path, 2)
    cache = FeatureCache(tmp_path / "cache")
    features = mod.layer_features(folder)
    joined = mod.joined_features(folder, ["2,0", "1,2:mean"])
    mod.fill(features, paths, cache, progress=False)  # the single layers alone first
    assert all(cache.get(j, p) is None for j in joined for p in paths)
    assert mod.join(joined[0], features, paths, cache) == 2
    mod.fill(features, paths, cache, progress=False, joined=joined)  # builds "1,2:mean"
    assert joined[1].combine == "mean" and cache.get(joined[1], paths[0]).shape == (1, 32, 1)
    mod.fill(features, paths, cache, condition="gain:20", progress=False, joined=joined)
    variant = condition_transform("gain:20").variant
    for j in joined:
        fresh, _ = extract_files(j, paths, cache=None, progress=False)
        for p, want in zip(paths, fresh, strict=True):
            np.testing.assert_allclose(cache.get(j, p), want, rtol=1e-5, atol=1e-6)
        assert cache.get(j, paths[0], variant) is not None
        assert cache.info(j, paths[0], variant)["clipped"] > 0  # the condition's record kept
    (tmp_path / "cache" / FeatureCache.config_key(features[1])).rename(tmp_path / "gone")
    assert mod.join(joined[1], features, paths, FeatureCache(tmp_path / "cache")) == 0


def test_up_to_and_augmented_copies_fill_the_keys_a_training_run_reads(
    tmp_path: Path, synth_corpus: Path
) -> None:
    mod = benchmark_module("encoder_layers")
    folder = str(make_tiny_whisper(tmp_path / "whisper"))
    cache_dir = tmp_path / "cache"
    common = [
        "--encoder", folder, "--train", f"ravdess:{synth_corpus}", "--cache-dir", str(cache_dir),
        "--quiet",
    ]  # fmt: skip
    with pytest.raises(SystemExit):  # layer 2 is above --up-to 1
        mod.main([*common, "--up-to", "1", "--join", "1,2:mean"])
    with pytest.raises(SystemExit):  # the tiny encoder has states 0-2
        mod.main([*common, "--up-to", "3"])
    assert mod.main([
        *common, "--up-to", "1", "--join", "0,1:mean", "--augment", "noise,telephone",
        "--augment-copies", "2", "--seed", "3",
    ]) == 0  # fmt: skip
    cache = FeatureCache(cache_dir)
    paths = [u.path for u in load_specs([f"ravdess:{synth_corpus}"])][:3]
    singles = mod.layer_features(folder)
    assert all(cache.get(singles[1], p) is not None for p in paths)
    assert all(cache.get(singles[2], p) is None for p in paths)  # above --up-to: not cached
    joined = mod.joined_features(folder, ["0,1:mean"])[0]
    for copy in range(2):
        transform = augment_transform("noise,telephone", 3, copy)
        fresh, _ = extract_files(joined, paths, transform=transform, progress=False)
        for p, want in zip(paths, fresh, strict=True):  # the pipeline's copy, under its key
            np.testing.assert_allclose(
                cache.get(joined, p, transform.variant), want, rtol=1e-5, atol=1e-6
            )
