"""Shared helpers and fixtures. Every test makes its own audio; nothing is downloaded."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.train.recipe import Recipe

# -- synthetic audio ------------------------------------------------------------------------------


def tone(
    seconds: float = 1.0, sr: int = 16000, freq: float = 220.0, amp: float = 0.5
) -> np.ndarray:
    """A float32 sine of ``seconds`` at ``sr`` Hz."""
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_tone(
    path: str | os.PathLike,
    seconds: float = 1.0,
    sr: int = 16000,
    freq: float = 220.0,
    channels: int = 1,
    subtype: str | None = "PCM_16",
    fmt: str | None = None,
) -> Path:
    """Write a sine tone with soundfile; every channel holds the same signal. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    y = tone(seconds, sr, freq)
    data = y if channels == 1 else np.repeat(y[:, None], channels, axis=1)
    sf.write(str(path), data, sr, subtype=subtype, format=fmt)
    return path


def peak_frequency(x: np.ndarray, sr: int) -> float:
    """The frequency (Hz) of the largest FFT bin of ``x``."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / sr)[int(np.argmax(spectrum))])


# -- a tiny fake RAVDESS tree -------------------------------------------------------------------

EMOTION_FREQS = {"01": 200.0, "02": 300.0, "03": 400.0, "04": 500.0, "05": 600.0, "06": 700.0}
"""Emotion code -> tone frequency of the fake RAVDESS files (different per emotion)."""


@dataclass
class FakeRavdess:
    root: Path
    speech: list[Path] = field(default_factory=list)
    song: list[Path] = field(default_factory=list)
    bad: list[Path] = field(default_factory=list)

    @property
    def all_valid(self) -> list[Path]:
        return self.speech + self.song


@pytest.fixture
def fake_ravdess(tmp_path: Path) -> FakeRavdess:
    """Actors 01 (male) and 02 (female) x six emotions, 0.5 s tones.

    Actor 01 is stored as ``.wav``, actor 02 as ``.flac``; one file is stereo and one is 48 kHz.
    One song file (``03-02-...``), one badly named ``foo.wav`` and one invalid emotion code
    (``03-01-09-...``) are added.
    """
    root = tmp_path / "ravdess"
    tree = FakeRavdess(root)
    for actor, ext in (("01", ".wav"), ("02", ".flac")):
        folder = root / f"Actor_{actor}"
        for emo, freq in EMOTION_FREQS.items():
            intensity = "01" if emo == "01" else "02"
            name = f"03-01-{emo}-{intensity}-01-01-{actor}{ext}"
            channels = 2 if (actor, emo) == ("01", "03") else 1
            sr = 48000 if (actor, emo) == ("02", "04") else 16000
            tree.speech.append(
                write_tone(folder / name, seconds=0.5, sr=sr, freq=freq, channels=channels)
            )
    tree.song.append(write_tone(root / "Actor_01" / "03-02-03-01-02-02-01.wav", seconds=0.5))
    tree.bad.append(write_tone(root / "Actor_01" / "foo.wav", seconds=0.5))
    tree.bad.append(write_tone(root / "Actor_02" / "03-01-09-01-01-01-01.wav", seconds=0.5))
    (root / "README.txt").write_text("not audio, not scanned\n")
    return tree


# -- espeak-ng speech -----------------------------------------------------------------------------


def espeak_available() -> bool:
    """Whether the ``espeak-ng`` command is installed."""
    return shutil.which("espeak-ng") is not None


def require_espeak() -> None:
    """Skip the calling test without espeak-ng, except on CI (``CI=true``), where it must exist."""
    if espeak_available():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("espeak-ng is required on CI but is not installed")
    pytest.skip("espeak-ng is not installed")


def make_speech(
    path: str | os.PathLike, text: str, voice: str = "en", speed: int = 175, pitch: int = 50
) -> Path:
    """Synthesise ``text`` into a wav file with the ``espeak-ng`` command line."""
    require_espeak()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


# -- a synthetic corpus and one trained model, shared by the end-to-end tests ---------------------

SYNTH_EMOTIONS = ("neutral", "happy", "sad", "angry")
"""The emotions of :func:`synth_corpus` (in this order, also the trained model's classes)."""

SYNTH_SPEAKERS = ("Actor_01", "Actor_02", "Actor_03", "Actor_04")

TINY_CNN = {"channels": [4, 8, 8, 8]}
"""Model parameters of a ``cnn`` small enough to train in seconds."""


def tiny_config(**overrides):
    """The ``cnn`` training settings, shortened: 3 epochs in batches of 8 (``overrides`` win)."""
    from emovox.models import model_class
    from emovox.train.config import TrainConfig

    return TrainConfig.for_model(model_class("cnn"), **{"epochs": 3, "batch_size": 8, **overrides})


def synth_manifest(root: Path):
    """The RAVDESS-recipe manifest of a :func:`synth_corpus` folder."""
    from emovox.data.corpora import scan_corpus

    return scan_corpus("ravdess", root)


def synth_scheme():
    """The label scheme of the synthetic corpus: its four emotions."""
    from emovox.data.labels import resolve_labels

    return resolve_labels(",".join(SYNTH_EMOTIONS))


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RAVDESS-named corpus: 4 speakers (2 male, 2 female) x 4 emotions x 2 sentences.

    32 files of numpy "speech" (espeak-ng is not needed). Read-only for the tests: copy it first.
    """
    from emovox.data.synth import make_corpus

    root = tmp_path_factory.mktemp("synth") / "corpus"
    make_corpus(root, emotions=SYNTH_EMOTIONS, n_speakers=4, repetitions=1, engine="numpy")
    return root


def tone_corpora(root: Path, savee: bool = True) -> list[str]:
    """Two tiny corpora of tones under ``root`` in SAVEE's and TESS's naming (two speakers x
    angry, happy, neutral, sad each; ``savee=False``: TESS alone). Returns the ``--train``
    values (``savee:DIR``, ``tess:DIR``)."""
    out = []
    if savee:
        for s, speaker in enumerate(("DC", "JE")):
            for k, code in enumerate(("a", "h", "n", "sa")):
                name = root / "SAVEE" / f"{speaker}_{code}01.wav"
                write_tone(name, seconds=0.7, freq=140.0 + 30 * k + s)
        out.append(f"savee:{root / 'SAVEE'}")
    for s, speaker in enumerate(("OAF", "YAF")):
        for k, code in enumerate(("angry", "happy", "neutral", "sad")):
            name = root / "TESS" / f"{speaker}_back_{code}.wav"
            write_tone(name, seconds=0.7, freq=160.0 + 25 * k + s)
    return [*out, f"tess:{root / 'TESS'}"]


def make_tiny_encoder(folder: Path, normalize: bool = False, seed: int = 0) -> Path:
    """A tiny random wav2vec 2.0 encoder saved in Hugging Face's layout (2 layers, width 16,
    20 samples per frame); ``normalize`` adds a ``preprocessor_config.json`` asking for
    standardised input. Needs ``transformers``."""
    import json

    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2Model(config).save_pretrained(folder)
    if normalize:
        (folder / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True}))
    return folder


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`make_tiny_encoder`'s folder (skips when ``transformers`` is missing). Read-only."""
    pytest.importorskip("transformers")
    return make_tiny_encoder(tmp_path_factory.mktemp("encoders") / "tiny-w2v")


@pytest.fixture(scope="session")
def trained_bundle(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``cnn`` trained on :func:`synth_corpus` by ``emovox.train.pipeline.train`` (3 epochs).

    The folder holds the bundle, the training curves and the checkpoint. Read-only for the
    tests: copy it before changing anything.
    """
    from emovox.train.pipeline import train

    out = tmp_path_factory.mktemp("trained") / "model"
    return train(
        synth_manifest(synth_corpus),
        synth_scheme(),
        tiny_recipe(),
        out,
        progress=False,
    )


def train_tiny(corpus: Path, out: Path, **overrides) -> Path:
    """The tiny ``cnn`` trained on a synthetic corpus into ``out`` (``overrides``: training
    settings of :func:`tiny_config`)."""
    from emovox.train.pipeline import train

    return train(
        synth_manifest(corpus), synth_scheme(), tiny_recipe(**overrides), out, progress=False
    )


def tiny_recipe(training=None, **overrides):
    """The tiny ``cnn`` (:data:`TINY_CNN`) with ``training`` settings, or :func:`tiny_config`
    with ``overrides``."""
    return Recipe.for_model("cnn", training=training or tiny_config(**overrides), params=TINY_CNN)


def tiny_cli(
    command: str, data: list[str], out, *extra: str, epochs: int = 2, cache=None
) -> list[str]:
    """Arguments of an ``emovox train`` / ``evaluate`` run of the tiny ``cnn`` (batches of 8,
    quiet): ``data`` (``--data DIR --labels ...``, ``--train C:DIR``, ...), then ``extra``
    options, ``--out`` and the feature cache (``--no-cache`` without ``cache``)."""
    cached = ["--cache-dir", str(cache)] if cache is not None else ["--no-cache"]
    tiny = ["--epochs", str(epochs), "--batch-size", "8", "--param", "channels=[4,8,8,8]"]
    return [command, *map(str, data), *tiny, *extra, "--out", str(out), "--quiet", *cached]


def run_cli(args: list[str]):
    """``emovox ARGS`` in-process; asserts it succeeded and returns the click result."""
    from click.testing import CliRunner

    from emovox.apps.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def copy_bundle(src: Path, dst: Path) -> Path:
    """Copy only a bundle's two files (``model.safetensors``, ``config.json``) into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copy2(src / name, dst / name)
    return dst


# -- toy feature arrays for trainer tests -------------------------------------------------------


def toy_data(n_per_class: int = 8, bins: int = 8, seed: int = 0, max_frames: int = 30):
    """Two classes of ``[1, bins, T]`` noise with means -1 and +1 (T varies), and the labels."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(2 * n_per_class):
        c = i % 2
        t = int(rng.integers(12, max_frames))
        xs.append((rng.standard_normal((1, bins, t)) + (1.0 if c else -1.0)).astype(np.float32))
        ys.append(c)
    return xs, np.array(ys)


TOY_TRAINING = {
    "batch_size": 8,
    "lr": 1e-2,
    "weight_decay": 1e-3,
    "optimizer": "adamw",
    "patience": 100,
    "crop_seconds": 0.15,
    "specaugment": True,
    "mixup": 0.2,
    "seed": 3,
}
"""Trainer settings for :func:`toy_data` that exercise every random path: crops, SpecAugment,
mixup, dropout."""


def tiny_cnn(seed: int = 0):
    """A two-class ``cnn`` on 8 bins, small enough to train in a fraction of a second."""
    import torch

    from emovox.models import build_model

    torch.manual_seed(seed)
    return build_model("cnn", 2, (1, 8), channels=[4, 8], dropout=0.2)


def evaluate_and_train_fusion(
    name: str, corpus: Path, tmp_path: Path, cnn: dict, epochs: int = 3
) -> tuple[dict, dict, list]:
    """A late-fusion model (``cnn-egemaps`` and kin) evaluated with 2 speaker folds on the synthetic
    corpus, then trained on all of it and saved: its metrics, the bundle's ``config.json`` and
    the loaded bundle's predictions of four files."""
    import json

    from emovox.evaluate.runner import evaluate
    from emovox.features import FeatureCache
    from emovox.inference.recognizer import Recognizer
    from emovox.models import model_class
    from emovox.train.config import TrainConfig
    from emovox.train.pipeline import train

    manifest, scheme = synth_manifest(corpus), synth_scheme()
    cache = FeatureCache(tmp_path / "cache")
    config = TrainConfig.for_model(model_class(name), epochs=epochs, batch_size=8)
    recipe = Recipe.for_model(name, training=config, params={"cnn": cnn})
    common = {"cache": cache, "progress": False}
    metrics = evaluate(
        manifest, scheme, recipe, tmp_path / "eval", protocol="speakers-kfold", k=2, **common
    )
    out = train(manifest, scheme, recipe, tmp_path / "model", **common)
    saved = json.loads((out / "config.json").read_text())
    preds = Recognizer.load(out).predict_batch([u.path for u in manifest][:4])
    return metrics, saved, preds


def benchmark_module(name: str):
    """The script ``benchmarks/<name>.py`` loaded as a module (the benchmarks are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"emovox_benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def interrupt_at(monkeypatch, at_epoch: int) -> None:
    """Make ``Trainer._epoch`` raise KeyboardInterrupt when epoch ``at_epoch`` starts."""
    from emovox.train.trainer import Trainer

    original = Trainer._epoch

    def epoch(self, xs, ys, run, epoch):
        if epoch == at_epoch:
            raise KeyboardInterrupt
        return original(self, xs, ys, run, epoch)

    monkeypatch.setattr(Trainer, "_epoch", epoch)


def full_and_resumed_after_ctrl_c(run, config, folder, monkeypatch, at_epoch: int = 3):
    """``run(config, out, resume=False, seed=0)`` once uninterrupted into ``folder/full``, and
    once cut by Ctrl-C at ``at_epoch`` into ``folder/cut`` then resumed there with fresh
    weights (``seed=9``, so everything must come from the checkpoint): both runs' returns."""
    import pytest

    from emovox.train.trainer import TrainingInterrupted

    full = run(config, folder / "full")
    interrupt_at(monkeypatch, at_epoch)
    with pytest.raises(TrainingInterrupted):
        run(config, folder / "cut")
    monkeypatch.undo()
    return full, run(config, folder / "cut", resume=True, seed=9)


def fake_fold_run(root: Path, bundle: Path, files: list[Path], labels: list[str]) -> Path:
    """A fake ``emovox evaluate --out`` folder for the per-fold benchmarks: two categorical
    folds (``ravdess``, ``emodb``) and one dimensions-only fold (``baved``), each with ``bundle``
    as its saved model and a ``predictions.csv`` of ``files``."""
    run = root / "run"
    parts = {1: (files[::2], "ravdess"), 2: (files[1::2], "emodb"), 3: (files[:3], "baved")}
    for fold, (part, corpus) in parts.items():
        folder = run / f"fold_{fold}"
        shutil.copytree(bundle, folder / "model")
        with (folder / "predictions.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["fold", "corpus", "path", "label", "predicted"])
            for i, p in enumerate(part):
                label = "" if corpus == "baved" else labels[i % len(labels)]
                w.writerow([fold, corpus, str(p), label, labels[0]])
    return run
