"""Consistency between two views of each training item (``TrainConfig.consistency``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TOY_TRAINING, full_and_resumed_after_ctrl_c, tiny_cnn, toy_data

from emovox.inference.predict import predict_logits
from emovox.models import build_model
from emovox.train.batches import crop_pair, js_divergence, pick_two_variants
from emovox.train.config import TrainConfig
from emovox.train.trainer import Trainer

HOP = 0.01


def config(**overrides) -> TrainConfig:
    base = {**TOY_TRAINING, "mixup": 0.0, "epochs": 3, "schedule": "constant"}
    return TrainConfig(**{**base, "augment": ("noise",), "augment_copies": 1, **overrides})


def with_variants(xs: list[np.ndarray], seed: int = 5) -> list[tuple[np.ndarray, ...]]:
    """Each toy item with two "augmented" variants: shifted and scaled versions of it."""
    rng = np.random.default_rng(seed)
    out = []
    for x in xs:
        a = (x + rng.normal(0, 1.5, x.shape)).astype(np.float32)
        b = (0.5 * x + rng.normal(0, 1.5, x.shape)).astype(np.float32)
        out.append((x, a, b))
    return out


def test_js_divergence_is_zero_for_equal_views_symmetric_and_at_most_ln2() -> None:
    a = torch.tensor([[2.0, 0.0, -1.0], [0.3, 0.1, 0.2]])
    b = torch.tensor([[-1.0, 0.5, 3.0], [1.0, -2.0, 0.0]])
    assert js_divergence(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert js_divergence(a, b).item() == pytest.approx(js_divergence(b, a).item(), abs=1e-7)
    far = torch.tensor([[50.0, -50.0]]), torch.tensor([[-50.0, 50.0]])
    assert js_divergence(*far).item() == pytest.approx(math.log(2), abs=1e-6)
    p, q = torch.softmax(a, 1), torch.softmax(b, 1)
    m = (p + q) / 2
    expected = 0.5 * ((p * (p / m).log()).sum(1) + (q * (q / m).log()).sum(1))
    assert js_divergence(a, b).item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_two_variants_are_always_different_and_cover_every_pair() -> None:
    gen = torch.Generator().manual_seed(0)
    item = tuple(np.full((1, 2, 3), v, dtype=np.float32) for v in range(3))
    pairs = set()
    for _ in range(200):
        a, b = pick_two_variants(item, gen)
        assert a is not b
        pairs.add((int(a[0, 0, 0]), int(b[0, 0, 0])))
    assert pairs == {(i, j) for i in range(3) for j in range(3) if i != j}
    one = np.zeros((1, 2, 3), dtype=np.float32)
    assert all(v is one for v in pick_two_variants(one, gen))
    assert all(v is one for v in pick_two_variants((one,), gen))


def test_crop_pair_takes_the_same_window_of_both_views() -> None:
    gen = torch.Generator().manual_seed(1)
    a = np.arange(40, dtype=np.float32).reshape(1, 1, 40)
    b = a + 1000
    for _ in range(20):
        ca, cb = crop_pair(a, b, 10, gen)
        assert ca.shape == cb.shape == (1, 1, 10)
        assert np.array_equal(cb - ca, np.full((1, 1, 10), 1000.0))
    shorter = b[..., :25]  # a variant a few frames shorter: the window falls inside both
    for _ in range(20):
        ca, cb = crop_pair(a, shorter, 10, gen)
        assert np.array_equal(cb - ca, np.full((1, 1, 10), 1000.0))
    tiny = a[..., :6]
    ca, cb = crop_pair(tiny, tiny + 1, 10, gen)
    assert ca.shape == (1, 1, 10) and np.all(ca[..., 6:] == 0) and np.all(cb[..., 6:] == 0)


def test_consistency_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="needs augment_copies >= 1 or speed_perturb"):
        TrainConfig(consistency=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        config(consistency=-1.0)
    assert TrainConfig(consistency=1, speed_perturb=(0.9,)).consistency == 1.0
    assert config(consistency=2).to_dict()["consistency"] == 2.0


def test_each_step_takes_half_a_batch_of_items_in_two_different_views(monkeypatch) -> None:
    xs, ys = toy_data()
    items = with_variants(xs)
    seen: list[tuple[list[int], torch.Tensor]] = []
    original = Trainer._batch

    def spy(self, xs_, ys_, idx, crop, gen):
        out = original(self, xs_, ys_, idx, crop, gen)
        seen.append((list(idx), out[0].detach().clone(), out[3]))
        return out

    monkeypatch.setattr(Trainer, "_batch", spy)
    cfg = config(consistency=1.0, specaugment=False, epochs=2)
    result = Trainer(tiny_cnn(), cfg, HOP, progress=False).fit(items, ys)
    steps = math.ceil(len(xs) / cfg.batch_size)
    assert len(seen) == 2 * steps
    for idx, x, rows in seen:
        assert len(idx) == cfg.batch_size // 2 and x.shape[0] == 2 * len(idx)
        assert rows == idx + idx
        first, second = x[: len(idx)], x[len(idx) :]
        assert all(not torch.equal(a, b) for a, b in zip(first, second, strict=True))
    epoch_items = [i for idx, _, _ in seen[:steps] for i in idx]
    assert len(epoch_items) == len(xs) // 2  # an epoch costs what it costs without: half the items
    assert all(h["consistency_loss"] > 0 for h in result.history)
    assert all(np.isfinite(h["train_loss"]) for h in result.history)


def test_under_mixup_both_views_are_mixed_with_the_same_partner() -> None:
    # two equal views, no dropout, no SpecAugment: the same mixing gives the same logits, so the
    # consistency loss is 0 (to rounding); mixing the views with different partners would not
    xs, ys = toy_data()
    items = [(x, x.copy()) for x in xs]
    torch.manual_seed(0)
    model = build_model("cnn", 2, (1, 8), channels=[4, 8], dropout=0.0)
    cfg = config(consistency=1.0, mixup=0.4, specaugment=False, epochs=2)
    result = Trainer(model, cfg, HOP, progress=False).fit(items, ys)
    assert all(h["consistency_loss"] < 1e-6 for h in result.history)
    assert all(np.isfinite(h["train_loss"]) for h in result.history)


def mean_js(model, items) -> float:
    """The mean JS divergence between a model's answers on the first two variants of items."""
    a = torch.from_numpy(predict_logits(model, [v[0] for v in items]))
    b = torch.from_numpy(predict_logits(model, [v[1] for v in items]))
    return float(js_divergence(a, b))


def test_the_consistency_term_makes_the_views_agree() -> None:
    # two overlapping classes whose variants are heavily noised: without the term the network
    # answers a clean item and its noisy view differently
    rng = np.random.default_rng(0)
    xs = [(rng.standard_normal((1, 8, 20)) + (0.3 if i % 2 else -0.3)) for i in range(32)]
    ys = np.arange(32) % 2
    items = [
        tuple(np.float32(x + rng.normal(0, s, x.shape)) for s in (0.0, 2.0, 2.0)) for x in xs
    ]
    js = {}
    for weight in (0.0, 20.0):
        torch.manual_seed(0)
        model = tiny_cnn()
        cfg = config(consistency=weight, epochs=12, specaugment=False, crop_seconds=None)
        Trainer(model, cfg, HOP, progress=False).fit(items, ys)
        js[weight] = mean_js(model, items)
    assert js[20.0] < 0.3 * js[0.0]


def test_training_with_consistency_is_deterministic_and_resumes_exactly(
    tmp_path: Path, monkeypatch
) -> None:
    xs, ys = toy_data()
    items = with_variants(xs)
    vx, vy = toy_data(n_per_class=3, seed=1)

    def run(cfg: TrainConfig, ckpt: Path, resume: bool = False, seed: int = 0):
        model = tiny_cnn(seed)
        result = Trainer(model, cfg, HOP, ckpt, progress=False).fit(
            items, ys, vx, vy, resume=resume
        )
        return model, result

    cfg = config(consistency=1.0, epochs=4, schedule="onecycle")
    (full, r_full), (resumed, r_resumed) = full_and_resumed_after_ctrl_c(
        run, cfg, tmp_path, monkeypatch
    )
    assert [h["consistency_loss"] for h in r_resumed.history] == [
        h["consistency_loss"] for h in r_full.history
    ]
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
