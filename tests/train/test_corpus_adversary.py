"""Domain-adversarial training against the corpus (``TrainConfig.corpus_adversary``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TOY_TRAINING, full_and_resumed_after_ctrl_c, tiny_cnn, toy_data
from safetensors.torch import load_file

from emovox.models import build_model
from emovox.train.adversary import (
    CorpusAdversary,
    corpus_indices,
    reversal_scale,
    reverse_gradient,
)
from emovox.train.config import TrainConfig
from emovox.train.trainer import Trainer

HOP = 0.01


def config(**overrides) -> TrainConfig:
    return TrainConfig(**{**TOY_TRAINING, "epochs": 3, "schedule": "constant", **overrides})


def two_corpora(n: int) -> list[str]:
    return ["emodb" if i % 3 else "tess" for i in range(n)]


def test_reverse_gradient_is_the_identity_forward_and_flips_the_gradient_back() -> None:
    x = torch.randn(4, 5, requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    (y * torch.arange(5.0)).sum().backward()
    assert torch.allclose(x.grad, -0.3 * torch.arange(5.0).expand(4, 5))


def test_reversal_scale_rises_from_zero_to_the_weight() -> None:
    values = [reversal_scale(p, 0.5) for p in np.linspace(0, 1, 11)]
    assert values[0] == 0.0 and all(b > a for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(0.5, abs=1e-4)
    assert reversal_scale(0.2, 1.0) == pytest.approx(0.7616, abs=1e-4)
    assert reversal_scale(-1, 1.0) == 0.0 and reversal_scale(2, 1.0) == reversal_scale(1, 1.0)


def test_the_adversary_learns_the_corpus_and_pushes_the_embedding_the_other_way() -> None:
    adversary = CorpusAdversary(dim=6, n_corpora=3, seed=1)
    emb = torch.randn(8, 6, requires_grad=True)
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    adversary.scale = 0.7
    torch.nn.functional.cross_entropy(adversary(emb), target).backward()
    reversed_grad = emb.grad.clone()
    head_grad = [p.grad.clone() for p in adversary.parameters()]
    emb.grad, plain = None, emb.detach().clone().requires_grad_(True)
    adversary.zero_grad()
    torch.nn.functional.cross_entropy(adversary.net(plain), target).backward()
    # the network under the adversary gets the classifier's gradient reversed and scaled ...
    assert torch.allclose(reversed_grad, -0.7 * plain.grad, atol=1e-6)
    # ... while the classifier itself descends its own loss as usual
    params = list(adversary.parameters())
    assert all(torch.allclose(a, p.grad) for a, p in zip(head_grad, params, strict=True))
    again = CorpusAdversary(dim=6, n_corpora=3, seed=1).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in adversary.state_dict().items())


def test_corpus_indices_and_their_errors() -> None:
    index, names = corpus_indices(["tess", "emodb", "tess"], 3)
    assert names == ("emodb", "tess") and index.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="needs each training item's corpus"):
        corpus_indices(None, 3)
    with pytest.raises(ValueError, match="2 entries for 3"):
        corpus_indices(["a", "b"], 3)
    with pytest.raises(ValueError, match=r"at least two training corpora.*'tess'"):
        corpus_indices(["tess"] * 3, 3)
    with pytest.raises(ValueError, match="at least 2 corpora"):
        CorpusAdversary(4, 1)
    with pytest.raises(ValueError, match="corpus_adversary must be >= 0"):
        TrainConfig(corpus_adversary=-0.1)
    assert TrainConfig(corpus_adversary="0.25").corpus_adversary == 0.25


def test_the_trainer_trains_against_the_corpus_and_says_so() -> None:
    xs, ys = toy_data()
    corpora = two_corpora(len(xs))
    plain = tiny_cnn()
    Trainer(plain, config(), HOP, progress=False).fit(xs, ys, corpora=corpora)
    runs = []
    for _ in range(2):
        model = tiny_cnn()
        trainer = Trainer(model, config(corpus_adversary=0.5), HOP, progress=False)
        result = trainer.fit(xs, ys, corpora=corpora)
        runs.append((model, result, trainer))
    (a, result, trainer), (b, _, _) = runs
    assert all(np.isfinite(h["adversary_loss"]) and h["adversary_loss"] > 0 for h in result.history)
    assert trainer.adversary is not None
    assert trainer.adversary.scale == pytest.approx(0.5, abs=1e-3)  # the last step: all of it
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert any(not torch.equal(a.state_dict()[k], plain.state_dict()[k]) for k in a.state_dict())
    # off by default, and off leaves no trace
    off = Trainer(tiny_cnn(), config(), HOP, progress=False)
    assert "adversary_loss" not in off.fit(xs, ys, corpora=corpora).history[0]
    assert off.adversary is None


def test_the_trainer_refuses_an_adversary_it_cannot_train() -> None:
    xs, ys = toy_data()
    trainer = Trainer(tiny_cnn(), config(corpus_adversary=0.5), HOP, progress=False)
    with pytest.raises(ValueError, match="needs each training item's corpus"):
        trainer.fit(xs, ys)
    with pytest.raises(ValueError, match="at least two training corpora"):
        trainer.fit(xs, ys, corpora=["emodb"] * len(xs))
    no_embed = build_model("tutorial-cnn1d", 2, (1, 8), length=16)
    with pytest.raises(ValueError, match="embed"):
        Trainer(no_embed, config(corpus_adversary=0.5), HOP, progress=False).fit(
            xs, ys, corpora=two_corpora(len(xs))
        )


def run(cfg: TrainConfig, ckpt: Path, resume: bool = False, seed: int = 0):
    xs, ys = toy_data()
    vx, vy = toy_data(n_per_class=3, seed=1)
    model = tiny_cnn(seed)
    trainer = Trainer(model, cfg, HOP, ckpt, progress=False)
    result = trainer.fit(xs, ys, vx, vy, resume=resume, corpora=two_corpora(len(xs)))
    return model, result, trainer


def test_resume_after_ctrl_c_with_the_adversary_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch
) -> None:
    cfg = config(corpus_adversary=0.5, epochs=4, schedule="onecycle")
    # fresh weights on resume: the model and the adversary must both come from the checkpoint
    (full, r_full, _), (resumed, r_resumed, _) = full_and_resumed_after_ctrl_c(
        run, cfg, tmp_path, monkeypatch
    )
    state = full.state_dict()
    assert all(torch.equal(state[k], resumed.state_dict()[k]) for k in state)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in r_full.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in r_resumed.history]
    last = load_file(str(tmp_path / "full" / "last.safetensors"))
    assert any(k.startswith("adv.") for k in last)
    best = load_file(str(tmp_path / "full" / "best.safetensors"))
    assert set(best) == set(state)  # the adversary is never part of the model
    run(config(epochs=2), tmp_path / "plain")
    with pytest.raises(ValueError, match="no corpus adversary"):
        run(cfg, tmp_path / "plain", resume=True)
