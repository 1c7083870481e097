"""benchmarks/encoder_layers.py: every layer of an encoder cached in one pass per clip, under
the keys that ``--feature-param layer=K`` runs look up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import benchmark_module, write_tone
from tiny_whisper import make_tiny_whisper

from emovox.augment import condition_transform
from emovox.features import FeatureCache, extract_files


def test_every_layer_is_cached_as_the_single_layer_feature_computes_it(tmp_path: Path) -> None:
    mod = benchmark_module("encoder_layers")
    folder = str(make_tiny_whisper(tmp_path / "whisper"))
    paths = [
        str(write_tone(tmp_path / f"{i}.wav", 0.5 + 0.25 * i, freq=150.0 * (i + 1)))
        for i in range(3)
    ]
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
