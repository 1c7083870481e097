"""Whisper's encoder run by torch alone (:mod:`emovox.features.whisper`), on tiny random models:
the same hidden states as ``transformers``' own Whisper, the CTranslate2 conversion, the
log-mel front end, and the ``encoder`` features reading a Whisper folder."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tone
from tiny_whisper import TINY, as_ctranslate2, make_tiny_whisper, write_ctranslate2

from emovox.features import feature_from_dict, make_feature
from emovox.features import whisper as wh
from emovox.features.encoder import Encoder, EncoderPooled, encoder_fingerprint
from emovox.features.spectral import hz_to_mel, mel_to_hz


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")


def test_the_hidden_states_are_those_of_transformers_whisper(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(1)
    config = transformers.WhisperConfig(
        d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32, vocab_size=64,
        max_source_positions=150, max_target_positions=16, num_mel_bins=80, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, suppress_tokens=[],
        begin_suppress_tokens=[],
    )  # fmt: skip
    reference = transformers.WhisperModel(config).eval()
    reference.save_pretrained(tmp_path / "hf")
    ours = wh.load_whisper_encoder(tmp_path / "hf")
    mel = torch.randn(1, 80, 300)
    with torch.no_grad():
        want = reference.encoder(mel, output_hidden_states=True).hidden_states
        got = ours.hidden_states(mel)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_a_conditional_generation_checkpoint_is_read_too(tmp_path: Path) -> None:
    plain = wh.load_whisper_encoder(make_tiny_whisper(tmp_path / "a", seed=3))
    nested = make_tiny_whisper(tmp_path / "b", seed=3, prefix="model.encoder.")
    nested = wh.load_whisper_encoder(nested)
    mel = torch.randn(1, 80, 40)
    with torch.no_grad():
        for x, y in zip(plain.hidden_states(mel), nested.hidden_states(mel), strict=True):
            torch.testing.assert_close(x, y)


def test_log_mel_is_whispers_front_end() -> None:
    wave = tone(1.0, sr=16000, freq=440.0).astype(np.float32)
    mel = wh.whisper_log_mel(torch.from_numpy(wave))
    assert mel.shape == (80, 100)  # one frame per 10 ms, the last STFT frame dropped
    top = float(mel.max())
    assert float(mel.min()) >= top - wh.DYNAMIC_RANGE / wh.LOG_OFFSET - 1e-6  # 80 dB kept
    band = int(mel.mean(dim=1).argmax())  # the tone's band is the loudest
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(8000.0), 82))
    assert edges[band] <= 440.0 <= edges[band + 2]


def test_ctranslate2_models_convert_to_the_same_encoder(tmp_path: Path, tiny_whisper: Path) -> None:
    model = wh.load_whisper_encoder(tiny_whisper)
    source = tmp_path / "ct2"
    source.mkdir()
    write_ctranslate2(source / "model.bin", as_ctranslate2(model, n_heads=2))
    target = wh.convert_ctranslate2(source, tmp_path / "converted")
    config = json.loads((target / "config.json").read_text())
    assert {k: config[k] for k in TINY} == TINY
    converted = wh.load_whisper_encoder(target)
    mel = torch.randn(1, 80, 60)
    with torch.no_grad():
        for x, y in zip(model.hidden_states(mel), converted.hidden_states(mel), strict=True):
            torch.testing.assert_close(x, y, rtol=1e-2, atol=1e-2)  # float16 on disk
    with pytest.raises(FileExistsError, match="already holds a model"):
        wh.convert_ctranslate2(source, target)


def test_other_files_are_refused_by_name(tmp_path: Path) -> None:
    write_ctranslate2(tmp_path / "model.bin", {"x": np.zeros(2)}, spec="TransformerSpec")
    with pytest.raises(ValueError, match="TransformerSpec, not a Whisper model"):
        wh.read_ctranslate2(tmp_path / "model.bin")
    (tmp_path / "short.bin").write_bytes(struct.pack("I", 6) + b"\x05")
    with pytest.raises(ValueError, match="cut short"):
        wh.read_ctranslate2(tmp_path / "short.bin")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors"):
        wh.load_whisper_encoder(tmp_path / "nothing")


def test_too_long_input_is_refused(tiny_whisper: Path) -> None:
    model = wh.load_whisper_encoder(tiny_whisper)
    with pytest.raises(ValueError, match="exceed Whisper's 150"):
        model.hidden_states(torch.randn(1, 80, 302))


def test_up_to_runs_only_the_layers_asked_for(tiny_whisper: Path) -> None:
    model = wh.load_whisper_encoder(tiny_whisper)
    mel = torch.randn(1, 80, 60)
    ran: list[int] = []
    hooks = [
        layer.register_forward_hook(lambda *_, k=k: ran.append(k))
        for k, layer in enumerate(model.layers)
    ]
    with torch.no_grad():
        full = model.hidden_states(mel)
        assert ran == [0, 1]
        ran.clear()
        part = model.hidden_states(mel, up_to=1)
    for h in hooks:
        h.remove()
    assert ran == [0]  # the second (last) layer is not run
    assert len(full) == 3 and len(part) == 2
    for x, y in zip(part, full, strict=False):
        torch.testing.assert_close(x, y)
    assert len(model.hidden_states(mel, up_to=0)) == 1
    torch.testing.assert_close(model.hidden_states(mel, up_to=2)[-1], full[-1])  # layer norm kept
    wave = tone(1.0, sr=16000, freq=200.0).astype(np.float32)
    first = EncoderPooled(path=str(tiny_whisper), layer=1).extract(wave)
    both = EncoderPooled(path=str(tiny_whisper), layers="0,1", combine="mean").extract(wave)
    every = Encoder(path=str(tiny_whisper), layer=0).every_layer(wave)
    np.testing.assert_allclose(first[0, :16, 0], every[1].mean(axis=1), rtol=1e-5, atol=1e-6)
    mean01 = (every[0] + every[1]) / 2
    np.testing.assert_allclose(both[0, :16, 0], mean01.mean(axis=1), rtol=1e-5, atol=1e-6)


def test_encoder_features_read_a_whisper_folder(tiny_whisper: Path) -> None:
    wave = tone(2.0, sr=16000, freq=200.0).astype(np.float32)
    frames = Encoder(path=str(tiny_whisper), layer=1)
    assert frames.hop_seconds == pytest.approx(0.02)
    x = frames.extract(wave)
    assert x.shape == (1, 16, 100)
    every = frames.every_layer(wave)
    assert len(every) == 3
    np.testing.assert_allclose(x[0], every[1])
    direct = wh.load_whisper_encoder(tiny_whisper).encode(wave)[1].T.numpy()
    np.testing.assert_allclose(x[0], direct, rtol=1e-5, atol=1e-5)
    pooled = EncoderPooled(path=str(tiny_whisper), layer=-1).extract(wave)
    assert pooled.shape == (1, 32, 1)
    np.testing.assert_allclose(pooled[0, :16, 0], every[2].mean(axis=1), rtol=1e-5, atol=1e-6)
    long = np.tile(wave, 2)  # 4 s: a chunk of 3 s (all the positions it has), then 1 s
    joined = frames.extract(long)
    assert joined.shape == (1, 16, 200)
    np.testing.assert_allclose(joined[0, :, :150], frames.extract(long[:48000])[0], atol=1e-5)
    with pytest.raises(ValueError, match=r"layer 3 out of range.*hidden states 0-2"):
        make_feature("encoder-pooled", path=str(tiny_whisper), layer=3)


def test_a_128_band_encoder_gets_128_bands(tmp_path: Path) -> None:
    config = {**TINY, "num_mel_bins": 128}  # as large-v3 is
    model = wh.WhisperEncoder.from_config(config)
    states = model.encode(tone(1.0, sr=16000, freq=300.0).astype(np.float32))
    assert model.n_mels == 128 and states[-1].shape == (50, 16)


def test_level_rms_gives_the_same_states_whatever_the_gain(tiny_whisper: Path) -> None:
    from emovox.features.encoder import RMS_DBFS, at_rms_level

    rng = np.random.default_rng(0)
    wave = (tone(2.0, sr=16000, freq=220.0) * 0.3 + rng.standard_normal(32000) * 0.01).astype(
        np.float32
    )
    quiet = wave * 10 ** (-20 / 20)  # the same clip 20 dB down
    as_recorded = EncoderPooled(path=str(tiny_whisper), layer=-1)
    levelled = EncoderPooled(path=str(tiny_whisper), layer=-1, level="rms")
    # Whisper's log-mel keeps the absolute level: the recorded states move with the gain
    assert not np.allclose(as_recorded.extract(wave), as_recorded.extract(quiet), atol=1e-3)
    np.testing.assert_allclose(levelled.extract(wave), levelled.extract(quiet), atol=1e-4)
    scaled = at_rms_level(quiet)
    rms_db = 20 * np.log10(np.sqrt(np.mean(scaled.astype(np.float64) ** 2)) * np.sqrt(2))
    assert rms_db == pytest.approx(RMS_DBFS, abs=1e-3)
    silence = np.zeros(800, dtype=np.float32)
    assert at_rms_level(silence) is silence  # no gain on silence
    assert "level" not in as_recorded.to_dict()  # older configurations: recorded, same cache
    assert levelled.to_dict()["level"] == "rms"
    assert feature_from_dict(levelled.to_dict()).level == "rms"
    with pytest.raises(ValueError, match="level must be one of"):
        EncoderPooled(path=str(tiny_whisper), level="peak")


def test_a_shrunk_encoder_gives_the_first_states_of_the_whole_one(
    tmp_path: Path, tiny_whisper: Path
) -> None:
    whole = wh.load_whisper_encoder(tiny_whisper)
    mel = torch.randn(1, 80, 60)
    with torch.no_grad():
        states = whole.hidden_states(mel)
        source = encoder_fingerprint(tiny_whisper)
        cut = wh.shrink_encoder(tiny_whisper, tmp_path / "a", 1, int8=(), source_fingerprint=source)
        exact = wh.load_whisper_encoder(cut)
        kept = exact.hidden_states(mel)
    assert len(exact.layers) == 1 and exact.layer_norm is None
    assert len(kept) == 2  # the front end and layer 1, which the whole encoder does not norm
    for x, y in zip(states[:2], kept, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert not torch.allclose(states[1], whole.layer_norm(states[1]))  # the norm was left out
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["encoder_layers"] == 1 and config["final_layer_norm"] is False
    assert config["shrunk_from"]["encoder_layers"] == 2
    assert config["shrunk_from"]["fingerprint"] == encoder_fingerprint(tiny_whisper)

    small = wh.shrink_encoder(tiny_whisper, tmp_path / "b", 1, group=16)
    with torch.no_grad():
        rounded = wh.load_whisper_encoder(small).hidden_states(mel)
    assert not torch.equal(rounded[1], states[1])  # int8 feed-forward weights: close, not equal
    torch.testing.assert_close(rounded[1], states[1], rtol=0.05, atol=0.05)
    assert (small / "model.safetensors").stat().st_size < (
        tmp_path / "a" / "model.safetensors"
    ).stat().st_size
    everything = wh.shrink_encoder(tiny_whisper, tmp_path / "c", 2, int8=())
    with torch.no_grad():
        torch.testing.assert_close(
            wh.load_whisper_encoder(everything).hidden_states(mel)[-1], states[-1]
        )  # all layers kept: the final norm is kept too


def test_int8_groups_round_each_weight_by_at_most_half_a_step() -> None:
    w = np.random.default_rng(0).normal(size=(6, 64)).astype(np.float32)
    w[0, :32] = 0.0  # a group of zeros keeps a zero scale
    q, scale = wh.quantise_int8(w, group=32)
    assert q.dtype == np.int8 and scale.dtype == np.float16 and scale.shape == (6, 2)
    back = q.astype(np.float32).reshape(6, 2, 32) * scale.astype(np.float32)[..., None]
    step = scale.astype(np.float32)[..., None]
    assert np.all(np.abs(back - w.reshape(6, 2, 32)) <= step / 2 + 1e-6)
    assert np.abs(q).max() == wh.INT8_MAX and np.all(back[0, 0] == 0)
    with pytest.raises(ValueError, match="divisible by 32"):
        wh.quantise_int8(np.zeros((2, 40)), group=32)


def test_shrinking_refuses_what_it_cannot_do(tmp_path: Path, tiny_whisper: Path) -> None:
    with pytest.raises(ValueError, match="has 2 layers; cannot keep 3"):
        wh.shrink_encoder(tiny_whisper, tmp_path / "x", 3)
    with pytest.raises(ValueError, match="not a Whisper folder"):
        wh.shrink_encoder(tmp_path, tmp_path / "y", 1)
    with pytest.raises(ValueError, match="divisible by 32"):  # width 16: groups of 16 at most
        wh.shrink_encoder(tiny_whisper, tmp_path / "w", 1)
    wh.shrink_encoder(tiny_whisper, tmp_path / "z", 1, group=16)
    with pytest.raises(FileExistsError, match="already holds a model"):
        wh.shrink_encoder(tiny_whisper, tmp_path / "z", 1, group=16)
    broken = tmp_path / "broken"
    wh.shrink_encoder(tiny_whisper, broken, 1, group=16)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(broken / "model.safetensors"))
    del tensors["encoder.layers.0.fc1.weight_scale"]
    save_file(tensors, str(broken / "model.safetensors"))
    with pytest.raises(ValueError, match=r"int8 tensor encoder\.layers\.0\.fc1\.weight has no"):
        wh.load_whisper_encoder(broken)
