"""``emovox encoder convert`` (a CTranslate2 Whisper folder to one emovox reads) and
``emovox encoder shrink``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner
from tiny_whisper import as_ctranslate2, make_tiny_whisper, write_ctranslate2

from emovox.apps.cli import main
from emovox.features import whisper as wh


def test_convert_writes_a_folder_the_encoder_features_read(tmp_path: Path) -> None:
    model = wh.load_whisper_encoder(make_tiny_whisper(tmp_path / "hf"))
    source = tmp_path / "faster-whisper-tiny"
    source.mkdir()
    write_ctranslate2(source / "model.bin", as_ctranslate2(model, n_heads=2))
    runner = CliRunner()
    out = tmp_path / "converted"
    result = runner.invoke(main, ["encoder", "convert", str(source), str(out)])
    assert result.exit_code == 0, result.output
    assert "2 layers, width 16" in result.output and "layer=0..2" in result.output
    mel = torch.randn(1, 80, 20)
    with torch.no_grad():
        got = wh.load_whisper_encoder(out).hidden_states(mel)[-1]
        torch.testing.assert_close(got, model.hidden_states(mel)[-1], rtol=1e-2, atol=1e-2)
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    again = runner.invoke(main, ["encoder", "convert", str(source), str(out)])
    assert again.exit_code == 1 and "already holds a model" in again.output
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp  # never overwritten


def test_a_folder_without_a_model_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["encoder", "convert", str(tmp_path), str(tmp_path / "x")])
    assert result.exit_code == 1
    assert f"{tmp_path} has no model.bin" in result.output
    assert not (tmp_path / "x").exists()


def test_shrink_keeps_the_first_layers_with_int8_feed_forward_weights(tmp_path: Path) -> None:
    from emovox.features.encoder import encoder_fingerprint

    source = make_tiny_whisper(tmp_path / "tiny")
    out = tmp_path / "tiny-l1"
    runner = CliRunner()
    # the tiny encoder's width (16) is not a multiple of the int8 groups (32): named, nothing made
    refused = runner.invoke(main, ["encoder", "shrink", str(source), str(out), "--layers", "1"])
    assert refused.exit_code == 1 and "divisible by 32" in refused.output and not out.exists()
    args = ["encoder", "shrink", str(source), str(out), "--layers", "1", "--int8", ""]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "the first 1 layers" in result.output
    assert encoder_fingerprint(out) in result.output
    shrunk_from = json.loads((out / "config.json").read_text())["shrunk_from"]
    assert shrunk_from["fingerprint"] == encoder_fingerprint(source)
    mel = torch.randn(1, 80, 20)
    with torch.no_grad():
        whole = wh.load_whisper_encoder(source).hidden_states(mel)
        torch.testing.assert_close(wh.load_whisper_encoder(out).hidden_states(mel)[1], whole[1])
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and "already holds a model" in again.output
