"""``encoder`` and ``encoder-pooled``: hidden states of a pretrained speech encoder, read from a
local folder.

Self-supervised speech encoders (wav2vec 2.0, HuBERT, WavLM, data2vec-audio) saved in Hugging
Face's layout (``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, optionally
``preprocessor_config.json``) are loaded with ``transformers`` from a path on this machine only:
nothing is ever downloaded. Whisper folders (``"model_type": "whisper"``, ``model.safetensors``;
:func:`emovox.features.whisper.convert_ctranslate2` writes one from a CTranslate2 model) are run
by :mod:`emovox.features.whisper` without ``transformers``.

``encoder`` gives one layer's frames, ``[1, D, T]`` (one frame per 20 ms for the usual front
ends), for the sequence models; ``encoder-pooled`` their mean (and standard deviation) over the
utterance, ``[1, D or 2D, 1]``, for the SVM (``encoder-svm``) and other utterance models, the
frozen-encoder recipe of published benchmarks. ``layers="2,3"`` instead of ``layer`` reads several
hidden states from the same single pass of the encoder and combines them: side by side
(``combine="stack"``, ``[1, kD, T]``; pooled: every layer's means, then every layer's standard
deviations) or averaged (``combine="mean"``, ``[1, D, T]``; pooled: the mean of the layers'
pooled summaries).

The feature records a fingerprint of the encoder's files. A bundle trained on it carries the
path and the fingerprint, never the encoder's weights (hundreds of megabytes): where the path does
not exist on another machine, the folders of :data:`ENCODER_PATH_ENV` are searched for a folder
of the same name with the same fingerprint, and the error names both when none is found.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from emovox.audio import SAMPLE_RATE
from emovox.features import whisper
from emovox.features.base import Feature

ENCODER_PATH_ENV = "EMOVOX_ENCODER_PATH"
"""Folders (``os.pathsep``-separated) where a bundle's encoder is looked for by its folder name
when the path it was trained with does not exist here."""

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""The weight files of a Hugging Face model folder, in the order they are looked for."""

FINGERPRINTED = ("config.json", "preprocessor_config.json", *WEIGHT_FILES)
"""The files whose bytes make an encoder's fingerprint (those present)."""

FINGERPRINT_CHARS = 16
"""Hex characters of the SHA-256 kept as the fingerprint."""

CHUNK_SECONDS = 30.0
"""Longer audio is encoded in consecutive chunks of this length (attention's memory grows with
the square of the length); their frames are joined."""

MIN_SAMPLES = 400
"""Shorter audio is zero-padded to this many samples (25 ms, one receptive field of the usual
convolutional front end) so that it yields at least one frame."""

POOLINGS = ("mean", "meanstd")
"""How ``encoder-pooled`` summarises the frames: their mean, or mean and standard deviation."""

COMBINES = ("stack", "mean")
"""How the hidden states of ``layers`` are combined: side by side, or averaged."""

LEVELS = ("recorded", "rms")
"""What level the waveform reaches the encoder at: as recorded, or scaled to :data:`RMS_DBFS`."""

RMS_DBFS = -23.0
"""With ``level="rms"``: the RMS level (dB below a full-scale sine's peak) every waveform is
scaled to before the encoder. Whisper's log-mel keeps the absolute level (``(log10 + 4) / 4``),
so without it a clip 20 dB quieter gives other hidden states."""

SILENCE_RMS = 1e-6
"""A waveform quieter than this is left as it is by ``level="rms"`` (no gain on silence)."""

INSTALL_HINT = "pip install 'emovox[encoders]'"


def at_rms_level(x: np.ndarray, dbfs: float = RMS_DBFS) -> np.ndarray:
    """``x`` scaled so that its RMS is ``dbfs`` (relative to a full-scale sine, whose RMS is
    ``1 / sqrt(2)``); silence (RMS under :data:`SILENCE_RMS`) is returned as it is."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    if rms < SILENCE_RMS:
        return x
    target = 10.0 ** (dbfs / 20.0) / math.sqrt(2.0)
    return (x * (target / rms)).astype(np.float32)


def encoder_fingerprint(path: str | os.PathLike) -> str:
    """The first :data:`FINGERPRINT_CHARS` hex characters of a SHA-256 over the files of
    :data:`FINGERPRINTED` that the folder holds (names and bytes).

    Raises:
        FileNotFoundError: ``path`` is not a folder with ``config.json`` and a weight file.
    """
    folder = Path(path)
    check_encoder_folder(folder)
    return _fingerprint(str(folder.resolve()), *_stamp(folder))


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of each fingerprinted file (the memo's key)."""
    out = []
    for name in FINGERPRINTED:
        f = folder / name
        if f.is_file():
            st = f.stat()
            out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _fingerprint(folder: str, *stamp: tuple[str, int, int]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(name.encode() + b"\0")
        with open(Path(folder) / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def check_encoder_folder(folder: Path) -> None:
    """Raise :class:`FileNotFoundError` naming what ``folder`` lacks to be an encoder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"encoder folder {folder} does not exist")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"encoder folder {folder} has no config.json (a Hugging Face model folder, as "
            "save_pretrained writes it, is expected)"
        )
    if not any((folder / w).is_file() for w in WEIGHT_FILES):
        raise FileNotFoundError(
            f"encoder folder {folder} has no weights ({' or '.join(WEIGHT_FILES)})"
        )


def locate_encoder(path: str, fingerprint: str = "") -> Path:
    """The encoder folder to use for ``path``: itself when it exists, else a folder of the same
    name under one of :data:`ENCODER_PATH_ENV`'s folders whose fingerprint is ``fingerprint``.

    Raises:
        FileNotFoundError: none found (the message says where it looked and how to fix it).
    """
    folder = Path(path).expanduser()
    if folder.exists():
        check_encoder_folder(folder)
        return folder
    looked = []
    for root in filter(None, os.environ.get(ENCODER_PATH_ENV, "").split(os.pathsep)):
        candidate = Path(root).expanduser() / folder.name
        looked.append(str(candidate))
        try:
            if not fingerprint or encoder_fingerprint(candidate) == fingerprint:
                return candidate
        except FileNotFoundError:
            continue
    where = f"; looked in {', '.join(looked)}" if looked else ""
    raise FileNotFoundError(
        f"the pretrained encoder {path} (fingerprint {fingerprint or 'unknown'}) is not on this "
        f"machine{where}: copy that folder here, or add the folder that holds a copy of it to "
        f"{ENCODER_PATH_ENV} (a Whisper encoder is written from faster-whisper's model by "
        "`emovox encoder convert`)"
    )


def checked_encoder(path: str, fingerprint: str = "") -> tuple[Path, str]:
    """The encoder folder for ``path`` (:func:`locate_encoder`) and its fingerprint, which must
    be ``fingerprint`` when that is given.

    Raises:
        FileNotFoundError: no such encoder here (the message says where it looked).
        ValueError: the encoder found has other weights (another fingerprint).
    """
    folder = locate_encoder(path, fingerprint)
    found = encoder_fingerprint(folder)
    if fingerprint and found != fingerprint:
        raise ValueError(
            f"the encoder at {folder} has fingerprint {found}, not {fingerprint}: these "
            "features were made with other weights"
        )
    return folder, found


@dataclasses.dataclass(frozen=True)
class EncoderShape:
    """What an encoder's ``config.json`` says about its output: samples per frame and the
    number of transformer layers (hidden states 0..n_layers)."""

    hop: int
    n_layers: int
    max_seconds: float | None = None
    """The longest audio the encoder takes in one pass (Whisper: its positions, 30 s), if any."""


def encoder_shape(folder: str | os.PathLike) -> EncoderShape:
    """The :class:`EncoderShape` of the encoder in ``folder``, from its ``config.json`` alone
    (the network is not loaded).

    Raises:
        ValueError: the folder holds a model that is not a speech encoder.
    """
    config = json.loads((Path(folder) / "config.json").read_text())
    if config.get("model_type") == whisper.MODEL_TYPE:
        positions = int(config.get("max_source_positions", 1500))
        return EncoderShape(
            hop=whisper.ENCODER_HOP,
            n_layers=int(config["encoder_layers"]),
            max_seconds=positions * whisper.ENCODER_HOP / SAMPLE_RATE,
        )
    strides = config.get("conv_stride")
    if not strides or "hidden_size" not in config:
        raise ValueError(
            f"{folder} is not a speech encoder of the wav2vec 2.0 family or Whisper (its "
            "config.json has no conv_stride or hidden_size, and its model_type is not whisper)"
        )
    return EncoderShape(
        hop=int(math.prod(strides)),
        n_layers=int(config.get("num_hidden_layers", 0)),
    )


@dataclasses.dataclass(frozen=True)
class LoadedEncoder:
    """An encoder ready to run: the network and whether inputs are standardised first."""

    model: torch.nn.Module
    normalize: bool

    def hidden_states(self, chunk: np.ndarray, up_to: int | None = None) -> list[torch.Tensor]:
        """Every hidden state of one waveform chunk (at most :data:`CHUNK_SECONDS`), each
        ``[T, D]``: the front end's output first, the last layer's last. With ``up_to``, at
        least the states ``0..up_to`` (Whisper's encoder stops there; others run whole)."""
        if isinstance(self.model, whisper.WhisperEncoder):
            return self.model.encode(chunk, up_to)
        out = self.model(input_values=torch.from_numpy(chunk)[None], output_hidden_states=True)
        return [h[0] for h in out.hidden_states]


@functools.lru_cache(maxsize=2)
def load_encoder(folder: str) -> LoadedEncoder:
    """The encoder in ``folder`` (local files only), in eval mode on the CPU; memoised.
    Whisper's encoder is run by :mod:`emovox.features.whisper` (torch alone); the wav2vec 2.0
    family by ``transformers``.

    Raises:
        ImportError: ``transformers`` is not installed (the message says how to install it).
    """
    if whisper.is_whisper_folder(folder):
        return LoadedEncoder(model=whisper.load_whisper_encoder(folder), normalize=False)
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            f"pretrained encoders need the transformers package: {INSTALL_HINT}"
        ) from exc
    hf_logging = transformers.utils.logging
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    pre = Path(folder) / "preprocessor_config.json"
    settings = json.loads(pre.read_text()) if pre.is_file() else {}
    return LoadedEncoder(model=model, normalize=bool(settings.get("do_normalize", False)))


@dataclasses.dataclass
class Encoder(Feature):
    """One hidden layer of a pretrained speech encoder, ``[1, D, T]``.

    Attributes:
        path: the encoder's folder (Hugging Face layout) on this machine.
        layer: which hidden state: 0 is the convolutional front end's projection, ``k`` the
            ``k``-th transformer layer, negative counts from the last (-1).
        layers: several hidden states, a comma list (``"2,3"``); given, it replaces
            :attr:`layer` (which must then be left at its default). Empty: :attr:`layer` alone.
        combine: how the states of :attr:`layers` are combined (:data:`COMBINES`): ``stack``
            (side by side, ``k`` times the width) or ``mean`` (averaged, the width of one).
        fingerprint: the encoder's :func:`encoder_fingerprint`; filled in when empty, checked
            when given (a bundle's feature must come from the encoder it was trained on).
        level: ``recorded`` (the waveform as it is) or ``rms`` (scaled to :data:`RMS_DBFS`
            first: the same hidden states whatever the recording's gain, clipping aside).
    """

    name: ClassVar[str] = "encoder"
    path: str = ""
    layer: int = -1
    fingerprint: str = ""
    layers: str = ""
    combine: str = "stack"
    level: str = "recorded"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.layers, int | list | tuple) and not isinstance(self.layers, bool):
            # --feature-param layers=3 or layers=[2,3] parse as JSON: the same as "3" / "2,3"
            items = self.layers if isinstance(self.layers, list | tuple) else [self.layers]
            self.layers = ",".join(str(k) for k in items)
        if self.combine not in COMBINES:
            raise ValueError(f"combine must be one of {', '.join(COMBINES)}, not {self.combine!r}")
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {self.level!r}")
        if self.layers and self.layer != -1:
            raise ValueError(
                f"give either layer ({self.layer}) or layers ({self.layers!r}), not both"
            )
        if self.sample_rate != SAMPLE_RATE:
            raise ValueError(
                f"speech encoders read {SAMPLE_RATE} Hz audio, not sample_rate={self.sample_rate}"
            )
        if not self.path:
            raise ValueError(
                f"the {self.name} feature needs the encoder's folder: --feature-param path=DIR "
                "(a Hugging Face model folder with config.json and its weights; nothing is "
                "downloaded)"
            )
        folder, self.fingerprint = checked_encoder(self.path, self.fingerprint)
        self._folder = str(folder.resolve())
        self._shape = encoder_shape(folder)
        self.layer_indices()  # a layer the encoder lacks is refused here, not at the first clip

    @property
    def folder(self) -> Path:
        """The encoder's folder on this machine (where :attr:`path` led)."""
        return Path(self._folder)

    def to_dict(self) -> dict:
        """As :meth:`Feature.to_dict`, leaving ``layers`` out while it is empty, ``combine``
        while it is ``stack`` and ``level`` while it is ``recorded`` (configurations written
        before they existed read as they were, and keep their cache keys)."""
        config = super().to_dict()
        if not self.layers:
            del config["layers"]
        if self.combine == "stack":
            del config["combine"]
        if self.level == "recorded":
            del config["level"]
        return config

    # -- the network ---------------------------------------------------------------------------
    @property
    def encoder(self) -> LoadedEncoder:
        """The loaded encoder (loaded on first use)."""
        return load_encoder(self._folder)

    @property
    def hop_seconds(self) -> float:
        return self._shape.hop / self.sample_rate

    def layer_indices(self) -> list[int]:
        """:attr:`layers` (or :attr:`layer`) as indices into the ``n_layers + 1`` hidden states.

        Raises:
            ValueError: ``layers`` is not a comma list of distinct integers, or the encoder has no
                such layer (its count named).
        """
        n = self._shape.n_layers + 1
        if self.layers:
            try:
                asked = [int(k) for k in str(self.layers).split(",")]
            except ValueError:
                raise ValueError(
                    f"layers must be a comma list of integers such as '2,3', not {self.layers!r}"
                ) from None
        else:
            asked = [self.layer]
        for k in asked:
            if not -n <= k < n:
                raise ValueError(
                    f"layer {k} out of range: the encoder at {self.path} has hidden states "
                    f"0-{n - 1} (0: its front end, {n - 1}: its last layer)"
                )
        indices = [k % n for k in asked]
        if len(set(indices)) < len(indices):
            raise ValueError(f"layers {self.layers!r} names a hidden state twice")
        return indices

    def frames(self, wave: np.ndarray) -> np.ndarray:
        """``[D, T]`` hidden states of :attr:`layer` for one waveform (with :attr:`layers`, the
        states combined: ``[kD, T]`` stacked or ``[D, T]`` averaged)."""
        return self.combine_frames(self._layers(wave, self.layer_indices()))

    def combine_frames(self, states: Sequence[np.ndarray]) -> np.ndarray:
        """The ``[D, T]`` states of :meth:`layer_indices`, in that order, combined as
        :attr:`combine` says (one state: itself)."""
        if len(states) == 1:
            return states[0]
        if self.combine == "mean":
            return np.mean(states, axis=0, dtype=np.float32)
        return np.concatenate(states, axis=0)

    def select(self, every: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The states of :meth:`layer_indices` out of :meth:`every_layer`'s output."""
        return [every[i] for i in self.layer_indices()]

    def from_states(self, states: Sequence[np.ndarray]) -> np.ndarray:
        """This feature's array from the ``[D, T]`` states of :meth:`layer_indices`."""
        return self.summarise(self.combine_frames(states))

    def every_layer(self, wave: np.ndarray, up_to: int | None = None) -> list[np.ndarray]:
        """``[D, T]`` frames of every hidden state (0: the front end's; with ``up_to``, the
        states ``0..up_to`` only) for one waveform, chunks of :data:`CHUNK_SECONDS` (or fewer, as
        the encoder allows) joined: one pass of the encoder serves any layer."""
        return self._layers(wave, None if up_to is None else range(up_to + 1))

    @torch.no_grad()
    def _layers(self, wave: np.ndarray, indices: Sequence[int] | None) -> list[np.ndarray]:
        """``[D, T]`` frames of the hidden states ``indices`` (``None``: all) of one waveform;
        only those are copied out of the encoder's output."""
        enc = self.encoder
        x = np.asarray(wave, dtype=np.float32)
        if len(x) < MIN_SAMPLES:
            x = np.pad(x, (0, MIN_SAMPLES - len(x)))
        if self.level == "rms":
            x = at_rms_level(x)
        if enc.normalize:  # as the encoder's own feature extractor does
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        step = int(min(CHUNK_SECONDS, self._shape.max_seconds or math.inf) * self.sample_rate)
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            if start and len(chunk) < MIN_SAMPLES:
                break  # a sliver after the last whole chunk: no frame of its own
            states = enc.hidden_states(chunk, None if indices is None else max(indices))
            keep = range(len(states)) if indices is None else indices
            parts.append([states[i].float().T.numpy() for i in keep])
        return [
            np.ascontiguousarray(np.concatenate(layer, axis=1), dtype=np.float32)
            for layer in zip(*parts, strict=True)
        ]

    # -- the feature ---------------------------------------------------------------------------
    def summarise(self, frames: np.ndarray) -> np.ndarray:
        """The array this feature gives for ``[D, T]`` frames: ``[1, D, T]``."""
        return frames[None]

    def __call__(
        self, waves: Sequence[np.ndarray], device: str | torch.device = "cpu", batch_size: int = 16
    ) -> list[np.ndarray]:
        """One array per waveform, encoded one at a time on the CPU (no padding reaches the
        encoder; ``device`` and ``batch_size`` are unused)."""
        indices = self.layer_indices()
        return [self.from_states(self._layers(w, indices)) for w in self.front(waves)]

    def compute(
        self, audio: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched form of :meth:`__call__`: zero-padded output and each item's frame count."""
        waves = [a[: int(n)].detach().cpu().numpy() for a, n in zip(audio, lengths, strict=True)]
        feats = self(waves)
        n_frames = torch.tensor([f.shape[-1] for f in feats], dtype=torch.long)
        out = torch.zeros(len(feats), *feats[0].shape[:2], int(n_frames.max()))
        for i, f in enumerate(feats):
            out[i, ..., : f.shape[-1]] = torch.from_numpy(f)
        return out.to(audio.device), n_frames.to(audio.device)


@dataclasses.dataclass
class EncoderPooled(Encoder):
    """An encoder layer's frames summarised over the utterance, ``[1, D, 1]`` (``mean``) or
    ``[1, 2D, 1]`` (``meanstd``: the means, then the standard deviations)."""

    name: ClassVar[str] = "encoder-pooled"
    fixed_length: ClassVar[bool] = True
    n_frames: ClassVar[int] = 1
    pooling: str = "meanstd"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        super().__post_init__()

    @property
    def hop_seconds(self) -> float:
        """0: the single output frame spans the whole utterance."""
        return 0.0

    def summarise(self, frames: np.ndarray) -> np.ndarray:
        parts = [frames.mean(axis=1)]
        if self.pooling == "meanstd":
            parts.append(frames.std(axis=1))
        return np.concatenate(parts)[None, :, None].astype(np.float32)

    def from_states(self, states: Sequence[np.ndarray]) -> np.ndarray:
        """Each state pooled on its own, then combined (:meth:`combine_summaries`)."""
        return self.combine_summaries([self.summarise(s) for s in states])

    def combine_summaries(self, summaries: Sequence[np.ndarray]) -> np.ndarray:
        """This feature's array from the ``[1, D or 2D, 1]`` arrays of single-layer features with
        the same pooling, one per layer of :meth:`layer_indices` in order, so that cached single
        layers make it without running the encoder again. ``stack``: every layer's means, then
        every layer's standard deviations (the pooled stacked frames); ``mean``: their average."""
        flat = [np.asarray(s, dtype=np.float32).reshape(-1) for s in summaries]
        if len(flat) == 1:
            out = flat[0]
        elif self.combine == "mean":
            out = np.mean(flat, axis=0)
        else:
            n_parts = POOLINGS.index(self.pooling) + 1
            split = [np.split(f, n_parts) for f in flat]
            out = np.concatenate([s[i] for i in range(n_parts) for s in split])
        return out[None, :, None].astype(np.float32)
