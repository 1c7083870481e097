"""Tests for emovox.models, emovox.train.trainer and emovox.train.pipeline.train.

Trainer tests run on a toy problem (two classes of random "spectrograms" with different means) and a
tiny ``cnn``; the pipeline tests use the session's synthetic corpus and trained bundle.
"""

from __future__ import annotations

import csv
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    SYNTH_EMOTIONS,
    SYNTH_SPEAKERS,
    TINY_CNN,
    TOY_TRAINING,
    interrupt_at,
    synth_manifest,
    synth_scheme,
    tiny_config,
    tiny_recipe,
    tone,
)
from safetensors.torch import load_file
from torch import nn

import emovox.models.tutorial_cnn1d as tutorial_module
from emovox.data.protocols import validation_split
from emovox.inference.predict import pad_batch
from emovox.inference.recognizer import Recognizer
from emovox.models import MODELS, build_model, model_class
from emovox.models.cnn import CNN
from emovox.models.tutorial_cnn1d import TutorialCNN1D
from emovox.train.config import TrainConfig
from emovox.train.dataset import data_fingerprint
from emovox.train.pipeline import train
from emovox.train.recipe import default_feature
from emovox.train.trainer import Trainer, TrainingInterrupted

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOP = 0.01


# -- helpers ------------------------------------------------------------------------------------


def toy_data(
    n_per_class: int = 12, bins: int = 8, shift: float = 1.0, seed: int = 0
) -> tuple[list[np.ndarray], np.ndarray]:
    """Two classes of ``[1, bins, T]`` noise (T varies) whose means differ by ``2 * shift``."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(2 * n_per_class):
        c = i % 2
        t = int(rng.integers(12, 30))
        xs.append((rng.standard_normal((1, bins, t)) + (shift if c else -shift)).astype(np.float32))
        ys.append(c)
    return xs, np.array(ys)


def tiny_cnn(seed: int = 0, n_classes: int = 2, bins: int = 8) -> CNN:
    torch.manual_seed(seed)
    return build_model("cnn", n_classes, (1, bins), channels=[4, 8], dropout=0.2)


def toy_config(**overrides) -> TrainConfig:
    """Every random path on (:data:`TOY_TRAINING`), 4 one-cycle epochs, label smoothing."""
    base = {**TOY_TRAINING, "epochs": 4, "schedule": "onecycle", "label_smoothing": 0.05}
    return TrainConfig(**{**base, **overrides})


def run(config: TrainConfig, checkpoint_dir=None, resume=False, seed=0):
    """Train a fresh tiny cnn (initialised from ``seed``) on the toy problem."""
    xs, ys = toy_data()
    vx, vy = toy_data(n_per_class=6, seed=1)
    model = tiny_cnn(seed)
    result = Trainer(model, config, HOP, checkpoint_dir, progress=False).fit(
        xs, ys, vx, vy, resume=resume
    )
    return model, result


def strip_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def snapshot(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def scripted_evaluate(monkeypatch, val_uas: list[float]) -> dict[int, dict]:
    """Make ``Trainer.validation_scores`` return ``val_uas`` in turn; returns the weights seen
    per epoch."""
    seen: dict[int, dict] = {}
    script = iter(val_uas)

    def scores(self, xs, ys, loss_fn, groups=None):
        seen[len(seen) + 1] = snapshot(self.model)
        return 1.0, next(script), {}

    monkeypatch.setattr(Trainer, "validation_scores", scores)
    return seen


def perturb_batch_norm(model: nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics (fresh ones map 0 to 0: padding bugs hide)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 2 - 1)


# -- models ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_gives_logits_for_its_default_feature(name: str, request) -> None:
    required = {}
    if model_class(name).default_feature["name"].startswith("encoder"):
        required = {"path": str(request.getfixturevalue("tiny_encoder"))}
    feature = default_feature(name, **required)
    x = feature.extract(tone(1.2, sr=feature.sample_rate, freq=330.0))
    assert x.ndim == 3
    model = build_model(name, 5, x.shape[:2]).eval()
    assert model.name == name
    assert model_class(name) is MODELS[name]
    batch = torch.from_numpy(np.stack([x, 0.5 * x, x]))
    with torch.no_grad():
        logits = model(batch)
        masked = model(batch, torch.ones(3, x.shape[-1], dtype=torch.bool))
    assert logits.shape == (3, 5)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(masked, logits)
    torch.testing.assert_close(logits[0], logits[2])


def test_build_model_rejects_unknown_names_and_parameters() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        build_model("no-such-model", 4, (1, 64))
    with pytest.raises(ValueError, match="bad parameters"):
        build_model("cnn", 4, (1, 64), no_such_param=3)


def test_cnn_accepts_any_length_and_a_mask() -> None:
    model = build_model("cnn", 3, (1, 16), channels=[4, 8, 8]).eval()
    with torch.no_grad():
        for t in (1, 2, 3, 5, 17, 200):
            x = torch.randn(2, 1, 16, t)
            assert model(x).shape == (2, 3)
            mask = torch.ones(2, t, dtype=torch.bool)
            mask[1, t // 2 + 1 :] = False
            out = model(x, mask)
            assert out.shape == (2, 3)
            assert torch.isfinite(out).all()


CNN_VARIANTS = [{}] + (
    [{"freq_pool": "flatten"}] if "freq_pool" in inspect.signature(CNN).parameters else []
)


@pytest.mark.parametrize("variant", CNN_VARIANTS, ids=lambda v: ",".join(v.values()) or "default")
def test_cnn_padded_batch_equals_single_items(variant: dict) -> None:
    torch.manual_seed(0)
    model = build_model("cnn", 4, (1, 64), **TINY_CNN, **variant)
    perturb_batch_norm(model)
    model.eval()
    rng = np.random.default_rng(0)
    lengths = [*range(1, 12), 37, 60, 81, 100, 101]
    items = [rng.standard_normal((1, 64, t)).astype(np.float32) for t in lengths]
    x, mask = pad_batch(items)
    with torch.no_grad():
        batched = model(x, mask)
        single = torch.cat([model(torch.from_numpy(a)[None]) for a in items])
        # Whatever lies in the padding is ignored.
        garbage = x + 5.0 * torch.randn_like(x) * (~mask)[:, None, None, :]
        with_garbage = model(garbage, mask)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)
    torch.testing.assert_close(with_garbage, single, atol=1e-5, rtol=0)


def test_tutorial_cnn1d_matches_its_docstring() -> None:
    doc = tutorial_module.__doc__
    for phrase in (
        "Conv1D 256 (kernel 5, same)",
        "Conv1D 128 (5)",
        "Dropout 0.1",
        "MaxPool 8",
        "Flatten",
        "Dense",
        "216",
    ):
        assert phrase in doc
    model = TutorialCNN1D(10, (1, 1))
    layers = list(model.features)
    assert [type(m) for m in layers] == [
        nn.Conv1d,
        nn.ReLU,
        nn.Conv1d,
        nn.ReLU,
        nn.Dropout,
        nn.MaxPool1d,
        nn.Conv1d,
        nn.ReLU,
        nn.Conv1d,
        nn.ReLU,
        nn.Flatten,
    ]
    convs = [m for m in layers if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 256, (5,), "same"),
        (256, 128, (5,), "same"),
        (128, 128, (5,), "same"),
        (128, 128, (5,), "same"),
    ]
    assert layers[4].p == pytest.approx(0.1)
    assert layers[5].kernel_size == 8
    assert layers[5].stride == 8
    assert isinstance(model.classifier, nn.Linear)
    assert model.classifier.in_features == 128 * 27
    assert model.classifier.out_features == 10

    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for m in layers]
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 1, 1, 216))
    for h in hooks:
        h.remove()
    assert shapes[0] == (2, 256, 216)
    assert shapes[2] == (2, 128, 216)
    assert shapes[5] == (2, 128, 27)
    assert shapes[6] == shapes[8] == (2, 128, 27)
    assert shapes[-1] == (2, 128 * 27)
    assert logits.shape == (2, 10)

    # Keras initialisation: Glorot-uniform weights, zero biases.
    for m in [*convs, model.classifier]:
        assert torch.count_nonzero(m.bias) == 0
        fan_in = m.weight.shape[1] * (m.weight.shape[2] if m.weight.ndim == 3 else 1)
        fan_out = m.weight.shape[0] * (m.weight.shape[2] if m.weight.ndim == 3 else 1)
        assert float(m.weight.detach().abs().max()) <= (6 / (fan_in + fan_out)) ** 0.5 + 1e-6
    # Shorter and longer inputs are padded / cropped to the 216 frames of the Flatten layer.
    with torch.no_grad():
        assert model(torch.randn(1, 1, 1, 100)).shape == (1, 10)
        assert model(torch.randn(1, 1, 1, 300)).shape == (1, 10)


# -- training settings --------------------------------------------------------------------------


def test_train_config_for_model_merges_defaults_and_overrides() -> None:
    cfg = TrainConfig.for_model(CNN, epochs=5, lr=None, mixup=0.0)
    assert cfg.epochs == 5  # override
    assert cfg.lr == CNN.default_training["lr"]  # None means "not given"
    assert cfg.mixup == 0.0  # a falsy override still counts
    assert cfg.weight_decay == CNN.default_training["weight_decay"]  # model default
    assert cfg.val_fraction == TrainConfig().val_fraction  # dataclass default
    tut = TrainConfig.for_model(TutorialCNN1D, batch_size=4)
    assert tut.optimizer == "adam"
    assert tut.schedule == "constant"
    assert tut.crop_seconds is None
    assert tut.specaugment is False
    assert tut.batch_size == 4
    assert TrainConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "bad", [{"optimizer": "sgd"}, {"schedule": "step"}, {"epochs": 0}, {"batch_size": 0}]
)
def test_train_config_rejects_bad_settings(bad: dict) -> None:
    with pytest.raises(ValueError):
        TrainConfig.for_model(CNN, **bad)
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_train_config_rejects_unknown_settings() -> None:
    with pytest.raises(TypeError):
        TrainConfig.for_model(CNN, no_such_setting=1)


# -- the trainer ----------------------------------------------------------------------------------


def test_training_is_deterministic() -> None:
    a, ra = run(toy_config())
    b, rb = run(toy_config())
    assert same_state(a.state_dict(), b.state_dict())
    assert strip_seconds(ra.history) == strip_seconds(rb.history)
    assert ra.best_epoch == rb.best_epoch
    # ... and the seed matters.
    c, _ = run(toy_config(seed=4))
    assert not same_state(a.state_dict(), c.state_dict())


def test_loss_goes_down_on_a_separable_problem() -> None:
    config = toy_config(
        epochs=15, schedule="constant", specaugment=False, mixup=0.0, crop_seconds=None
    )
    model, result = run(config)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 15
    assert losses[-1] < 0.5 * losses[0]
    assert result.best_val_ua == pytest.approx(100.0)
    assert {"epoch", "train_loss", "lr", "val_loss", "val_ua", "seconds"} <= set(result.history[0])
    assert not model.training  # left in eval mode


def test_early_stopping_restores_the_best_epoch(monkeypatch) -> None:
    seen = scripted_evaluate(monkeypatch, [0.5, 0.7, 0.7, 0.6, 0.9, 0.9, 0.9])
    model, result = run(toy_config(epochs=7, patience=2))
    # Epoch 3 ties (no gain), epoch 4 is worse: two stale epochs, so epoch 5 never runs.
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert [h["val_ua"] for h in result.history] == pytest.approx([50, 70, 70, 60])
    assert result.best_epoch == 2
    assert result.best_val_ua == pytest.approx(70.0)
    assert same_state(model.state_dict(), seen[2])
    assert not same_state(seen[2], seen[4])


def test_checkpoint_folder(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    model, result = run(toy_config(epochs=3), ckpt)
    assert {p.name for p in ckpt.iterdir()} == {
        "best.safetensors",
        "last.safetensors",
        "state.json",
    }
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 3
    assert state["best_epoch"] == result.best_epoch
    assert state["config"] == toy_config(epochs=3).to_dict()
    assert len(state["history"]) == 3
    best = load_file(str(ckpt / "best.safetensors"))
    assert same_state(best, model.state_dict())  # the model holds the best weights
    last = load_file(str(ckpt / "last.safetensors"))
    assert {k for k in last if k.startswith("model.")} == {f"model.{k}" for k in best}
    assert any(k.startswith("optim.") for k in last)


def test_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """4 epochs in one go == 2 epochs, then a resumed run to 4 (constant learning rate)."""
    config = toy_config(schedule="constant")
    full, r_full = run(config, tmp_path / "full")
    run(toy_config(schedule="constant", epochs=2), tmp_path / "split")
    # A fresh model with other weights: everything must come from the checkpoint.
    resumed, r_resumed = run(config, tmp_path / "split", resume=True, seed=9)
    assert same_state(full.state_dict(), resumed.state_dict())
    assert strip_seconds(r_full.history) == strip_seconds(r_resumed.history)
    assert r_full.best_epoch == r_resumed.best_epoch
    last_full = load_file(str(tmp_path / "full" / "last.safetensors"))
    last_resumed = load_file(str(tmp_path / "split" / "last.safetensors"))
    assert same_state(last_full, last_resumed)  # optimizer state included


def test_resume_after_ctrl_c_equals_an_uninterrupted_run(tmp_path: Path, monkeypatch) -> None:
    config = toy_config(epochs=5)  # one-cycle schedule: the step count must carry over
    full, r_full = run(config, tmp_path / "full")
    interrupt_at(monkeypatch, 3)
    with pytest.raises(TrainingInterrupted):
        run(config, tmp_path / "cut")
    monkeypatch.undo()
    resumed, r_resumed = run(config, tmp_path / "cut", resume=True, seed=9)
    assert same_state(full.state_dict(), resumed.state_dict())
    assert strip_seconds(r_full.history) == strip_seconds(r_resumed.history)


def test_resume_of_a_finished_run_trains_no_more(tmp_path: Path, monkeypatch) -> None:
    model, result = run(toy_config(epochs=2), tmp_path / "ckpt")

    def no_epoch(self, *args):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr(Trainer, "_epoch", no_epoch)
    again, r_again = run(toy_config(epochs=2), tmp_path / "ckpt", resume=True, seed=5)
    assert same_state(model.state_dict(), again.state_dict())
    assert strip_seconds(r_again.history) == strip_seconds(result.history)


def test_ctrl_c_keeps_the_best_weights_and_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    seen = scripted_evaluate(monkeypatch, [0.8, 0.6, 0.9])
    interrupt_at(monkeypatch, 3)
    xs, ys = toy_data()
    vx, vy = toy_data(n_per_class=6, seed=1)
    model = tiny_cnn()
    trainer = Trainer(model, toy_config(epochs=6), HOP, tmp_path / "ckpt", progress=False)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(xs, ys, vx, vy)
    assert info.value.epoch == 3
    assert info.value.checkpoint == tmp_path / "ckpt"
    assert set(seen) == {1, 2}
    assert same_state(model.state_dict(), seen[1])  # the best so far, not the last
    assert not same_state(seen[1], seen[2])
    assert not model.training
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["epoch"] == 2
    assert state["best_epoch"] == 1
    assert same_state(load_file(str(tmp_path / "ckpt" / "best.safetensors")), seen[1])
    assert (tmp_path / "ckpt" / "last.safetensors").is_file()


# -- the training pipeline ----------------------------------------------------------------------


def test_validation_split_is_by_speaker(synth_corpus: Path) -> None:
    manifest = synth_manifest(synth_corpus)
    indices = list(range(len(manifest)))
    train_idx, val_idx = validation_split(manifest, indices, fraction=0.5, seed=0)
    assert sorted(train_idx + val_idx) == indices
    train_spk = {manifest[i].speaker for i in train_idx}
    val_spk = {manifest[i].speaker for i in val_idx}
    assert not train_spk & val_spk
    assert len(val_spk) == 2
    assert {manifest[i].gender for i in val_idx} == {"female", "male"}  # balanced
    # Only the given indices are split.
    some = [i for i in indices if manifest[i].speaker != "Actor_01"]
    tr, va = validation_split(manifest, some, fraction=0.2, seed=0)
    assert sorted(tr + va) == some
    assert "Actor_01" not in {manifest[i].speaker for i in tr + va}
    # A single speaker leaves nothing to validate on.
    one = [i for i in indices if manifest[i].speaker == "Actor_02"]
    assert validation_split(manifest, one) == (one, [])


@pytest.mark.slow
def test_pipeline_train_writes_a_complete_bundle(trained_bundle: Path, synth_corpus: Path) -> None:
    out = trained_bundle
    for name in ("model.safetensors", "config.json", "training_curves.csv", "training_curves.png"):
        assert (out / name).is_file(), name
    assert (out / "training_curves.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "checkpoint" / "state.json").is_file()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["labels"] == list(SYNTH_EMOTIONS)
    assert cfg["feature"]["name"] == "logmel"
    assert cfg["feature"] == default_feature("cnn").to_dict()
    assert cfg["sample_rate"] == 16000
    assert cfg["model"]["name"] == "cnn"
    assert cfg["model"]["params"] == build_model("cnn", 4, (1, 64), **TINY_CNN).hparams
    assert cfg["model"]["params"]["channels"] == TINY_CNN["channels"]
    assert cfg["model"]["in_shape"] == [1, 64]
    assert cfg["training"] == tiny_config().to_dict()
    assert cfg["labels_scheme"]["classes"] == list(SYNTH_EMOTIONS)
    manifest = synth_manifest(synth_corpus)
    assert cfg["data"]["fingerprint"] == data_fingerprint(manifest)
    assert len(cfg["data"]["fingerprint"]) == 64
    assert cfg["data"]["n_utterances"] == len(manifest) == 32
    assert cfg["data"]["speakers"] == list(SYNTH_SPEAKERS)
    res = cfg["training_result"]
    assert res["epochs_run"] == 3
    assert 1 <= res["best_epoch"] <= 3
    assert 0.0 <= res["best_val_ua"] <= 100.0
    assert "interrupted" not in cfg

    with (out / "training_curves.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_ua", "lr"} <= set(rows[0])
    assert float(rows[res["best_epoch"] - 1]["val_ua"]) == pytest.approx(res["best_val_ua"])
    assert max(float(r["val_ua"]) for r in rows) == pytest.approx(res["best_val_ua"])


@pytest.mark.slow
def test_validation_speakers_are_training_speakers(trained_bundle: Path) -> None:
    cfg = json.loads((trained_bundle / "config.json").read_text())
    val = cfg["training_result"]["validation_speakers"]
    speakers = cfg["data"]["speakers"]
    assert val
    assert set(val) < set(speakers)  # drawn from the data, and some speakers are left to train


def test_the_fingerprint_follows_the_data(synth_corpus: Path) -> None:
    manifest = synth_manifest(synth_corpus)
    fp = data_fingerprint(manifest)
    assert data_fingerprint(manifest.take(reversed(range(len(manifest))))) == fp  # order-free
    assert data_fingerprint(manifest[1:]) != fp
    assert data_fingerprint(manifest.relabel(["x"] * len(manifest))) != fp


@pytest.mark.slow
def test_interrupted_pipeline_train_leaves_a_loadable_bundle_and_resumes(
    trained_bundle: Path, synth_corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    manifest = synth_manifest(synth_corpus)
    out = tmp_path / "model"

    def train_here(resume: bool = False) -> Path:
        return train(
            manifest,
            synth_scheme(),
            tiny_recipe(),
            out,
            resume=resume,
            progress=False,
        )

    interrupt_at(monkeypatch, 3)
    with pytest.raises(TrainingInterrupted):
        train_here()
    monkeypatch.undo()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["interrupted"] is True
    assert "training_result" not in cfg
    best = load_file(str(out / "checkpoint" / "best.safetensors"))
    assert same_state(load_file(str(out / "model.safetensors")), best)
    rec = Recognizer.load(out)
    pred = rec.predict(manifest[0].path)
    assert pred.label in SYNTH_EMOTIONS

    # Resuming finishes the run exactly as the uninterrupted session-wide one did.
    train_here(resume=True)
    cfg = json.loads((out / "config.json").read_text())
    assert "interrupted" not in cfg
    assert cfg["training_result"]["epochs_run"] == 3
    assert same_state(
        load_file(str(out / "model.safetensors")),
        load_file(str(trained_bundle / "model.safetensors")),
    )
    ref = json.loads((trained_bundle / "config.json").read_text())["training_result"]
    for key in ("best_epoch", "best_val_ua", "validation_speakers"):
        assert cfg["training_result"][key] == ref[key]
