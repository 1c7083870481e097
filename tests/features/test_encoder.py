"""Pretrained speech encoders from a local folder (``encoder``, ``encoder-pooled``,
``encoder-svm``), on tiny random wav2vec 2.0 models."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_encoder, tone

from emovox.features import FeatureCache, feature_from_dict, make_feature
from emovox.features import encoder as enc_mod
from emovox.features.encoder import ENCODER_PATH_ENV, Encoder, EncoderPooled

pytest.importorskip("transformers")


def reference(folder: Path, wave: np.ndarray, index: int) -> np.ndarray:
    """The hidden state ``index`` as transformers gives it, ``[D, T]``."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.no_grad():
        out = model(input_values=torch.from_numpy(wave)[None], output_hidden_states=True)
    return out.hidden_states[index][0].T.numpy()


def test_frames_are_the_chosen_hidden_state(tiny_encoder: Path) -> None:
    wave = tone(1.0, sr=16000, freq=220.0).astype(np.float32)
    last = Encoder(path=str(tiny_encoder))
    x = last.extract(wave)
    assert x.shape == (1, 16, 798)  # (16000 - 10) // 5 + 1 = 3199, then (3199 - 8) // 4 + 1
    assert last.hop_seconds == pytest.approx(20 / 16000)
    np.testing.assert_allclose(x[0], reference(tiny_encoder, wave, 2), rtol=1e-5, atol=1e-5)
    first = Encoder(path=str(tiny_encoder), layer=1).extract(wave)
    np.testing.assert_allclose(first[0], reference(tiny_encoder, wave, 1), rtol=1e-5, atol=1e-5)
    assert not np.allclose(first, x)
    with pytest.raises(ValueError, match=r"layer 3 out of range.*hidden states 0-2"):
        Encoder(path=str(tiny_encoder), layer=3)  # refused before any audio


def test_the_shape_is_read_without_loading_the_network(tiny_encoder: Path) -> None:
    enc_mod.load_encoder.cache_clear()
    f = EncoderPooled(path=str(tiny_encoder), layer=-2)
    assert Encoder(path=str(tiny_encoder)).hop_seconds == pytest.approx(20 / 16000)
    assert f.layer_indices() == [1] and f.hop_seconds == 0.0
    assert enc_mod.load_encoder.cache_info().currsize == 0  # cached features need no encoder


def test_pooling_summarises_the_frames(tiny_encoder: Path) -> None:
    wave = tone(0.8, sr=16000, freq=300.0).astype(np.float32)
    frames = Encoder(path=str(tiny_encoder)).extract(wave)[0]
    both = EncoderPooled(path=str(tiny_encoder)).extract(wave)
    assert both.shape == (1, 32, 1)
    np.testing.assert_allclose(both[0, :16, 0], frames.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both[0, 16:, 0], frames.std(axis=1), rtol=1e-5, atol=1e-6)
    mean = EncoderPooled(path=str(tiny_encoder), pooling="mean")
    assert mean.extract(wave).shape == (1, 16, 1) and mean.hop_seconds == 0.0
    with pytest.raises(ValueError, match="pooling must be one of mean, meanstd"):
        EncoderPooled(path=str(tiny_encoder), pooling="max")


def test_layers_stack_several_hidden_states(tiny_encoder: Path) -> None:
    wave = tone(0.9, sr=16000, freq=260.0).astype(np.float32)
    both = Encoder(path=str(tiny_encoder), layers="0,2").extract(wave)
    assert both.shape[:2] == (1, 32)
    np.testing.assert_allclose(both[0, :16], reference(tiny_encoder, wave, 0), atol=1e-5)
    np.testing.assert_allclose(both[0, 16:], reference(tiny_encoder, wave, 2), atol=1e-5)
    pooled = EncoderPooled(path=str(tiny_encoder), layers="2,-3")  # -3 is the front end
    singles = [EncoderPooled(path=str(tiny_encoder), layer=k).extract(wave) for k in (2, 0)]
    joined = pooled.extract(wave)
    assert joined.shape == (1, 64, 1)
    np.testing.assert_allclose(pooled.combine_summaries(singles), joined, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(joined[0, :16, 0], singles[0][0, :16, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(joined[0, 32:48, 0], singles[0][0, 16:, 0], rtol=1e-5, atol=1e-6)
    mean = EncoderPooled(path=str(tiny_encoder), layers="1,2", pooling="mean")
    parts = [EncoderPooled(path=str(tiny_encoder), layer=k, pooling="mean") for k in (1, 2)]
    np.testing.assert_allclose(
        mean.combine_summaries([f.extract(wave) for f in parts]), mean.extract(wave), atol=1e-6
    )
    averaged = EncoderPooled(path=str(tiny_encoder), layers="1,2", combine="mean")
    pooled = [EncoderPooled(path=str(tiny_encoder), layer=k).extract(wave) for k in (1, 2)]
    assert averaged.extract(wave).shape == (1, 32, 1)  # the width of one layer
    np.testing.assert_allclose(averaged.extract(wave), (pooled[0] + pooled[1]) / 2, atol=1e-5)
    frames = Encoder(path=str(tiny_encoder), layers="0,2", combine="mean").extract(wave)
    want = (reference(tiny_encoder, wave, 0) + reference(tiny_encoder, wave, 2)) / 2
    np.testing.assert_allclose(frames[0], want, atol=1e-5)


def test_layers_is_left_out_of_single_layer_configurations(tiny_encoder: Path) -> None:
    one = EncoderPooled(path=str(tiny_encoder), layer=1)
    assert "layers" not in one.to_dict()  # caches and bundles written before it read the same
    assert "combine" not in one.to_dict()
    two = EncoderPooled(path=str(tiny_encoder), layers="1,2")
    assert two.to_dict()["layers"] == "1,2"
    assert feature_from_dict(two.to_dict()).layer_indices() == [1, 2]
    assert make_feature("encoder-pooled", path=str(tiny_encoder), layers=[1, 2]) == two
    assert make_feature("encoder-pooled", path=str(tiny_encoder), layers=2).layers == "2"
    assert FeatureCache.config_key(one) != FeatureCache.config_key(two)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"layers": "1,2", "layer": 1}, "either layer .* or layers"),
        ({"layers": "1;2"}, "comma list of integers"),
        ({"layers": "1,-2"}, "names a hidden state twice"),
        ({"layers": "0,5"}, r"layer 5 out of range"),
        ({"layers": "0,1", "combine": "max"}, "combine must be one of stack, mean"),
    ],
)
def test_bad_layers_are_refused(tiny_encoder: Path, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderPooled(path=str(tiny_encoder), **params)


def test_batches_long_and_short_audio(tiny_encoder: Path, monkeypatch) -> None:
    f = Encoder(path=str(tiny_encoder))
    waves = [tone(s, sr=16000, freq=200.0).astype(np.float32) for s in (0.5, 1.0)]
    alone = [f.extract(w) for w in waves]
    batch = torch.zeros(2, 16000)
    batch[0, :8000], batch[1] = torch.from_numpy(waves[0]), torch.from_numpy(waves[1])
    feats, n = f.compute(batch, torch.tensor([8000, 16000]))
    assert n.tolist() == [a.shape[-1] for a in alone]
    np.testing.assert_allclose(feats[0, ..., : n[0]].numpy(), alone[0], atol=1e-5)
    assert f.extract(np.zeros(100, np.float32)).shape[-1] >= 1  # padded to one receptive field
    monkeypatch.setattr(enc_mod, "CHUNK_SECONDS", 0.5)  # two chunks of 0.5 s, joined
    chunked = f.extract(waves[1])
    assert chunked.shape[-1] == 2 * alone[0].shape[-1]
    np.testing.assert_allclose(chunked[..., : alone[0].shape[-1]], alone[0], atol=1e-5)


def test_standardised_input_when_the_encoder_asks_for_it(tmp_path: Path) -> None:
    folder = make_tiny_encoder(tmp_path / "norm", normalize=True)
    wave = tone(0.6, sr=16000, freq=250.0).astype(np.float32)
    f = Encoder(path=str(folder))
    np.testing.assert_allclose(f.extract(wave), f.extract(4.0 * wave + 0.01), atol=1e-4)
    plain = Encoder(path=str(make_tiny_encoder(tmp_path / "plain")))
    assert not np.allclose(plain.extract(wave), plain.extract(4.0 * wave), atol=1e-3)


def test_the_configuration_carries_the_fingerprint_of_the_weights(tmp_path: Path) -> None:
    folder = make_tiny_encoder(tmp_path / "enc")
    f = EncoderPooled(path=str(folder), layer=1)
    config = json.loads(json.dumps(f.to_dict()))
    assert config["name"] == "encoder-pooled" and len(config["fingerprint"]) == 16
    assert feature_from_dict(config) == f
    make_tiny_encoder(folder, seed=1)  # other weights under the same path
    with pytest.raises(ValueError, match="made with other weights"):
        feature_from_dict(config)
    assert EncoderPooled(path=str(folder)).fingerprint != config["fingerprint"]


def test_a_moved_encoder_is_found_by_name_and_fingerprint(tmp_path: Path, monkeypatch) -> None:
    folder = make_tiny_encoder(tmp_path / "trained-here" / "w2v")
    config = Encoder(path=str(folder)).to_dict()
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder, elsewhere / "w2v")
    decoy = make_tiny_encoder(tmp_path / "decoy" / "w2v", seed=3)  # same name, other weights
    shutil.rmtree(folder)
    monkeypatch.delenv(ENCODER_PATH_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"not on this machine.*{ENCODER_PATH_ENV}"):
        feature_from_dict(config)
    monkeypatch.setenv(ENCODER_PATH_ENV, f"{decoy.parent}:{elsewhere}")
    moved = feature_from_dict(config)
    assert moved.fingerprint == config["fingerprint"]
    wave = tone(0.5, sr=16000, freq=180.0).astype(np.float32)
    copy = Encoder(path=str(elsewhere / "w2v"))
    np.testing.assert_allclose(moved.extract(wave), copy.extract(wave))


def test_clear_errors(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="--feature-param path=DIR"):
        make_feature("encoder")
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        Encoder(path=str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has no weights"):
        Encoder(path=str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a speech encoder"):
        Encoder(path=str(tmp_path))
    with pytest.raises(ValueError, match="16000 Hz"):
        Encoder(path=str(tmp_path), sample_rate=22050)
    folder = make_tiny_encoder(tmp_path / "enc")
    enc_mod.load_encoder.cache_clear()
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"pip install 'emovox\[encoders\]'"):
        Encoder(path=str(folder)).extract(np.zeros(1600, np.float32))
    enc_mod.load_encoder.cache_clear()


def test_encoder_svm_trains_and_predicts_through_the_cli(
    tiny_encoder: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    from conftest import run_cli

    from emovox.inference.recognizer import Recognizer

    out = tmp_path / "bundle"
    args = [
        "train", "--train", f"ravdess:{synth_corpus}", "--arch", "encoder-svm",
        "--feature-param", f"path={tiny_encoder}", "--feature-param", "layer=1",
        "--cache-dir", str(tmp_path / "cache"), "--quiet", "-o", str(out),
    ]  # fmt: skip
    run_cli(args)
    config = json.loads((out / "config.json").read_text())
    assert config["feature"]["name"] == "encoder-pooled"
    assert config["feature"]["path"] == str(tiny_encoder)
    assert len(config["feature"]["fingerprint"]) == 16
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pkl"))
    clip = next(synth_corpus.rglob("*.wav"))
    result = Recognizer.load(out).predict(clip)
    assert result.ok and result.label in config["labels"]
    assert sum(f.stat().st_size for f in out.iterdir()) < 1_000_000  # no encoder weights inside
