"""The stronger architectures ``resnet``, ``crnn``, ``conformer`` and ``timnet`` and their layers.

Every model must give a padded item exactly the logits it gives alone, round-trip through a
bundle, export to ONNX with a dynamic time axis, learn on a toy problem and reject bad parameters.
Models are tiny and random; features are random arrays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from emovox.inference.bundle import load_bundle, save_bundle
from emovox.inference.predict import pad_batch
from emovox.models import MODELS, build_model, model_class
from emovox.models.layers import (
    AttentiveStatsPool,
    conv_out_length,
    length_mask,
    masked_mean_std,
    max_pool_nonnegative,
    pool_out_length,
    reverse_time,
)
from emovox.train.config import TrainConfig
from emovox.train.recipe import default_feature
from emovox.train.trainer import Trainer

NEW = ("resnet", "crnn", "conformer", "timnet")

BINS = {"resnet": 64, "crnn": 64, "conformer": 64, "timnet": 40}
"""Bins of each model's default feature (log-mel 64, MFCC 40)."""

TINY = {
    "resnet": {"channels": [4, 8, 8], "blocks": [1, 2, 1]},
    "crnn": {"channels": [4, 8, 8], "hidden": 8, "proj": 8, "attention": 8},
    "conformer": {
        "d_model": 16,
        "n_blocks": 2,
        "heads": 2,
        "ff_expansion": 2,
        "kernel": 5,
        "subsample_channels": 4,
        "attention": 8,
    },
    "timnet": {"channels": 8, "n_blocks": 4},
}
"""Parameters small enough to export and train in seconds."""


def make(name: str, n_classes: int = 4, tiny: bool = True, streams: int = 1, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(name, n_classes, (streams, BINS[name]), **(TINY[name] if tiny else {}))


def perturb_batch_norm(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial batch-norm statistics: fresh ones map 0 to 0 and would hide padding bugs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen))
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 2 - 1)


# -- the models -----------------------------------------------------------------------------------


def test_the_models_are_registered() -> None:
    for name in NEW:
        assert MODELS[name].name == name
        assert model_class(name) is MODELS[name]


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("tiny", [True, False], ids=["tiny", "default"])
def test_shapes_embedding_and_classifier(name: str, tiny: bool) -> None:
    model = make(name, n_classes=5, tiny=tiny, streams=2).eval()
    assert isinstance(model.embed_dim, int)
    assert isinstance(model.classifier, nn.Linear)
    assert model.classifier.in_features == model.embed_dim
    with torch.no_grad():
        for t in (1, 2, 3, 5, 17, 150):
            x = torch.randn(3, 2, BINS[name], t)
            logits = model(x)
            emb = model.embed(x)
            assert logits.shape == (3, 5)
            assert emb.shape == (3, model.embed_dim)
            assert torch.isfinite(logits).all()
            torch.testing.assert_close(model.classifier(emb), logits)
            mask = torch.ones(3, t, dtype=torch.bool)
            mask[1, t // 2 + 1 :] = False
            assert torch.isfinite(model(x, mask)).all()


@pytest.mark.parametrize("name", NEW)
def test_padded_batch_equals_single_items(name: str) -> None:
    model = make(name, tiny=False)
    perturb_batch_norm(model)
    model.eval()
    rng = np.random.default_rng(0)
    lengths = [*range(1, 12), 37, 61, 81, 99, 101, 150]  # mostly not multiples of the strides
    items = [rng.standard_normal((1, BINS[name], t)).astype(np.float32) for t in lengths]
    x, mask = pad_batch(items)
    garbage = x + 5.0 * torch.randn_like(x) * (~mask)[:, None, None, :]
    with torch.no_grad():
        single = torch.cat([model(torch.from_numpy(a)[None]) for a in items])
        batched = model(x, mask)
        with_garbage = model(garbage, mask)
        emb_single = torch.cat([model.embed(torch.from_numpy(a)[None]) for a in items])
        emb_batched = model.embed(x, mask)
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)
    torch.testing.assert_close(with_garbage, single, atol=1e-4, rtol=0)
    torch.testing.assert_close(emb_batched, emb_single, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", NEW)
def test_bundle_round_trip(name: str, tmp_path: Path) -> None:
    feature = default_feature(name)
    model = make(name)
    perturb_batch_norm(model)
    model.eval()
    folder = save_bundle(tmp_path / name, model, feature, ["angry", "happy", "neutral", "sad"])
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["name"] == name
    assert config["model"]["params"] == model.hparams
    bundle = load_bundle(folder)
    assert type(bundle.model) is type(model)
    assert bundle.model.hparams == model.hparams
    x = torch.randn(2, 1, BINS[name], 83)
    with torch.no_grad():
        torch.testing.assert_close(bundle.model(x), model(x), atol=0, rtol=0)


@pytest.mark.parametrize("name", NEW)
def test_onnx_export_matches_torch_on_any_length(name: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from emovox.inference.onnx_backend import export_onnx

    model = make(name)
    perturb_batch_norm(model)
    model.eval()
    folder = save_bundle(tmp_path / name, model, default_feature(name), ["a", "b", "c", "d"])
    path = export_onnx(folder, example_frames=64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    assert isinstance(shape[0], str) and isinstance(shape[3], str)
    rng = np.random.default_rng(1)
    for batch, t in ((1, 1), (1, 7), (3, 37), (2, 203)):
        x = rng.standard_normal((batch, 1, BINS[name], t)).astype(np.float32)
        (logits,) = session.run(["logits"], {"features": x})
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        assert logits.shape == ref.shape
        np.testing.assert_allclose(logits, ref, atol=1e-4, rtol=0)


def toy_problem(bins: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Two classes of ``[1, bins, T]`` noise: class 1 has a loud band in the upper half."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(32):
        c = i % 2
        x = rng.standard_normal((1, bins, int(rng.integers(20, 60)))).astype(np.float32)
        if c:
            x[:, bins // 2 :] += 1.5
        xs.append(x)
        ys.append(c)
    return xs, np.array(ys)


@pytest.mark.parametrize("name", NEW)
def test_the_trainer_reduces_the_loss(name: str) -> None:
    xs, ys = toy_problem(BINS[name], seed=0)
    model = make(name, n_classes=2)
    config = TrainConfig.for_model(
        model_class(name),
        epochs=8,
        batch_size=8,
        crop_seconds=0.3,
        lr=1e-2,
        mixup=0.0,  # mixup and SpecAugment make a few epochs' loss too noisy to compare
        specaugment=False,
        patience=100,
    )
    result = Trainer(model, config, 0.01, progress=False).fit(xs, ys)
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert losses[-1] < 0.6 * losses[0], losses


@pytest.mark.parametrize("name", NEW)
def test_default_recipe(name: str) -> None:
    cls = model_class(name)
    feature = default_feature(name)
    assert feature.amin == 1e-20  # the gain-invariant log floor of cnn
    if name == "timnet":
        assert feature.name == "mfcc" and feature.normalize == "cmvn"
        assert feature.n_mfcc in (39, 40)
    else:
        assert feature.name == "logmel" and feature.normalize == "utterance"
        assert feature.trim_db == 40.0
    config = TrainConfig.for_model(cls)
    assert config.optimizer == "adamw" and config.schedule == "onecycle"
    assert config.crop_seconds == 1.5 and config.mixup == 0.2 and config.specaugment


BAD = [
    ("resnet", {"channels": [8, 16], "blocks": [1]}, "same length"),
    ("resnet", {"channels": [], "blocks": []}, "non-empty"),
    ("resnet", {"channels": [8, 0], "blocks": [1, 1]}, r"channels\[1\] must be a positive integer"),
    ("resnet", {"blocks": [1, 1, 0, 1]}, r"blocks\[2\] must be a positive integer"),
    ("crnn", {"channels": [8]}, "at least 2"),
    ("crnn", {"hidden": 0}, "hidden must be a positive integer"),
    ("crnn", {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ("conformer", {"d_model": 100, "heads": 3}, "multiple of heads"),
    ("conformer", {"kernel": 4}, "kernel must be odd"),
    ("conformer", {"n_blocks": -1}, "n_blocks must be a positive integer"),
    ("conformer", {"block_dropout": -0.1}, "dropout must be in"),
    ("timnet", {"n_blocks": 0}, "n_blocks must be a positive integer"),
    ("timnet", {"channels": 2.5}, "channels must be a positive integer"),
    ("timnet", {"no_such": 1}, "bad parameters for model 'timnet'"),
]


@pytest.mark.parametrize(("name", "params", "match"), BAD)
def test_bad_parameters_are_refused(name: str, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(name, 4, (1, BINS[name]), **params)


# -- the shared layers ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 31])
def test_length_formulas_match_torch(n: int) -> None:
    x = torch.zeros(1, 1, 4, n)
    for conv in (
        nn.Conv2d(1, 1, 3, stride=2, padding=1),
        nn.Conv2d(1, 1, 1, stride=2),
        nn.Conv2d(1, 1, 3, padding=1),
    ):
        k, s, p = conv.kernel_size[1], conv.stride[1], conv.padding[1]
        assert int(conv_out_length(torch.tensor(n), k, s, p)) == conv(x).shape[-1]
    for k, s in ((2, 2), (1, 1), (4, 4), (3, 2)):
        if n < k:  # torch refuses windows longer than the input
            continue
        for ceil_mode in (True, False):
            pool = nn.MaxPool2d((1, k), (1, s), ceil_mode=ceil_mode)
            got = pool_out_length(torch.tensor(n), k, s, ceil_mode=ceil_mode)
            assert int(got) == pool(x).shape[-1]


def test_max_pool_nonnegative_equals_ceil_mode_max_pool() -> None:
    torch.manual_seed(0)
    for f, t, kf, kt in ((8, 10, 2, 2), (7, 11, 2, 2), (9, 5, 4, 1), (16, 3, 4, 2), (1, 1, 2, 2)):
        x = torch.relu(torch.randn(2, 3, f, t))
        ref = nn.MaxPool2d((kf, kt), ceil_mode=True)(x)
        torch.testing.assert_close(max_pool_nonnegative(x, kf, kt), ref, atol=0, rtol=0)


def test_reverse_time_within_lengths() -> None:
    x = torch.arange(12.0).reshape(2, 1, 6)
    lengths = torch.tensor([4, 6])
    rev = reverse_time(x, lengths)
    assert rev[0, 0].tolist() == [3.0, 2.0, 1.0, 0.0, 4.0, 5.0]
    assert rev[1, 0].tolist() == [11.0, 10.0, 9.0, 8.0, 7.0, 6.0]
    torch.testing.assert_close(reverse_time(rev, lengths), x)
    torch.testing.assert_close(reverse_time(x, None), torch.flip(x, dims=(-1,)))


def test_masked_statistics_ignore_padding() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 9)
    mask = length_mask(torch.tensor([4, 9]), 9)
    stats = masked_mean_std(x, mask)
    torch.testing.assert_close(stats[0], masked_mean_std(x[:1, :, :4], None)[0])
    torch.testing.assert_close(stats[0, :5], x[0, :, :4].mean(-1))
    torch.testing.assert_close(stats[0, 5:], torch.sqrt(x[0, :, :4].var(-1, unbiased=False) + 1e-5))
    pool = AttentiveStatsPool(5, 4).eval()
    with torch.no_grad():
        got = pool(x + 100.0 * (~mask)[:, None, :], mask)
        torch.testing.assert_close(got[0], pool(x[:1, :, :4])[0])
        torch.testing.assert_close(got[1], pool(x[1:])[0])
