"""Tiny random Whisper encoders for the tests: a Whisper folder (Hugging Face's names) and the
same weights in CTranslate2's binary format, written here byte by byte."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

from emovox.features import whisper as wh

TINY = {
    "model_type": "whisper",
    "d_model": 16,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "num_mel_bins": 80,
    "max_source_positions": 150,
}
"""A Whisper encoder of two layers, width 16, for at most 3 s of audio."""


def make_tiny_whisper(folder: Path, seed: int = 0, prefix: str = "encoder.") -> Path:
    """A random :data:`TINY` encoder saved as a Whisper folder (Hugging Face's names)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = wh.WhisperEncoder.from_config(TINY)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    state = model.state_dict()
    tensors = {prefix + wh._hf_name(k): v.contiguous() for k, v in state.items()}
    tensors["decoder.embed_tokens.weight"] = torch.zeros(4, 16)  # a decoder is ignored
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(TINY))
    return folder


def write_ctranslate2(path: Path, variables: dict[str, np.ndarray], spec="WhisperSpec") -> None:
    """A ``model.bin`` in CTranslate2's binary format (version 6), float16 like its converter."""

    def text(s: str) -> bytes:
        return struct.pack("H", len(s) + 1) + s.encode() + b"\0"

    out = [struct.pack("I", 6), text(spec), struct.pack("I", 3), struct.pack("I", len(variables))]
    for name, value in variables.items():
        value = np.asarray(value)
        type_id = 2 if value.dtype == np.int16 else 4
        value = value if type_id == 2 else value.astype(np.float16)
        out += [text(name), struct.pack("B", value.ndim)]
        out += [struct.pack("I", d) for d in value.shape]
        out += [struct.pack("B", type_id), struct.pack("I", value.nbytes), value.tobytes()]
    out.append(struct.pack("I", 0))
    path.write_bytes(b"".join(out))


def as_ctranslate2(model: wh.WhisperEncoder, n_heads: int) -> dict[str, np.ndarray]:
    """``model``'s tensors under CTranslate2's Whisper names (query, key and value fused)."""
    s = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    v = {
        "encoder/conv1/weight": s["conv1.weight"],
        "encoder/conv1/bias": s["conv1.bias"],
        "encoder/conv2/weight": s["conv2.weight"],
        "encoder/conv2/bias": s["conv2.bias"],
        "encoder/position_encodings/encodings": s["embed_positions.weight"],
        "encoder/num_heads": np.array(n_heads, dtype=np.int16),
        "encoder/layer_norm/gamma": s["layer_norm.weight"],
        "encoder/layer_norm/beta": s["layer_norm.bias"],
    }
    for i in range(len(model.layers)):
        p, c = f"layers.{i}.", f"encoder/layer_{i}/"
        zeros = np.zeros_like(s[p + "q_proj.bias"])
        v[c + "self_attention/linear_0/weight"] = np.concatenate(
            [s[p + "q_proj.weight"], s[p + "k_proj.weight"], s[p + "v_proj.weight"]]
        )
        v[c + "self_attention/linear_0/bias"] = np.concatenate(
            [s[p + "q_proj.bias"], zeros, s[p + "v_proj.bias"]]
        )
        v[c + "self_attention/linear_1/weight"] = s[p + "out_proj.weight"]
        v[c + "self_attention/linear_1/bias"] = s[p + "out_proj.bias"]
        v[c + "self_attention/layer_norm/gamma"] = s[p + "self_attn_layer_norm.weight"]
        v[c + "self_attention/layer_norm/beta"] = s[p + "self_attn_layer_norm.bias"]
        v[c + "ffn/layer_norm/gamma"] = s[p + "final_layer_norm.weight"]
        v[c + "ffn/layer_norm/beta"] = s[p + "final_layer_norm.bias"]
        for j, fc in enumerate(("fc1", "fc2")):
            v[c + f"ffn/linear_{j}/weight"] = s[p + f"{fc}.weight"]
            v[c + f"ffn/linear_{j}/bias"] = s[p + f"{fc}.bias"]
    return v


def train_on_tiny_whisper(corpus: Path, encoder: Path, out: Path, arch: str, *options) -> Path:
    """``emovox train`` of ``arch`` on the synthetic ``corpus`` (its emotions as labels), reading
    the Whisper folder ``encoder``; ``options`` are more command-line words (``"--feature-param",
    "layer=1"``, ...). Returns ``out``, the bundle."""
    from conftest import SYNTH_EMOTIONS, run_cli

    run_cli([
        "train", "--train", f"ravdess:{corpus}", "--labels", ",".join(SYNTH_EMOTIONS),
        "--arch", arch, "--feature-param", f"path={encoder}", *options,
        "--out", out, "--quiet", "--no-cache",
    ])  # fmt: skip
    return out
