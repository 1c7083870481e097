"""Multi-corpus training: each corpus teaches only the classes it labels."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from conftest import tiny_cnn, toy_data

from emovox.data.manifest import Manifest, Utterance
from emovox.train.config import TrainConfig
from emovox.train.pipeline import corpus_class_mask
from emovox.train.trainer import Trainer, masked_cross_entropy


def test_all_true_masks_give_the_plain_loss() -> None:
    gen = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 3, 0, 1])
    w = torch.tensor([1.0, 2.0, 0.5, 1.0])
    mask = torch.ones(6, 4, dtype=torch.bool)
    for kw in ({}, {"weight": w}, {"label_smoothing": 0.1}, {"weight": w, "label_smoothing": 0.1}):
        expected = torch.nn.functional.cross_entropy(logits, y, **kw)
        assert torch.allclose(masked_cross_entropy(logits, y, mask, **kw), expected)


def test_a_masked_class_is_left_out_of_softmax_smoothing_and_gradient() -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, generator=gen, requires_grad=True)
    y = torch.tensor([0, 1, 1])
    mask = torch.tensor([[1, 1, 0, 1], [1, 1, 1, 1], [0, 1, 1, 0]], dtype=torch.bool)
    loss = masked_cross_entropy(logits, y, mask, label_smoothing=0.2)
    # by hand: each item's cross-entropy over its own classes only, smoothing spread over them
    expected = []
    for i in range(3):
        keep = mask[i].nonzero()[:, 0]
        logp = torch.log_softmax(logits[i, keep], dim=0)
        target = int((keep == y[i]).nonzero()[0, 0])
        expected.append(0.8 * -logp[target] + 0.2 * -logp.mean())
    assert torch.allclose(loss, torch.stack(expected).mean())
    loss.backward()
    assert torch.all(logits.grad[~mask] == 0) and torch.isfinite(logits.grad).all()


def manifest_of(rows: list[tuple[str, str]]) -> SimpleNamespace:
    classes = ["angry", "happy", "sad", "boredom"]
    m = Manifest(Utterance(f"{i}.wav", lab, f"{c}_s", "", c) for i, (c, lab) in enumerate(rows))
    y = np.array([classes.index(lab) for _, lab in rows])
    return SimpleNamespace(manifest=m, y=y, classes=classes)


def test_the_mask_follows_each_corpus_classes() -> None:
    data = manifest_of([("a", "angry"), ("a", "boredom"), ("b", "angry"), ("b", "happy")])
    mask = corpus_class_mask(data, [0, 1, 2, 3])
    assert mask.tolist() == [
        [True, False, False, True],
        [True, False, False, True],
        [True, True, False, False],
        [True, True, False, False],
    ]
    same = manifest_of([("a", "angry"), ("a", "happy"), ("b", "happy"), ("b", "angry")])
    assert corpus_class_mask(same, [0, 1, 2, 3]) is None  # the plain loss, as for one corpus


def test_the_trainer_learns_with_masks() -> None:
    xs, ys = toy_data()
    mask = np.ones((len(xs), 2), dtype=bool)
    mask[ys == 0, 1] = False  # a "corpus" of class-0 items that does not label class 1
    cfg = TrainConfig(epochs=3, batch_size=8, lr=1e-2, crop_seconds=None, specaugment=False)
    model = tiny_cnn()
    result = Trainer(model, cfg, 0.01, progress=False).fit(xs, ys, class_mask=mask)
    assert len(result.history) == 3 and np.isfinite(result.history[-1]["train_loss"])


def test_corpus_balanced_draw_gives_each_corpus_and_its_classes_equal_shares() -> None:
    from emovox.data.balance import corpus_balanced_draw

    # corpus "big": 90 items (60 angry, 30 sad); corpus "small": 10 items (5 angry, 5 happy)
    y = np.array([0] * 60 + [1] * 30 + [0] * 5 + [2] * 5)
    corpora = ["big"] * 90 + ["small"] * 10
    p = corpus_balanced_draw(y, corpora)
    assert np.isclose(p.sum(), 1.0)
    big, small = np.arange(90), np.arange(90, 100)
    assert np.isclose(p[big].sum(), 0.5) and np.isclose(p[small].sum(), 0.5)
    assert np.isclose(p[:60].sum(), 0.25) and np.isclose(p[60:90].sum(), 0.25)
    assert np.isclose(p[90:95].sum(), 0.25) and np.isclose(p[95:].sum(), 0.25)
    alone = corpus_balanced_draw(y, None)  # one corpus: classes balanced
    assert np.isclose(alone[y == 0].sum(), 1 / 3) and np.isclose(alone[y == 2].sum(), 1 / 3)


def test_the_trainer_draws_a_small_corpus_as_often_as_a_large_one(monkeypatch) -> None:
    xs, ys = toy_data()
    corpora = np.where(np.arange(len(xs)) < len(xs) // 8, "small", "large")
    seen: list[int] = []
    original = Trainer._batch

    def spy(self, xs_, ys_, idx, crop, gen):
        seen.extend(idx)
        return original(self, xs_, ys_, idx, crop, gen)

    monkeypatch.setattr(Trainer, "_batch", spy)
    cfg = TrainConfig(
        epochs=4, batch_size=8, crop_seconds=None, specaugment=False, corpus_balance=True
    )
    result = Trainer(tiny_cnn(), cfg, 0.01, progress=False).fit(xs, ys, corpora=list(corpora))
    assert np.isfinite(result.history[-1]["train_loss"])
    drawn_small = np.mean(corpora[np.asarray(seen)] == "small")
    assert len(seen) == 4 * len(xs) and 0.4 < drawn_small < 0.6  # 1/8 of the items, half the draws
    seen.clear()
    cfg.corpus_balance = False
    Trainer(tiny_cnn(), cfg, 0.01, progress=False).fit(xs, ys, corpora=list(corpora))
    assert sorted(seen) == sorted(list(range(len(xs))) * 4)  # every item once an epoch


def test_val_by_corpus_selects_on_the_mean_of_each_corpus_ua() -> None:
    from emovox.inference.predict import predict_logits
    from emovox.metrics import unweighted_accuracy

    xs, ys = toy_data()
    groups = ["small"] * 4 + ["large"] * (len(xs) - 4)
    cfg = TrainConfig(
        epochs=1, batch_size=8, crop_seconds=None, specaugment=False, val_by_corpus=True
    )
    trainer = Trainer(tiny_cnn(), cfg, 0.01, progress=False)
    result = trainer.fit(xs, ys, xs, ys, val_corpora=groups)  # one epoch: its weights are kept
    pred = predict_logits(trainer.model, xs).argmax(1)
    small = unweighted_accuracy(ys[:4], pred[:4], 2)
    large = unweighted_accuracy(ys[4:], pred[4:], 2)
    assert np.isclose(result.history[0]["val_ua"], 100 * (small + large) / 2)
    _, pooled = trainer.evaluate(xs, ys, torch.nn.CrossEntropyLoss())
    assert np.isclose(pooled, unweighted_accuracy(ys, pred, 2))


def test_corpus_weights_share_out_the_corpora_and_keep_classes_balanced() -> None:
    from emovox.data.balance import corpus_balanced_draw

    y = np.array([0] * 60 + [1] * 30 + [0] * 5 + [2] * 5)
    corpora = ["Big"] * 90 + ["small"] * 10
    p = corpus_balanced_draw(y, corpora, {"big": 3.0})  # names match in any case
    assert np.isclose(p.sum(), 1.0)
    assert np.isclose(p[:90].sum(), 0.75) and np.isclose(p[90:].sum(), 0.25)
    assert np.isclose(p[:60].sum(), 0.375) and np.isclose(p[95:].sum(), 0.125)
    # a weight for a corpus that is not there changes nothing
    unchanged = corpus_balanced_draw(y, corpora, {"other": 5})
    assert np.allclose(unchanged, corpus_balanced_draw(y, corpora))


def test_corpus_weights_and_val_corpus_settings_are_checked() -> None:
    import pytest

    from emovox.apps.cli.options import parse_assignments, training_settings

    cfg = TrainConfig(corpus_balance=True, corpus_weights="RAVDESS:3, emodb:0.5")
    assert cfg.corpus_weights == {"emodb": 0.5, "ravdess": 3.0}
    assert TrainConfig(**cfg.to_dict()).corpus_weights == cfg.corpus_weights  # saved and read
    typed = training_settings(parse_assignments(['corpus_weights={"ravdess": 2}']))
    assert TrainConfig(corpus_balance=True, **typed).corpus_weights == {"ravdess": 2.0}
    typed = training_settings(parse_assignments(["corpus_weights=ravdess:2"]))
    assert TrainConfig(corpus_balance=True, **typed).corpus_weights == {"ravdess": 2.0}
    with pytest.raises(ValueError, match="needs corpus_balance"):
        TrainConfig(corpus_weights={"ravdess": 2})
    with pytest.raises(ValueError, match="'ravdess' must be a positive number"):
        TrainConfig(corpus_balance=True, corpus_weights={"ravdess": 0})
    with pytest.raises(ValueError, match="expected CORPUS:WEIGHT, got 'ravdess'"):
        TrainConfig(corpus_balance=True, corpus_weights="ravdess")
    with pytest.raises(ValueError, match="choose one"):
        TrainConfig(val_corpus="ravdess", val_by_corpus=True)
    assert TrainConfig(val_corpus=" RAVDESS ").val_corpus == "ravdess"


def test_each_validation_corpus_ua_is_recorded_and_val_corpus_chooses_with_one() -> None:
    import pytest

    from emovox.inference.predict import predict_logits
    from emovox.metrics import unweighted_accuracy

    xs, ys = toy_data()
    groups = ["small"] * 4 + ["large"] * (len(xs) - 4)
    cfg = TrainConfig(epochs=2, batch_size=8, crop_seconds=None, specaugment=False)
    plain = Trainer(tiny_cnn(), cfg, 0.01, progress=False).fit(xs, ys, xs, ys, val_corpora=groups)
    assert {"val_ua@small", "val_ua@large"} <= set(plain.history[0])
    best = plain.best_val_ua_by_corpus
    assert set(best) == {"small", "large"}
    row = next(r for r in plain.history if r["epoch"] == plain.best_epoch)
    assert best["small"] == row["val_ua@small"]

    cfg = TrainConfig(
        epochs=1, batch_size=8, crop_seconds=None, specaugment=False, val_corpus="SMALL"
    )
    trainer = Trainer(tiny_cnn(), cfg, 0.01, progress=False)
    result = trainer.fit(xs, ys, xs, ys, val_corpora=groups)
    pred = predict_logits(trainer.model, xs).argmax(1)
    assert np.isclose(result.history[0]["val_ua"], 100 * unweighted_accuracy(ys[:4], pred[:4], 2))
    assert np.isclose(result.best_val_ua, result.history[0]["val_ua@small"])

    cfg.val_corpus = "ravdess"
    refused = Trainer(tiny_cnn(), cfg, 0.01, progress=False)
    epochs: list[int] = []
    refused._epoch = lambda *a: epochs.append(1)  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="no validation speaker of that corpus"):
        refused.fit(xs, ys, xs, ys, val_corpora=groups)
    assert epochs == []  # refused before any epoch was trained
    one = TrainConfig(epochs=1, batch_size=8, crop_seconds=None, specaugment=False)
    alone = Trainer(tiny_cnn(), one, 0.01, progress=False).fit(
        xs, ys, xs, ys, val_corpora=["a"] * len(xs)
    )
    assert alone.best_val_ua_by_corpus == {} and not any("@" in k for k in alone.history[0])


def test_the_training_curves_draw_each_validation_corpus(tmp_path, monkeypatch) -> None:
    from emovox import plots

    drawn = {}
    original = plots._save

    def keep(fig, out):
        drawn["labels"] = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
        drawn["ylim"] = fig.axes[1].get_ylim()
        return original(fig, out)

    monkeypatch.setattr(plots, "_save", keep)

    rows = [
        {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0, "val_ua": 40.0 + e,
         "val_ua@ravdess": 30.0 + e, "val_ua@emodb": 90.0}
        for e in (1, 2, 3)
    ]
    out = plots.plot_training_curves(rows, tmp_path / "curves.png")
    assert out.is_file() and out.stat().st_size > 1000
    assert drawn["labels"][:3] == ["ravdess", "emodb", "validation UA"]
    assert drawn["ylim"][0] <= 31.0 and drawn["ylim"][1] >= 90.0  # every curve in view


def test_a_fold_records_each_validation_corpus_ua_at_its_best_epoch() -> None:
    from emovox.data.protocols import Fold
    from emovox.evaluate.results import FoldResult
    from emovox.evaluate.runner import _training_facts
    from emovox.train.trainer import TrainResult

    history = [
        {"epoch": 1, "val_ua": 50.0, "val_ua@a": 40.0, "val_ua@b": 60.0},
        {"epoch": 2, "val_ua": 55.0, "val_ua@a": 45.0, "val_ua@b": 65.0},
    ]
    trained = TrainResult(history, best_epoch=2, best_val_ua=55.0, seconds=1.0)
    net = SimpleNamespace(n_parameters=10)
    facts = _training_facts(Fold(1, (0,), (1,), ("s",), ("c",)), net, trained, ["v"], 0.1)
    assert facts["best_val_ua_by_corpus"] == {"a": 45.0, "b": 65.0}
    row = FoldResult(ua=1.0, wa=1.0, macro_f1=1.0, n_test=1, **facts).to_dict()
    assert FoldResult.from_dict(row).best_val_ua_by_corpus == {"a": 45.0, "b": 65.0}
    single = TrainResult([{"epoch": 1, "val_ua": 50.0}], 1, 50.0, 1.0)
    assert _training_facts(Fold(1, (0,), (1,), ("s",)), net, single, [], 0.1)[
        "best_val_ua_by_corpus"
    ] is None


def test_train_reports_each_validation_corpus_and_weights_the_draws(
    synth_corpus, tmp_path
) -> None:
    import json

    from conftest import run_cli, tiny_cli, tone_corpora

    (tess,) = tone_corpora(tmp_path, savee=False)
    data = ["--train", f"ravdess:{synth_corpus}", "--train", tess]
    data += ["--labels", "angry,happy,neutral,sad"]
    out = tmp_path / "model"
    params = ["--train-param", "val_fraction=0.5", "--train-param", "corpus_balance=true"]
    params += ["--train-param", "corpus_weights=tess:2", "--train-param", "val_corpus=ravdess"]
    result = run_cli(tiny_cli("train", data, out, *params, epochs=2))
    res = json.loads((out / "config.json").read_text())["training_result"]
    assert set(res["best_val_ua_by_corpus"]) == {"ravdess", "tess"}
    assert res["best_val_ua"] == res["best_val_ua_by_corpus"]["ravdess"]  # val_corpus chose
    shown = ", ".join(f"{c} {ua:.1f}" for c, ua in res["best_val_ua_by_corpus"].items())
    assert f"({shown})" in result.output
    history = (out / "training_curves.csv").read_text().splitlines()[0]
    assert "val_ua@ravdess" in history and "val_ua@tess" in history
    assert json.loads((out / "config.json").read_text())["training"]["corpus_weights"] == {
        "tess": 2.0
    }


def test_corpus_class_mask_of_rows_ignores_rows_without_a_class() -> None:
    from emovox.data.balance import corpus_class_mask

    y = np.array([0, 1, 0, -1, -1])
    corpora = ["a", "a", "b", "b", "c"]  # "b" labels class 0 only, "c" no class at all
    mask = corpus_class_mask(y, corpora, 3)
    assert mask.tolist() == [
        [True, True, False], [True, True, False], [True, False, False],
        [True, False, False], [False, False, False],
    ]  # fmt: skip
    assert corpus_class_mask(np.array([0, 1, 1, 0]), ["a", "a", "b", "b"], 3) is None
