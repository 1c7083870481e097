"""``encoder-lr`` (:mod:`emovox.models.logistic`): a logistic regression fitted in closed form,
``C`` chosen on validation speakers, held in buffers (safetensors like any weight)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SYNTH_EMOTIONS, run_cli, synth_manifest, toy_data
from tiny_whisper import make_tiny_whisper, train_on_tiny_whisper

from emovox.inference.recognizer import Recognizer
from emovox.metrics import unweighted_accuracy
from emovox.models import build_model
from emovox.models.logistic import EncoderLR
from emovox.models.svm import pool_utterances
from emovox.train.fitting import fit_arrays


def test_c_is_chosen_on_validation_and_the_fit_is_refitted_on_everything() -> None:
    xs, y = toy_data(n_per_class=12, bins=6)
    model = EncoderLR(n_classes=3, in_shape=(1, 6), c_grid=(0.001, 1.0))
    fit = model.fit_closed_form((xs[:16], y[:16]), (xs[16:], y[16:]), progress=False)
    assert [r["epoch"] for r in fit.history] == [1, 2, 3] and fit.history[-1]["refit"] == 1
    assert fit.best_val_ua == pytest.approx(100.0)  # separable toy classes
    assert fit.history[fit.best_epoch - 1]["selected"] == 1
    assert float(model.penalty) == pytest.approx(fit.history[-1]["C"])
    assert float(model.temperature) > 0
    batch = torch.zeros(len(xs), 1, 6, max(x.shape[-1] for x in xs))
    mask = torch.zeros(len(xs), batch.shape[-1], dtype=torch.bool)
    for i, x in enumerate(xs):
        batch[i, ..., : x.shape[-1]] = torch.from_numpy(x)
        mask[i, : x.shape[-1]] = True
    with torch.no_grad():
        logits = model(batch, mask)
    assert (logits.argmax(1).numpy() == y).mean() == 1.0  # separable: every clip right
    assert (logits.argmax(1) != 2).all()  # a class never seen is never predicted
    with pytest.raises(ValueError, match="single class"):
        EncoderLR(3, (1, 6)).fit_closed_form(([xs[0], xs[2]], np.array([0, 0])), None, False)
    with pytest.raises(ValueError, match="c_grid"):
        build_model("encoder-lr", 3, (1, 6), c_grid=[0])


@pytest.mark.parametrize(
    "layer_params", [["layer=2"], ["layers=1,2", "combine=mean"]], ids=["one", "averaged"]
)
def test_trained_on_a_whisper_folder_it_is_a_small_bundle(
    synth_corpus: Path, tmp_path: Path, layer_params: list[str]
) -> None:
    encoder = make_tiny_whisper(tmp_path / "whisper")
    out = tmp_path / "whisper-lr"
    layer_args = [arg for item in layer_params for arg in ("--feature-param", item)]
    train_on_tiny_whisper(synth_corpus, encoder, out, "encoder-lr", *layer_args)
    assert (out / "model.safetensors").stat().st_size < 10_000  # 4 x 32 weights, not vectors
    saved = json.loads((out / "config.json").read_text())["feature"]
    for item in layer_params:  # the bundle names the layers it was trained on
        key, value = item.split("=")
        assert str(saved[key]) == value
    assert ("layers" in saved) == (len(layer_params) > 1)
    rec = Recognizer.load(out)
    files = [u.path for u in synth_manifest(synth_corpus)][:4]
    preds = rec.predict_batch(files)
    assert all(p.ok and sum(p.probabilities.values()) == pytest.approx(1.0) for p in preds)
    again = Recognizer.load(out).predict_batch(files)
    assert [p.probabilities for p in again] == [p.probabilities for p in preds]


def test_augmented_copies_are_rows_of_their_own() -> None:
    xs, y = toy_data(n_per_class=12, bins=6)
    copies = [x + 0.5 for x in xs[:16]]  # a "shifted microphone" copy of every training clip
    tupled = EncoderLR(3, (1, 6), c_grid=(0.1,), calibrate=False)
    fit = tupled.fit_closed_form(
        ([(x, c) for x, c in zip(xs[:16], copies, strict=True)], y[:16]), (xs[16:], y[16:]), False
    )
    assert fit.history[0]["n_train"] == 32  # 16 clips, each twice
    flat = EncoderLR(3, (1, 6), c_grid=(0.1,), calibrate=False)
    flat.fit_closed_form(([*xs[:16], *copies], np.r_[y[:16], y[:16]]), (xs[16:], y[16:]), False)
    for name in ("mean", "scale", "coef", "intercept"):
        torch.testing.assert_close(getattr(tupled, name), getattr(flat, name))
    plain = EncoderLR(3, (1, 6), c_grid=(0.1,), calibrate=False)
    plain.fit_closed_form((xs[:16], y[:16]), (xs[16:], y[16:]), False)
    assert not torch.allclose(plain.mean, tupled.mean)  # the copies moved the standardisation


def test_train_param_augment_gives_the_regression_its_copies(
    synth_corpus: Path, tmp_path: Path
) -> None:
    encoder = make_tiny_whisper(tmp_path / "whisper")
    common = [
        "train", "--train", f"ravdess:{synth_corpus}", "--labels", ",".join(SYNTH_EMOTIONS),
        "--arch", "encoder-lr", "--feature-param", f"path={encoder}", "--feature-param",
        "layers=1,2", "--feature-param", "combine=mean", "--quiet", "--cache-dir",
        tmp_path / "cache",
    ]  # fmt: skip
    run_cli([*common, "--out", tmp_path / "plain"])
    run_cli([
        *common, "--train-param", "augment=noise,telephone", "--train-param", "augment_copies=2",
        "--out", tmp_path / "augmented",
    ])  # fmt: skip
    rows = {}
    for name in ("plain", "augmented"):
        curves = (tmp_path / name / "training_curves.csv").read_text().splitlines()
        header, first = curves[0].split(","), curves[1].split(",")
        rows[name] = int(first[header.index("n_train")])
    assert rows["augmented"] == 3 * rows["plain"]  # the original and two copies of each clip
    rec = Recognizer.load(tmp_path / "augmented")
    preds = rec.predict_batch([u.path for u in synth_manifest(synth_corpus)][:3])
    assert all(p.ok for p in preds)


def test_c_can_be_chosen_by_holding_each_training_corpus_out() -> None:
    xs, y = toy_data(n_per_class=18, bins=6)
    corpora = ["a", "b", "c"] * 12
    model = EncoderLR(2, (1, 6), c_grid=(0.001, 1.0), choose_on="corpora")
    assert model.hparams["choose_on"] == "corpora"
    fit = fit_arrays(model, xs[:30], y[:30], xs[30:], y[30:], progress=False,
                     corpora=corpora[:30], val_corpora=corpora[30:])  # fmt: skip
    searched = [r for r in fit.history if "refit" not in r]
    assert len(searched) == 2
    for row in searched:  # each corpus (training and validation items) held out in turn
        per = [row[f"val_ua@{c}"] for c in "abc"]
        assert row["val_ua"] == pytest.approx(np.mean(per))
    best = max(searched, key=lambda r: r["val_ua"])
    assert best["selected"] == 1 and float(model.penalty) == pytest.approx(best["C"])
    assert fit.best_val_ua == pytest.approx(best["val_ua"])
    rebuilt = build_model("encoder-lr", 2, (1, 6), **model.hparams)
    assert rebuilt.choose_on == "corpora"
    one = EncoderLR(2, (1, 6), c_grid=(0.001, 1.0), choose_on="corpora")
    fit = fit_arrays(one, xs[:30], y[:30], xs[30:], y[30:], progress=False,
                     corpora=["a"] * 30, val_corpora=["a"] * 6)  # fmt: skip
    assert not any("val_ua@a" in r for r in fit.history)  # one corpus: the validation speakers
    assert "choose_on" not in EncoderLR(2, (1, 6)).hparams  # the default, as older bundles
    with pytest.raises(ValueError, match="choose_on"):
        EncoderLR(2, (1, 6), choose_on="fold")
    with pytest.raises(ValueError, match="every training and validation item"):
        model.fit_closed_form((xs[:30], y[:30]), (xs[30:], y[30:]), False, (["a"] * 29, None))


def test_validation_speakers_of_several_corpora_are_scored_per_corpus_too() -> None:
    xs, y = toy_data(n_per_class=18, bins=6)
    corpora = ["a", "a", "b", "b"] * 9  # both classes in each corpus
    # corpus b's validation clips sound like the other class (a corpus that says it otherwise)
    xs = [-x if i >= 30 and corpora[i] == "b" else x for i, x in enumerate(xs)]
    model = EncoderLR(2, (1, 6), c_grid=(0.001, 1.0))
    fit = fit_arrays(model, xs[:30], y[:30], xs[30:], y[30:], progress=False,
                     corpora=corpora[:30], val_corpora=corpora[30:])  # fmt: skip
    searched = [r for r in fit.history if "refit" not in r]
    for row in searched:
        assert set(row) >= {"val_ua@a", "val_ua@b"}  # chosen on all of them, each one recorded
    best = searched[fit.best_epoch - 1]
    assert fit.best_val_ua_by_corpus == {"a": best["val_ua@a"], "b": best["val_ua@b"]}
    again = EncoderLR(2, (1, 6))  # the chosen C fitted on the training clips alone, as searched
    again._fit(pool_utterances(xs[:30]), y[:30], best["C"], None)
    pred = again._logits(pool_utterances(xs[30:])).argmax(1)
    for c in "ab":
        sel = np.array(corpora[30:]) == c
        assert best[f"val_ua@{c}"] == pytest.approx(
            100 * unweighted_accuracy(y[30:][sel], pred[sel], 2)
        )
    assert best["val_ua@a"] == 100.0 and best["val_ua@b"] == 0.0
    one = EncoderLR(2, (1, 6), c_grid=(0.001, 1.0))
    fit = fit_arrays(one, xs[:30], y[:30], xs[30:], y[30:], progress=False,
                     corpora=["a"] * 30, val_corpora=["a"] * 6)  # fmt: skip
    assert not any("val_ua@a" in r for r in fit.history) and fit.best_val_ua_by_corpus == {}
    with pytest.raises(ValueError, match="every validation item"):
        EncoderLR(2, (1, 6)).fit_closed_form(
            (xs[:30], y[:30]), (xs[30:], y[30:]), False, (corpora[:30], corpora[30:35])
        )


def test_a_held_out_corpus_is_scored_on_its_own_classes_and_original_clips() -> None:
    rng = np.random.default_rng(0)

    def clip(c: int, shift: float = 0.0) -> np.ndarray:
        x = rng.standard_normal((1, 4, 10)) * 0.3
        x[0, c] += 2.0 + shift
        return x.astype(np.float32)

    # corpus "a" labels classes 0-2, corpus "b" classes 0-1: b's clips are scored among 0 and 1
    items = [clip(c) for c in (0, 1, 2) * 6] + [clip(c) for c in (0, 1) * 6]
    y = np.array([*(0, 1, 2) * 6, *(0, 1) * 6])
    groups = ["a"] * 18 + ["b"] * 12
    noise = [rng.standard_normal((1, 4, 10)).astype(np.float32) for _ in items]
    copies = list(zip(items, noise, strict=True))  # copies without the cue: scoring them shows
    model = EncoderLR(3, (1, 4), c_grid=(1.0,), calibrate=False, choose_on="corpora")
    fit = model.fit_closed_form((copies, y), None, False, (groups, None))
    assert fit.history[0]["n_train"] == 60
    assert fit.history[0]["val_ua@b"] == pytest.approx(100.0)


def _two_corpora(rng: np.random.Generator) -> tuple[list, np.ndarray, list[str]]:
    """A large corpus whose class shows in dimension 0 (dimension 1 is loud noise) and a small
    one whose class shows in dimension 1, with dimension 0 pointing the other way: no line
    serves both, so the weights of the rows decide which corpus is heard."""
    xs, y, groups = [], [], []
    for corpus, n in (("big", 300), ("small", 20)):
        for i in range(n):
            c, sign = i % 2, 1.0 if i % 2 else -1.0
            if corpus == "big":
                v = [sign + rng.standard_normal() * 0.3, rng.standard_normal() * 2.0]
            else:
                v = [-sign + rng.standard_normal() * 0.1, sign + rng.standard_normal() * 0.1]
            xs.append(np.repeat(np.array(v, dtype=np.float32)[None, :, None], 5, axis=-1))
            y.append(c)
            groups.append(corpus)
    return xs, np.array(y), groups


def test_balance_corpora_gives_a_small_corpus_the_weight_of_a_large_one() -> None:
    xs, y, groups = _two_corpora(np.random.default_rng(0))
    small = np.array(groups) == "small"
    ua = {}
    for balance in ("classes", "corpora"):
        model = EncoderLR(2, (1, 2), c_grid=(0.01,), calibrate=False, balance=balance)
        model.fit_closed_form((xs, y), None, False, (groups, None))
        pred = model._logits(np.stack([x.mean(-1).ravel() for x in xs])).argmax(1)
        ua[balance] = [100 * (pred[m] == y[m]).mean() for m in (~small, small)]
    assert ua["classes"][1] < 20  # the large corpus decides: the small one's clips are wrong
    assert ua["corpora"][1] > 80  # weighed as much as the large one, the small corpus is heard
    assert np.mean(ua["corpora"]) > np.mean(ua["classes"]) + 15
    va = np.r_[0:20, 300:306]  # validation speakers of both corpora join the weighted refit
    tr = np.setdiff1d(np.arange(len(y)), va)
    model = EncoderLR(2, (1, 2), c_grid=(0.001, 0.01), balance="corpora")
    fit_arrays(model, [xs[i] for i in tr], y[tr], [xs[i] for i in va], y[va], progress=False,
               corpora=[groups[i] for i in tr], val_corpora=[groups[i] for i in va])  # fmt: skip
    pred = model._logits(np.stack([x.mean(-1).ravel() for x in xs])).argmax(1)
    assert (pred[small] == y[small]).mean() > 0.8
    assert model.hparams["balance"] == "corpora"
    assert build_model("encoder-lr", 2, (1, 2), **model.hparams).balance == "corpora"
    assert "balance" not in EncoderLR(2, (1, 2)).hparams  # the default, as older bundles
    with pytest.raises(ValueError, match="balance"):
        EncoderLR(2, (1, 2), balance="speakers")


def test_balance_corpora_weighs_the_refit_and_each_held_out_fit() -> None:
    xs, y, groups = _two_corpora(np.random.default_rng(1))
    third = [x + 0.0 for x in xs[:40]]  # a third corpus: the choice by corpus needs 3
    xs, y, groups = xs + third, np.concatenate([y, y[:40]]), groups + ["third"] * 40
    plain = EncoderLR(2, (1, 2), c_grid=(0.01,), calibrate=False, choose_on="corpora")
    fair = EncoderLR(2, (1, 2), c_grid=(0.01,), calibrate=False, choose_on="corpora",
                     balance="corpora")  # fmt: skip
    scores = {}
    for name, model in (("plain", plain), ("fair", fair)):
        fit = model.fit_closed_form((xs, y), None, False, (groups, None))
        scores[name] = fit.history[0]
    # held out, "big" is judged by a fit on "small" and "third": unweighted, the 40 rows of
    # "third" (big's cue) outweigh the 20 of "small"; weighed equally, the small corpus's
    # contrary cue pulls the line away from big's
    assert scores["plain"]["val_ua@big"] > 75
    assert scores["fair"]["val_ua@big"] < scores["plain"]["val_ua@big"] - 15


def test_fit_logistic_checks_its_sample_weights() -> None:
    from emovox.models.linear import fit_logistic

    model = EncoderLR(2, (1, 2))
    x, y = np.random.default_rng(0).standard_normal((10, 2)), np.array([0, 1] * 5)
    with pytest.raises(ValueError, match="one positive weight per row"):
        fit_logistic(model, "", x, y, 1.0, np.ones(9))
    with pytest.raises(ValueError, match="one positive weight per row"):
        fit_logistic(model, "", x, y, 1.0, np.r_[0.0, np.ones(9)])
    fit_logistic(model, "", x, y, 1.0, np.ones(10) * 7)  # scaled: as any constant weight
    a = model.coef.clone()
    fit_logistic(model, "", x, y, 1.0, np.ones(10))
    assert torch.allclose(a, model.coef)


def _corpus_without_a_class(rng: np.random.Generator) -> tuple[list, np.ndarray, list[str]]:
    """Corpus "a" labels classes 0-2 (class ``c`` raises dimension ``c``); corpus "b" labels 0
    and 1 only, and every clip of it has dimension 2 raised (its channel, say)."""
    vs, y, groups = [], [], []
    for corpus, n, classes in (("a", 90, 3), ("b", 200, 2)):
        for i in range(n):
            c = i % classes
            v = rng.standard_normal(3) * 0.7
            v[c] += 1.5
            v[2] += 1.5 if corpus == "b" else 0.0
            vs.append(v)
            y.append(c)
            groups.append(corpus)
    xs = [np.repeat(np.asarray(v, np.float32)[None, :, None], 4, axis=-1) for v in vs]
    return xs, np.array(y), groups


def test_corpus_classes_scores_each_row_over_its_corpus_classes_only() -> None:
    xs, y, groups = _corpus_without_a_class(np.random.default_rng(0))
    b_like = np.stack([x.mean(-1).ravel() for x, g in zip(xs, groups, strict=True) if g == "b"])
    p2 = {}
    for masked in (False, True):
        model = EncoderLR(3, (1, 3), c_grid=(1.0,), calibrate=False, corpus_classes=masked)
        model.fit_closed_form((xs, y), None, False, (groups, None))
        p2[masked] = torch.softmax(torch.as_tensor(model._logits(b_like)), 1)[:, 2].mean()
    # unmasked, b's clips teach "dimension 2 raised, yet not class 2"; masked they say nothing
    # about class 2, which then owns dimension 2 as corpus "a" shows it
    assert p2[False] < 0.35 and p2[True] > 0.6
    model = EncoderLR(3, (1, 3), corpus_classes=True)
    assert build_model("encoder-lr", 3, (1, 3), **model.hparams).corpus_classes
    assert "corpus_classes" not in EncoderLR(3, (1, 3)).hparams  # the default, as older bundles
    one = EncoderLR(3, (1, 3), c_grid=(1.0,), calibrate=False, corpus_classes=True)
    plain = EncoderLR(3, (1, 3), c_grid=(1.0,), calibrate=False)
    for m in (one, plain):  # one corpus: nothing to mask, the same regression
        m.fit_closed_form((xs, y), None, False, (["a"] * len(y), None))
    assert torch.allclose(one.coef, plain.coef)


def test_the_masked_solver_is_scikit_learns_when_nothing_is_masked() -> None:
    from emovox.models.linear import fit_logistic

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((240, 6)), rng.choice([0, 1, 3], 240, p=[0.5, 0.3, 0.2])
    x[np.arange(240), y] += 1.5
    for C in (0.01, 1.0):
        a, b = EncoderLR(4, (1, 6)), EncoderLR(4, (1, 6))
        fit_logistic(a, "", x, y, C)
        fit_logistic(b, "", x, y, C, class_mask=np.ones((240, 4), dtype=bool))
        assert torch.allclose(a.coef, b.coef, atol=2e-3 * float(a.coef.abs().max()))
        assert float(b.intercept[2]) < -1e3  # a class absent from y is never predicted
    with pytest.raises(ValueError, match="leaves out the label"):
        fit_logistic(a, "", x, y, 1.0, class_mask=np.zeros((240, 4), dtype=bool))
    with pytest.raises(ValueError, match="class_mask must be"):
        fit_logistic(a, "", x, y, 1.0, class_mask=np.ones((240, 2), dtype=bool))


def test_nuisance_projects_out_the_direction_the_corpora_differ_along() -> None:
    from emovox.models.linear import nuisance_directions

    rng = np.random.default_rng(0)

    def corpus(n: int, p1: float, shift: float) -> tuple[list, np.ndarray]:
        """Class ``c`` raises dimension ``c``; the corpus's channel moves dimension 2."""
        y = (rng.random(n) < p1).astype(int)
        v = rng.standard_normal((n, 3)) * 0.8
        v[np.arange(n), y] += 1.0
        v[:, 2] += shift
        return [np.repeat(r.astype(np.float32)[None, :, None], 3, axis=-1) for r in v], y

    (xa, ya), (xb, yb) = corpus(200, 0.2, 0.0), corpus(200, 0.8, 3.0)  # b: louder, mostly 1
    xs, y, groups = xa + xb, np.concatenate([ya, yb]), ["a"] * 200 + ["b"] * 200
    x_new, y_new = corpus(400, 0.5, -3.0)  # a third channel, classes even
    v_new = np.stack([x.mean(-1).ravel() for x in x_new])
    ua = {}
    for k in (0, 1):
        model = EncoderLR(2, (1, 3), c_grid=(1.0,), calibrate=False, nuisance=k)
        model.fit_closed_form((xs, y), None, False, (groups, None))
        pred = model._logits(v_new).argmax(1)
        ua[k] = np.mean([(pred[y_new == c] == c).mean() for c in (0, 1)])
        if k:  # a clip's position along the projected direction moves no logit
            v = np.stack([x.mean(-1).ravel() for x in xs])
            z = (v - model.mean.numpy()) / model.scale.numpy()
            u = nuisance_directions(z, y, np.array(groups), 1)
            assert abs(u[0, 2]) > 0.9  # the channel's dimension
            assert np.abs(model.coef.numpy() @ u.T).max() < 1e-6
    assert ua[0] < 0.65 and ua[1] > ua[0] + 0.1  # the channel no longer decides on a new one
    assert (
        build_model("encoder-lr", 2, (1, 3), **EncoderLR(2, (1, 3), nuisance=2).hparams).nuisance
        == 2
    )
    assert "nuisance" not in EncoderLR(2, (1, 3)).hparams
    with pytest.raises(ValueError, match="nuisance"):
        EncoderLR(2, (1, 3), nuisance=-1)


def test_nuisance_directions_are_the_corpus_differences_within_a_class() -> None:
    from emovox.models.linear import nuisance_directions

    z = np.zeros((8, 4))
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    groups = np.array(["a"] * 4 + ["b"] * 4)
    z[4:, 3] = 2.0  # corpus b sits higher on dimension 3, for both classes
    z[y == 1, 0] = 5.0  # the class lies on dimension 0: not a nuisance
    u = nuisance_directions(z, y, groups, 3)
    assert u.shape == (1, 4) and abs(abs(u[0, 3]) - 1.0) < 1e-9  # one difference: one direction
    assert nuisance_directions(z, y, np.array(["a"] * 8), 2).shape == (0, 4)


def _with_levels(rng: np.random.Generator, n: int) -> tuple[list, np.ndarray]:
    """``n`` clips of 6 bins whose first bin carries an arousal in [-0.8, 0.8] (the rest noise),
    and their targets: arousal always known, valence known on the first half only."""
    arousal = rng.uniform(-0.8, 0.8, n)
    xs = []
    for a in arousal:
        x = rng.standard_normal((1, 6, 20)).astype(np.float32) * 0.3
        x[0, 0] += 3 * a
        xs.append(x)
    targets = np.stack([arousal, np.where(np.arange(n) < n // 2, -arousal, np.nan)], axis=1)
    return xs, targets


def test_the_arousal_valence_head_is_a_ridge_chosen_on_validation_targets() -> None:
    rng = np.random.default_rng(0)
    xs, targets = _with_levels(rng, 80)
    y = (targets[:, 0] > 0).astype(int)
    model = EncoderLR(2, (1, 6), c_grid=(0.1,))
    model.attach_dimensions()
    # standardisation 6 + 6, the classes 2 x 6 + 2, C and the temperature, the head 2 x 6 + 2
    assert model.has_dimensions() and model.n_parameters == 6 + 6 + 14 + 2 + 14
    model.fit_closed_form((xs[:60], y[:60]), (xs[60:], y[60:]), progress=False)
    fit = model.fit_dimensions((xs[:60], targets[:60]), (xs[60:], targets[60:]))
    assert fit["dims_alpha"] in (1.0, 10.0) and fit["val_dims_mse"] < 0.02  # a clean signal
    test, truth = _with_levels(rng, 40)
    batch = torch.from_numpy(np.stack(test))
    with torch.no_grad():
        logits, dims = model.forward_with_dimensions(batch)
    assert torch.equal(logits, model(batch))  # the classes as without the head
    dims = dims.numpy()
    assert np.abs(dims).max() < 1.0
    assert np.corrcoef(dims[:, 0], truth[:, 0])[0, 1] > 0.95
    # valence was known on half of the rows only, and is the mirror of arousal there
    assert np.corrcoef(dims[:, 1], truth[:, 0])[0, 1] < -0.95
    # without validation targets: the default strength, and no error to report
    plain = EncoderLR(2, (1, 6), c_grid=(0.1,))
    plain.attach_dimensions()
    plain.fit_closed_form((xs, y), None, progress=False)
    assert plain.fit_dimensions((xs, targets), None) == {"dims_alpha": 100.0}
    with pytest.raises(ValueError, match="no training item has an arousal or valence target"):
        plain.fit_dimensions((xs[:3], np.full((3, 2), np.nan)))
    with pytest.raises(ValueError, match="no dimensions head"):
        EncoderLR(2, (1, 6)).fit_dimensions((xs, targets))
    with pytest.raises(ValueError, match="dimension targets"):
        plain.fit_dimensions((xs, targets[:5]))


def test_rows_without_a_class_teach_the_head_and_not_the_classes() -> None:
    rng = np.random.default_rng(1)
    xs, targets = _with_levels(rng, 60)
    y = (targets[:, 0] > 0).astype(int)
    y[30:45] = -1  # a corpus with arousal levels and no class (BAVED's), in training
    y[55:] = -1  # and among the validation speakers
    model = EncoderLR(2, (1, 6), c_grid=(0.01, 0.1))
    model.attach_dimensions()
    result = fit_arrays(
        model, xs[:50], y[:50], xs[50:], y[50:], dims_y=targets[:50], val_dims_y=targets[50:],
        progress=False,
    )  # fmt: skip
    last = result.history[-1]
    assert last["refit"] == 1 and last["dims_alpha"] > 0 and "val_dims_mse" in last
    assert result.history[0]["n_train"] == 35  # the class fit saw the rows with a class only
    # the validation items without a class are left out of the classes' validation
    assert result.best_val_ua is not None and len(result.history) == 3
    with torch.no_grad():
        _, dims = model.forward_with_dimensions(torch.from_numpy(np.stack(xs[30:45])))
    assert np.corrcoef(dims[:, 0].numpy(), targets[30:45, 0])[0, 1] > 0.9


def test_train_param_dimensions_gives_the_regression_arousal_and_valence(
    synth_corpus: Path, tmp_path: Path
) -> None:
    encoder = make_tiny_whisper(tmp_path / "whisper")
    out = tmp_path / "whisper-lr-dims"
    options = ["--feature-param", "layer=1", "--train-param", "dimensions=true"]
    train_on_tiny_whisper(synth_corpus, encoder, out, "encoder-lr", *options)
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["dimensions"] == ["arousal", "valence"]
    curves = (out / "training_curves.csv").read_text().splitlines()
    assert "dims_alpha" in curves[0].split(",")
    rec = Recognizer.load(out)
    files = [u.path for u in synth_manifest(synth_corpus)][:4]
    preds = rec.predict_batch(files)
    assert all(-1.0 <= p.arousal <= 1.0 and -1.0 <= p.valence <= 1.0 for p in preds)
    assert len({p.arousal for p in preds}) > 1  # a score per clip, not a constant
    again = Recognizer.load(out).predict_batch(files)
    assert [(p.arousal, p.valence) for p in again] == [(p.arousal, p.valence) for p in preds]
