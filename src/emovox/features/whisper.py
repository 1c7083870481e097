"""Whisper's audio encoder, run from local weights with torch alone (no ``transformers``).

OpenAI's Whisper (MIT licence) was trained on 680,000 hours of speech from the web, in many
languages, microphones and rooms: its encoder's hidden states are a representation of speech
learnt far beyond the six corpora emovox trains on. This module holds the pieces, as small pure
functions with Whisper's own constants:

- :func:`whisper_log_mel`: the 80-band log-mel front end (25 ms Hann windows, 10 ms hop, the
  slaney filterbank, log10 floored 8 decades below the peak, scaled as Whisper scales it);
- :class:`WhisperEncoder`: two convolutions (the second halves the frame rate: one frame per
  20 ms), sinusoidal positions and pre-norm transformer layers; :meth:`WhisperEncoder.hidden_states`
  gives the input of the first layer and the output of every layer, as ``transformers`` numbers
  them (the last one after the final layer norm);
- the weights in Hugging Face's layout (``config.json`` with ``"model_type": "whisper"`` and
  ``model.safetensors``, the encoder's tensors named ``encoder.*`` or ``model.encoder.*``; the
  decoder's, if present, are ignored);
- :func:`convert_ctranslate2`: a CTranslate2 Whisper folder (``model.bin``, as faster-whisper
  uses, e.g. from a PyPI package that carries one) rewritten as such a folder, encoder only;
- :func:`shrink_encoder`: such a folder cut to its first layers, with the feed-forward weights
  stored as int8 in small groups, small enough to ship inside a model bundle (Whisper base's
  first three layers: 16 MB instead of 41).

Audio is encoded as it is, without padding it to Whisper's 30-s window (a 3-s clip costs a
tenth of the padded one); longer audio is cut into 30-s chunks by the caller.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emovox._fs import atomic_write_text
from emovox.features.spectral import mel_filters

SAMPLE_RATE = 16000
N_FFT = 400
"""25 ms analysis windows."""
HOP_LENGTH = 160
"""10 ms between log-mel frames; the encoder's second convolution halves the rate (20 ms)."""
ENCODER_HOP = 2 * HOP_LENGTH
"""Samples per encoder frame."""
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0
"""Log10 units (80 dB) kept below the utterance's loudest bin."""
LOG_OFFSET = 4.0
"""Whisper's scaling of the log-mel: ``(log10 + 4) / 4``."""
LAYER_NORM_EPS = 1e-5
INT8_GROUP = 32
"""Consecutive input weights of one output that share an int8 scale in a shrunk encoder."""
INT8_MAX = 127
SCALE_SUFFIX = "_scale"
"""An int8 tensor ``NAME`` of a shrunk encoder is dequantised with the float16 ``NAME_scale``
(one scale per :data:`INT8_GROUP` weights of a row)."""

MODEL_TYPE = "whisper"
"""``config.json``'s ``model_type`` of a Whisper folder."""
WEIGHTS = "model.safetensors"
PREFIXES = ("encoder.", "model.encoder.")
"""Where the encoder's tensors live in a Whisper checkpoint (``WhisperModel``,
``WhisperForConditionalGeneration``)."""


def whisper_log_mel(wave: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """Whisper's log-mel spectrogram of a mono 16 kHz waveform ``[N]``: ``[n_mels, N // 160]``."""
    window = torch.hann_window(N_FFT, device=wave.device)
    stft = torch.stft(wave, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = mel_filters(SAMPLE_RATE, N_FFT, n_mels, device=wave.device) @ power
    log = torch.clamp(mel, min=LOG_FLOOR).log10()
    log = torch.maximum(log, log.max() - DYNAMIC_RANGE)
    return (log + LOG_OFFSET) / LOG_OFFSET


class _Layer(nn.Module):
    """One pre-norm transformer layer: self-attention, then a GELU feed-forward block."""

    def __init__(self, d_model: int, n_heads: int, d_ffn: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.self_attn_layer_norm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.final_layer_norm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(d_model, d_ffn)
        self.fc2 = nn.Linear(d_ffn, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.self_attn_layer_norm(x)
        q, k, v = (self._heads(p(h)) for p in (self.q_proj, self.k_proj, self.v_proj))
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(x.shape)
        x = x + self.out_proj(a)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder: log-mel ``[B, n_mels, T]`` to ``[B, T / 2, d_model]``."""

    def __init__(
        self,
        n_mels: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        d_ffn: int,
        n_positions: int,
        final_layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(d_model, d_model, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(n_positions, d_model)
        self.layers = nn.ModuleList(_Layer(d_model, n_heads, d_ffn) for _ in range(n_layers))
        # a shrunk encoder (its first layers only) has no final norm: its last state is a
        # middle layer of the whole encoder, as that encoder gives it
        self.layer_norm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS) if final_layer_norm else None

    @classmethod
    def from_config(cls, config: dict) -> WhisperEncoder:
        """The (untrained) encoder a Whisper ``config.json`` describes."""
        d = int(config["d_model"])
        return cls(
            n_mels=int(config.get("num_mel_bins", 80)),
            d_model=d,
            n_layers=int(config["encoder_layers"]),
            n_heads=int(config["encoder_attention_heads"]),
            d_ffn=int(config.get("encoder_ffn_dim", 4 * d)),
            n_positions=int(config.get("max_source_positions", 1500)),
            final_layer_norm=bool(config.get("final_layer_norm", True)),
        )

    @property
    def width(self) -> int:
        """``d_model``: the width of every hidden state."""
        return self.conv2.out_channels

    @property
    def n_mels(self) -> int:
        return self.conv1.in_channels

    @property
    def max_frames(self) -> int:
        """Encoder frames of the longest input (Whisper's 30 s: 1500)."""
        return self.embed_positions.num_embeddings

    def hidden_states(self, log_mel: torch.Tensor, up_to: int | None = None) -> list[torch.Tensor]:
        """``n_layers + 1`` tensors ``[B, T', d_model]``: the input of the first layer, then
        each layer's output, the last one after the final layer norm (a shrunk encoder has
        none: its states are those of the whole encoder it was cut from). With ``up_to``, only the
        states ``0..up_to`` (the layers above are not run: a probe of layer 3 of 6 costs about
        half the encoder).

        Raises:
            ValueError: more frames than the positions the encoder was trained with.
        """
        x = F.gelu(self.conv2(F.gelu(self.conv1(log_mel)))).transpose(1, 2)
        if x.shape[1] > self.max_frames:
            raise ValueError(
                f"{x.shape[1]} encoder frames exceed Whisper's {self.max_frames} (30 s): "
                "encode longer audio in chunks"
            )
        x = x + self.embed_positions.weight[: x.shape[1]]
        n_run = len(self.layers) if up_to is None else max(0, min(up_to, len(self.layers)))
        states = [x]
        for layer in self.layers[:n_run]:
            x = layer(x)
            states.append(x)
        if n_run == len(self.layers) and self.layer_norm is not None:
            states[-1] = self.layer_norm(x)
        return states

    @torch.no_grad()
    def encode(self, wave: np.ndarray, up_to: int | None = None) -> list[torch.Tensor]:
        """:meth:`hidden_states` (``0..up_to``, or all) of one 16 kHz waveform (at most 30 s),
        each ``[T', d_model]``."""
        wave_t = torch.from_numpy(np.asarray(wave, dtype=np.float32))
        log_mel = whisper_log_mel(wave_t, n_mels=self.n_mels)  # 80 bands; 128 for large-v3
        return [s[0] for s in self.hidden_states(log_mel[None], up_to)]


def is_whisper_folder(folder: str | Path) -> bool:
    """Whether ``folder``'s ``config.json`` describes a Whisper model."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == MODEL_TYPE
    except (json.JSONDecodeError, AttributeError):
        return False


def load_whisper_encoder(folder: str | Path) -> WhisperEncoder:
    """The encoder of the Whisper folder ``folder`` (``config.json`` and ``model.safetensors``),
    float32, in eval mode; int8 tensors of a shrunk encoder (:func:`shrink_encoder`) are
    dequantised with their scales.

    Raises:
        FileNotFoundError: no weights file.
        ValueError: the weights lack an encoder tensor (its name given).
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"Whisper folder {folder} has no {WEIGHTS}")
    tensors = load_file(str(weights))
    prefix = next((p for p in PREFIXES if any(k.startswith(p) for k in tensors)), None)
    if prefix is None:
        raise ValueError(f"{weights} holds no encoder tensors (names starting with 'encoder.')")
    model = WhisperEncoder.from_config(config)
    state = {}
    for name in model.state_dict():
        hf = _hf_name(name)
        if prefix + hf not in tensors:
            raise ValueError(f"{weights} lacks the encoder tensor {prefix + hf}")
        state[name] = _dequantised(tensors, prefix + hf, weights)
    model.load_state_dict(state)
    return model.eval()


def _dequantised(tensors: dict[str, torch.Tensor], name: str, source: Path) -> torch.Tensor:
    """``tensors[name]`` as float32: an int8 tensor times its group scales ``name_scale``."""
    t = tensors[name]
    if t.dtype != torch.int8:
        return t.float()
    scale = tensors.get(name + SCALE_SUFFIX)
    if scale is None or t.ndim != 2 or scale.shape[0] != t.shape[0] or not scale.shape[1]:
        raise ValueError(f"{source}: the int8 tensor {name} has no fitting {name}{SCALE_SUFFIX}")
    group = t.shape[1] // scale.shape[1]
    if group * scale.shape[1] != t.shape[1]:
        raise ValueError(f"{source}: {name}{SCALE_SUFFIX} does not divide the rows of {name}")
    groups = t.float().view(t.shape[0], -1, group) * scale.float()[..., None]
    return groups.reshape(t.shape)


def quantise_int8(weight: np.ndarray, group: int = INT8_GROUP) -> tuple[np.ndarray, np.ndarray]:
    """``weight`` ``[out, in]`` as int8 and float16 scales ``[out, in / group]``: each run of
    ``group`` weights of a row shares the scale that maps its largest magnitude to 127 (the
    float16 scale, rounded first, is the one the weights are divided by).

    Raises:
        ValueError: ``in`` is not a multiple of ``group``.
    """
    w = np.asarray(weight, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] % group:
        raise ValueError(f"a [out, in] weight, in divisible by {group}, is needed, not {w.shape}")
    groups = w.reshape(w.shape[0], -1, group)
    scale = (np.abs(groups).max(axis=2) / INT8_MAX).astype(np.float16)
    safe = np.where(scale > 0, scale.astype(np.float32), 1.0)[..., None]
    q = np.clip(np.rint(groups / safe), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q.reshape(w.shape), scale


def shrink_encoder(
    source: str | Path,
    target: str | Path,
    keep_layers: int,
    int8: tuple[str, ...] = ("fc1", "fc2"),
    group: int = INT8_GROUP,
    source_fingerprint: str = "",
) -> Path:
    """Write the Whisper folder ``source``'s first ``keep_layers`` layers as a Whisper folder at
    ``target``: what a feature that reads hidden states ``0..keep_layers`` needs, and nothing
    above. The weights of the linear layers named in ``int8`` (``fc1``, ``fc2``, ``q_proj``,
    ...) are stored as int8 with a float16 scale per ``group`` weights (:func:`quantise_int8`);
    every other tensor keeps its type. Its states are the source's up to that rounding.
    ``config.json`` records where it came from (``shrunk_from``: the source folder's name and
    ``source_fingerprint``, its layers, the int8 layers and group).

    Raises:
        FileExistsError: ``target`` already holds a model (never overwritten).
        ValueError: ``source`` is not a Whisper folder or has fewer layers.
    """
    from safetensors.numpy import save_file
    from safetensors.torch import load_file

    source, target = Path(source), Path(target)
    if not is_whisper_folder(source) or not (source / WEIGHTS).is_file():
        raise ValueError(f"{source} is not a Whisper folder (config.json, {WEIGHTS})")
    if (target / WEIGHTS).exists() or (target / "config.json").exists():
        raise FileExistsError(f"{target} already holds a model; choose another folder")
    config = json.loads((source / "config.json").read_text())
    n_layers = int(config["encoder_layers"])
    if not 0 <= keep_layers <= n_layers:
        raise ValueError(f"{source} has {n_layers} layers; cannot keep {keep_layers}")
    tensors = load_file(str(source / WEIGHTS))
    prefix = next((p for p in PREFIXES if any(k.startswith(p) for k in tensors)), PREFIXES[0])
    final_norm = keep_layers == n_layers and bool(config.get("final_layer_norm", True))
    config.update(encoder_layers=keep_layers, final_layer_norm=final_norm)
    names = WhisperEncoder.from_config(config).state_dict()
    out: dict[str, np.ndarray] = {}
    for name in names:
        hf = _hf_name(name)
        if prefix + hf not in tensors:
            raise ValueError(f"{source / WEIGHTS} lacks the encoder tensor {prefix + hf}")
        value = tensors[prefix + hf].numpy()
        module = name.split(".")[-2]
        if name.startswith("layers.") and name.endswith(".weight") and module in int8:
            value, scale = quantise_int8(value, group)
            out[f"encoder.{hf}{SCALE_SUFFIX}"] = scale
        out[f"encoder.{hf}"] = value
    config.update(
        shrunk_from={
            "folder": source.name,
            "fingerprint": source_fingerprint,
            "encoder_layers": n_layers,
            "int8": sorted(int8),
            "int8_group": group,
        },
    )
    target.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(t) for k, t in out.items()}, str(target / WEIGHTS))
    atomic_write_text(target / "config.json", json.dumps(config, indent=2) + "\n")
    return target


def _hf_name(name: str) -> str:
    """The Hugging Face name of one of :class:`WhisperEncoder`'s tensors."""
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        name = name.replace(f".{proj}.", f".self_attn.{proj}.")
    return name


# -- CTranslate2 ------------------------------------------------------------------------------
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
"""CTranslate2's type ids (``include/ctranslate2/types.h``) that a Whisper model uses."""


def read_ctranslate2(path: str | Path) -> dict[str, np.ndarray]:
    """The named variables of a CTranslate2 ``model.bin`` (binary version 5 or 6).

    Raises:
        ValueError: not such a file, or a variable of a type it cannot hold (int8-quantised).
    """
    data = Path(path).read_bytes()
    at = 0

    def take(fmt: str) -> int:
        nonlocal at
        (value,) = struct.unpack_from(fmt, data, at)
        at += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal at
        n = take("H")
        value = data[at : at + n - 1].decode()
        at += n
        return value

    try:
        version = take("I")
        if version not in (5, 6):
            raise ValueError(f"{path}: CTranslate2 binary version {version}, not 5 or 6")
        spec = text()
        take("I")  # the spec's revision
        out = {}
        for _ in range(take("I")):
            name = text()
            shape = [take("I") for _ in range(take("B"))]
            dtype = _CT2_DTYPES.get(take("B"))
            nbytes = take("I")
            if dtype is None:
                raise ValueError(f"{path}: variable {name} has a type this reader does not know")
            count = nbytes // np.dtype(dtype).itemsize
            out[name] = np.frombuffer(data, dtype, count, at).reshape(shape)
            at += nbytes
    except struct.error as exc:
        raise ValueError(f"{path} is not a CTranslate2 model.bin (cut short)") from exc
    if spec != "WhisperSpec":
        raise ValueError(f"{path} holds a {spec}, not a Whisper model")
    return out


def convert_ctranslate2(source: str | Path, target: str | Path) -> Path:
    """Write the encoder of the CTranslate2 Whisper folder ``source`` as a Whisper folder in
    Hugging Face's layout at ``target`` (``config.json`` + ``model.safetensors``, float16 as
    CTranslate2 usually stores it), which :func:`load_whisper_encoder` reads.

    Raises:
        FileExistsError: ``target`` already holds a model (never overwritten).
        ValueError: ``source`` is not a float CTranslate2 Whisper model.
    """
    from safetensors.numpy import save_file

    source, target = Path(source), Path(target)
    if not (source / "model.bin").is_file():
        raise FileNotFoundError(
            f"{source} has no model.bin (a CTranslate2 Whisper folder, as faster-whisper keeps "
            "its models, is expected)"
        )
    if (target / WEIGHTS).exists() or (target / "config.json").exists():
        raise FileExistsError(f"{target} already holds a model; choose another folder")
    v = read_ctranslate2(source / "model.bin")
    tensors: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        for part in ("weight", "bias"):
            tensors[f"encoder.{conv}.{part}"] = v[f"encoder/{conv}/{part}"]
    tensors["encoder.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    n_layers = 0
    while f"encoder/layer_{n_layers}/ffn/linear_0/weight" in v:
        _convert_layer(v, f"encoder/layer_{n_layers}", f"encoder.layers.{n_layers}", tensors)
        n_layers += 1
    tensors["encoder.layer_norm.weight"] = v["encoder/layer_norm/gamma"]
    tensors["encoder.layer_norm.bias"] = v["encoder/layer_norm/beta"]
    n_positions, d_model = tensors["encoder.embed_positions.weight"].shape
    config = {
        "model_type": MODEL_TYPE,
        "d_model": int(d_model),
        "encoder_layers": n_layers,
        "encoder_attention_heads": int(v["encoder/num_heads"]),
        "encoder_ffn_dim": int(tensors["encoder.layers.0.fc1.weight"].shape[0]),
        "num_mel_bins": int(tensors["encoder.conv1.weight"].shape[1]),
        "max_source_positions": int(n_positions),
        "converted_from": f"CTranslate2 {source.name}/model.bin (encoder only)",
    }
    target.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(t) for k, t in tensors.items()}, str(target / WEIGHTS))
    atomic_write_text(target / "config.json", json.dumps(config, indent=2) + "\n")
    return target


def _convert_layer(v: dict, ct2: str, hf: str, out: dict) -> None:
    """One encoder layer's tensors, CTranslate2 names to Hugging Face's (the fused query, key
    and value projection split in three; the key has no bias)."""
    qkv_w = v[f"{ct2}/self_attention/linear_0/weight"]
    qkv_b = v[f"{ct2}/self_attention/linear_0/bias"]
    d = qkv_w.shape[1]
    for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
        out[f"{hf}.self_attn.{proj}.weight"] = qkv_w[i * d : (i + 1) * d]
        if proj != "k_proj":
            out[f"{hf}.self_attn.{proj}.bias"] = qkv_b[i * d : (i + 1) * d]
    out[f"{hf}.self_attn.out_proj.weight"] = v[f"{ct2}/self_attention/linear_1/weight"]
    out[f"{hf}.self_attn.out_proj.bias"] = v[f"{ct2}/self_attention/linear_1/bias"]
    for norm, ct2_norm in (("self_attn_layer_norm", "self_attention"), ("final_layer_norm", "ffn")):
        out[f"{hf}.{norm}.weight"] = v[f"{ct2}/{ct2_norm}/layer_norm/gamma"]
        out[f"{hf}.{norm}.bias"] = v[f"{ct2}/{ct2_norm}/layer_norm/beta"]
    for i, fc in enumerate(("fc1", "fc2")):
        out[f"{hf}.{fc}.weight"] = v[f"{ct2}/ffn/linear_{i}/weight"]
        out[f"{hf}.{fc}.bias"] = v[f"{ct2}/ffn/linear_{i}/bias"]


__all__ = [
    "ENCODER_HOP",
    "WhisperEncoder",
    "convert_ctranslate2",
    "is_whisper_folder",
    "load_whisper_encoder",
    "quantise_int8",
    "read_ctranslate2",
    "shrink_encoder",
    "whisper_log_mel",
]
