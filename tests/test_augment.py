"""Speed perturbation: the augmentation itself, its cache entries, and its use in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import (
    TINY_CNN,
    peak_frequency,
    synth_manifest,
    synth_scheme,
    tiny_config,
    tone,
    write_tone,
)

from emovox.augment import speed_perturb
from emovox.features import FeatureCache, LogMel, extract_files
from emovox.pipeline import fit, load_dataset
from emovox.training import TrainConfig, Trainer


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
    _model, result, _ = fit(
        data, range(len(data.features)), "cnn", config, TINY_CNN, progress=False
    )
    assert len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])
    assert seen and all(isinstance(x, tuple) and len(x) == 3 for x in seen)
    # the variants are really different: slower copies are longer
    assert all(x[1].shape[-1] > x[0].shape[-1] > x[2].shape[-1] for x in seen)
