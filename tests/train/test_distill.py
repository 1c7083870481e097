"""Distillation (``teacher`` / ``distill``): the soft cross-entropy, the trainer following a
teacher's answers, the teacher's targets from a bundle, the per-fold teacher of an evaluation and
the refusal of a teacher that heard the student's validation or test speakers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    SYNTH_EMOTIONS,
    TOY_TRAINING,
    run_cli,
    synth_manifest,
    tiny_cli,
    tiny_cnn,
    toy_data,
    train_tiny,
)
from torch import nn

from emovox.apps.cli import main
from emovox.train.config import TrainConfig
from emovox.train.distill import (
    check_teacher_speakers,
    fold_teacher,
    soft_cross_entropy,
    teacher_targets,
)
from emovox.train.trainer import Trainer

HOP = 0.01


# -- the loss -----------------------------------------------------------------------------------


def test_one_hot_targets_give_the_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 1, 0])
    target = nn.functional.one_hot(y, 4).float()
    ones = torch.ones(6, 4, dtype=torch.bool)
    got = soft_cross_entropy(logits, target, ones, torch.ones(6))
    assert torch.allclose(got, nn.functional.cross_entropy(logits, y))


def test_masked_classes_nan_rows_and_zero_weights_add_nothing() -> None:
    torch.manual_seed(1)
    logits = torch.randn(3, 4)
    target = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.3, 0.4], [0.25] * 4])
    mask = torch.tensor([[True, True, False, False], [True] * 4, [True] * 4])
    weight = torch.tensor([2.0, 1.0, 0.0])
    target[1] = float("nan")
    got = soft_cross_entropy(logits, target, mask, weight)
    # row 0 alone counts: its softmax and its target over classes 0 and 1 only
    q = torch.tensor([0.5, 0.3]) / 0.8
    want = -(q * torch.log_softmax(logits[0, :2], 0)).sum()
    assert torch.allclose(got, want)
    assert soft_cross_entropy(logits[1:2], target[1:2], mask[1:2], weight[1:2]) == 0


def test_temperature_softens_both_sides_and_scales_by_its_square() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    target = torch.tensor([[0.7, 0.2, 0.1]])
    ones, w = torch.ones(1, 3, dtype=torch.bool), torch.ones(1)
    q = target.pow(0.5) / target.pow(0.5).sum()
    want = 4 * -(q * torch.log_softmax(logits / 2, 1)).sum()
    assert torch.allclose(soft_cross_entropy(logits, target, ones, w, 2.0), want)


# -- the trainer --------------------------------------------------------------------------------


def teacher_says_the_opposite(ys: np.ndarray) -> np.ndarray:
    """Soft targets that put 0.9 on the class each label is not."""
    soft = np.full((len(ys), 2), 0.1, dtype=np.float32)
    soft[np.arange(len(ys)), 1 - ys] = 0.9
    return soft


def fitted(config: TrainConfig, xs, ys, soft_y=None):
    model = tiny_cnn()
    Trainer(model, config, HOP, progress=False).fit(xs, ys, soft_y=soft_y)
    return model


def accuracy(model, xs, ys) -> float:
    from emovox.inference.predict import predict_proba

    return float((predict_proba(model, xs).argmax(1) == ys).mean())


def test_the_student_follows_the_teacher_with_full_weight() -> None:
    xs, ys = toy_data(n_per_class=12)
    settings = {**TOY_TRAINING, "epochs": 15, "schedule": "constant", "mixup": 0.0}
    plain = fitted(TrainConfig(**settings), xs, ys)
    config = TrainConfig(**settings, teacher="t", distill=1.0)
    student = fitted(config, xs, ys, soft_y=teacher_says_the_opposite(ys))
    assert accuracy(plain, xs, ys) > 0.9
    assert accuracy(student, xs, ys) < 0.1


def test_the_history_records_the_distillation_loss_and_mixup_mixes_the_targets() -> None:
    xs, ys = toy_data()
    config = TrainConfig(**{**TOY_TRAINING, "epochs": 2}, teacher="t", distill=0.5)
    trainer = Trainer(tiny_cnn(), config, HOP, progress=False)
    result = trainer.fit(xs, ys, soft_y=teacher_says_the_opposite(ys))
    assert all(row["distill_loss"] > 0 for row in result.history)


def test_soft_targets_are_checked() -> None:
    xs, ys = toy_data()
    config = TrainConfig(**TOY_TRAINING, teacher="t", distill=0.5)
    with pytest.raises(ValueError, match="no soft_y"):
        fitted(config, xs, ys)
    with pytest.raises(ValueError, match="shape"):
        fitted(config, xs, ys, soft_y=np.zeros((len(ys), 3), np.float32))
    with pytest.raises(ValueError, match="outside"):
        fitted(config, xs, ys, soft_y=np.full((len(ys), 2), 2.0, np.float32))


def test_without_distill_the_soft_targets_are_ignored() -> None:
    xs, ys = toy_data()
    config = TrainConfig(**{**TOY_TRAINING, "epochs": 2})
    a = fitted(config, xs, ys)
    b = fitted(config, xs, ys, soft_y=teacher_says_the_opposite(ys))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"distill": 0.5}, "needs teacher"),
        ({"teacher": "x"}, "distill is 0"),
        ({"teacher": "x", "distill": 1.5}, r"\[0, 1\]"),
        ({"teacher": "x", "distill": 0.5, "distill_temperature": 0}, "temperature"),
    ],
)
def test_the_settings_are_checked(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_a_model_without_a_network_cannot_distil() -> None:
    from emovox.models import build_model
    from emovox.train.fitting import fit_arrays

    xs, ys = toy_data()
    svm = build_model("egemaps-svm", 2, (1, 8))
    config = TrainConfig(teacher="t", distill=0.5)
    with pytest.raises(ValueError, match="no gradient-trained part"):
        fit_arrays(svm, xs, ys, config=config, progress=False)


# -- teachers from bundles ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cnn trained on the synthetic corpus with the default seed."""
    return train_tiny(synth_corpus, tmp_path_factory.mktemp("teacher") / "model")


def test_teacher_targets_follow_the_classes_by_name(
    synth_corpus: Path, teacher: Path, tmp_path: Path
) -> None:
    from emovox.inference.recognizer import Recognizer

    paths = synth_manifest(synth_corpus).paths[:4]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    order = ["sad", "neutral", "angry", "happy"]
    soft = teacher_targets(teacher, [*paths, str(bad)], order, progress=False)
    assert soft.shape == (5, 4)
    assert np.isnan(soft[4]).all()
    assert np.allclose(soft[:4].sum(1), 1.0, atol=1e-5)
    rec = Recognizer.load(teacher)
    for path, row in zip(paths, soft, strict=False):
        probs = rec.predict(path).probabilities
        assert np.allclose(row, [probs[c] for c in order], atol=1e-4)
    with pytest.raises(ValueError, match="does not know"):
        teacher_targets(teacher, paths, ["calm", "sad"], progress=False)


def test_a_teacher_with_other_validation_speakers_is_refused(
    synth_corpus: Path, teacher: Path, tmp_path: Path
) -> None:
    heard = train_tiny(synth_corpus, tmp_path / "other", seed=5)
    val = json.loads((teacher / "config.json").read_text())["training_result"]
    check_teacher_speakers(teacher, val["validation_speakers"], ())  # the same split: fine
    other = json.loads((heard / "config.json").read_text())["training_result"]
    if set(other["validation_speakers"]) == set(val["validation_speakers"]):
        pytest.skip("seed 5 drew the same validation speakers")
    with pytest.raises(ValueError, match="was trained on"):
        check_teacher_speakers(heard, val["validation_speakers"], ())


def test_the_cli_trains_a_student_and_records_its_teacher(
    synth_corpus: Path, teacher: Path, tmp_path: Path
) -> None:
    data = ["--data", synth_corpus, "--labels", ",".join(SYNTH_EMOTIONS)]
    out = tmp_path / "student"
    options = ["--train-param", f"teacher={teacher}", "--train-param", "distill=0.5"]
    run_cli(tiny_cli("train", data, out, *options, epochs=3))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["teacher"] == str(teacher)
    assert cfg["training"]["distill"] == 0.5
    curves = (out / "training_curves.csv").read_text().splitlines()
    assert "distill_loss" in curves[0]


# -- per fold -----------------------------------------------------------------------------------


def test_each_fold_learns_from_the_teacher_that_was_tested_on_its_speakers(
    synth_corpus: Path, tmp_path: Path
) -> None:
    data = ["--data", synth_corpus, "--labels", ",".join(SYNTH_EMOTIONS)]
    protocol = ["--protocol", "speakers-kfold:2"]
    runs = tmp_path / "teacher-run"
    run_cli(tiny_cli("evaluate", data, runs, *protocol))
    student = tmp_path / "student-run"
    options = ["--train-param", f"teacher={runs}", "--train-param", "distill=0.5"]
    run_cli(tiny_cli("evaluate", data, student, *protocol, *options))
    for fold in (1, 2):
        cfg = json.loads((student / f"fold_{fold}" / "model" / "config.json").read_text())
        assert cfg["training"]["teacher"] == str(runs / f"fold_{fold}" / "model")
    # a teacher run of another split has no fold tested on these speakers
    shutil.rmtree(runs / "fold_2")
    with pytest.raises(FileNotFoundError, match="no teacher for the fold"):
        fold_teacher(runs, ["nobody"])


def test_a_fold_teacher_that_heard_the_test_speakers_is_refused(tmp_path: Path) -> None:
    fold = tmp_path / "fold_1"
    (fold / "model").mkdir(parents=True)
    (fold / "model" / "config.json").write_text("{}")
    metrics = {"test_speakers": ["a"], "validation_speakers": ["b"]}
    (fold / "metrics.json").write_text(json.dumps(metrics))
    assert fold_teacher(tmp_path, ["a"]) == fold / "model"
    check_teacher_speakers(fold / "model", ["b"], ["a"])
    with pytest.raises(ValueError, match=r"1 speaker\(s\).*\(c\)"):
        check_teacher_speakers(fold / "model", ["b"], ["c"])


def test_the_cli_rejects_distill_without_a_teacher(synth_corpus: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    data = ["--data", synth_corpus, "--labels", ",".join(SYNTH_EMOTIONS)]
    args = tiny_cli("train", data, tmp_path / "m", "--train-param", "distill=0.5")
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code != 0
    assert "needs teacher" in result.output
    assert synth_manifest(synth_corpus)  # the corpus is untouched


# -- rows without a class -------------------------------------------------------------------------


def test_rows_without_a_class_learn_the_teachers_answer_over_every_class() -> None:
    xs, ys = toy_data(n_per_class=12)
    soft = np.full((len(ys), 2), 0.05, dtype=np.float32)
    soft[np.arange(len(ys)), ys] = 0.95
    no_class = np.full_like(ys, -1)
    settings = {**TOY_TRAINING, "epochs": 15, "schedule": "constant", "mixup": 0.0}
    config = TrainConfig(**settings, teacher="t", distill=1.0, distill_unlabelled=True)
    student = fitted(config, xs, no_class, soft_y=soft)
    assert accuracy(student, xs, ys) > 0.9
    untaught = fitted(config, xs, no_class, soft_y=np.full_like(soft, np.nan))
    assert accuracy(untaught, xs, ys) < 0.9  # no target at all: nothing to learn from


def test_the_pipeline_asks_the_teacher_about_rows_without_a_class_only_when_told(
    synth_corpus: Path, teacher: Path
) -> None:
    from emovox.data.labels import resolve_labels
    from emovox.data.protocols import validation_split
    from emovox.train.dataset import load_dataset
    from emovox.train.pipeline import teacher_soft_targets

    scheme = resolve_labels("angry,happy,sad")  # neutral rows stay, for the dimensions head only
    data = load_dataset(
        synth_manifest(synth_corpus),
        scheme,
        teacher_feature(teacher),
        progress=False,
        dimension_rows=True,
    )
    no_class = data.y < 0
    assert no_class.any()
    every = list(range(len(data.y)))
    tr, va = validation_split(data.manifest, every, 0.2, 0)
    base = {"teacher": str(teacher), "distill": 0.5, "dimensions": True}
    plain = teacher_soft_targets(data, tr, va, TrainConfig(**base), progress=False)
    wide = TrainConfig(**base, distill_unlabelled=True)
    told = teacher_soft_targets(data, tr, va, wide, progress=False)
    rows_no_class = no_class[tr]
    assert np.isnan(plain[rows_no_class]).all()
    assert np.isfinite(plain[~rows_no_class]).all()
    assert np.isfinite(told).all()
    assert np.allclose(told[~rows_no_class], plain[~rows_no_class])
    with pytest.raises(ValueError, match="needs distill"):
        TrainConfig(distill_unlabelled=True)


def teacher_feature(bundle: Path):
    from emovox.inference.bundle import load_bundle

    return load_bundle(bundle).feature
