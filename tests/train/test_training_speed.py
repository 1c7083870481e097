"""Training on another device, in bfloat16 and with channels-last activations (issue #3's speed
work): the options are checked, change only what they say, and the model always comes back on the
CPU in float32 with contiguous weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_cnn, toy_data
from torch import nn

from emovox.inference.predict import model_device, predict_logits
from emovox.train.config import TrainConfig, resolve_device
from emovox.train.trainer import Trainer


def config(**overrides) -> TrainConfig:
    params = {
        "epochs": 4,
        "batch_size": 8,
        "lr": 1e-2,
        "schedule": "constant",
        "patience": 100,
        "crop_seconds": 0.15,
        "mixup": 0.2,
        "seed": 1,
    }
    params.update(overrides)
    return TrainConfig(**params)


def train(**overrides) -> tuple[nn.Module, list[dict]]:
    xs, ys = toy_data(12)
    model = tiny_cnn()
    result = Trainer(model, config(**overrides), 0.01, progress=False).fit(xs, ys, xs, ys)
    return model, result.history


@pytest.mark.parametrize(
    ("field", "value"),
    [("precision", "fp16"), ("device", "gpu"), ("device", "cuda:x"), ("channels_last", "maybe")],
)
def test_bad_values_are_refused_with_the_field_named(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        config(**{field: value})


def test_string_forms_from_the_command_line_are_typed_by_the_cli() -> None:
    from emovox.apps.cli.options import training_settings

    typed = training_settings({"channels_last": "TRUE", "aux_targets": "gender, intensity"})
    assert typed == {"channels_last": True, "aux_targets": ("gender", "intensity")}
    c = config(**typed, device="CUDA:1", precision="bf16")
    assert c.channels_last is True and c.device == "cuda:1"
    assert c.to_dict()["precision"] == "bf16"
    with pytest.raises(ValueError, match="channels_last must be true or false"):
        training_settings({"channels_last": "maybe"})
    with pytest.raises(ValueError, match="channels_last must be true or false"):
        config(channels_last="true")  # the Python API takes a bool


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_fails_before_training() -> None:
    xs, ys = toy_data(12)
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="cuda"):
        Trainer(model, config(device="cuda"), 0.01, progress=False).fit(xs, ys)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_channels_last_changes_memory_order_not_arithmetic() -> None:
    plain, h_plain = train()
    cl, h_cl = train(channels_last=True)
    for k, v in plain.state_dict().items():
        w = cl.state_dict()[k]
        assert w.is_contiguous(), k  # the saved weights are ordinary tensors
        assert torch.allclose(v, w, atol=1e-4, rtol=1e-4), k
    assert [round(r["train_loss"], 4) for r in h_plain] == [round(r["train_loss"], 4) for r in h_cl]


def test_bf16_trains_and_returns_a_float32_cpu_model() -> None:
    plain, h_plain = train()
    bf, h_bf = train(precision="bf16", channels_last=True)
    assert model_device(bf) == torch.device("cpu")
    assert all(p.dtype == torch.float32 for p in bf.parameters())
    # bfloat16 arithmetic: close to, but not the same as, the float32 run
    assert not all(torch.equal(v, bf.state_dict()[k]) for k, v in plain.state_dict().items())
    assert abs(h_bf[-1]["train_loss"] - h_plain[-1]["train_loss"]) < 0.2
    xs, ys = toy_data(12, seed=5)
    acc = (predict_logits(bf, xs).argmax(1) == ys).mean()
    assert acc >= 0.9  # the toy classes are easy: it learnt them


def test_bf16_with_auxiliary_heads_and_ema() -> None:
    xs, ys = toy_data(12)
    model = tiny_cnn()
    trainer = Trainer(
        model,
        config(precision="bf16", aux_targets=("gender",), ema=0.9),
        0.01,
        progress=False,
    )
    gender = np.array([i % 3 % 2 for i in range(len(xs))])
    result = trainer.fit(xs, ys, xs, ys, aux_y={"gender": gender})
    assert np.isfinite(result.history[-1]["aux_loss"])
    assert model_device(model) == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in trainer.aux_heads.parameters())


def test_model_device_of_a_module_without_weights() -> None:
    assert model_device(nn.ReLU()) == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_training_on_cuda_matches_cpu_closely() -> None:
    cpu, _ = train()
    gpu, _ = train(device="cuda")
    assert model_device(gpu) == torch.device("cpu")
    xs, _ = toy_data(12, seed=5)
    a = torch.softmax(torch.from_numpy(predict_logits(cpu, xs)), 1)
    b = torch.softmax(torch.from_numpy(predict_logits(gpu, xs)), 1)
    assert torch.allclose(a, b, atol=0.05)
