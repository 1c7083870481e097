"""Rows without a class (BAVED's arousal levels, EmoDB's boredom) teach the dimensions head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_cnn, toy_data, write_tone

from emovox.data.labels import NO_CLASS, SOURCE_LABEL, resolve_labels
from emovox.data.manifest import Manifest, Utterance
from emovox.data.protocols import make_folds, validation_split
from emovox.features import make_feature
from emovox.train.aux import dimension_targets
from emovox.train.config import TrainConfig
from emovox.train.dataset import load_dataset
from emovox.train.trainer import Trainer, masked_cross_entropy

SCHEME = "calm=neutral,angry,sad"


def rows() -> list[Utterance]:
    """Two categorical corpora (``a``, ``b``) and one labelled with arousal levels only."""
    out = []
    for corpus, labels in (("a", ("angry", "sad", "calm", "boredom")), ("b", ("angry", "neutral"))):
        for s in range(3):
            for label in labels:
                name = f"{corpus}{s}_{label}.wav"
                out.append(Utterance(name, label, f"{corpus}_{s}", "female", corpus))
    for s in range(3):
        for level in ("low", "high"):
            u = Utterance(f"z{s}_{level}.wav", "", f"z_{s}", "male", "z", {"arousal": level})
            out.append(u)
    return out


def test_a_merged_label_keeps_its_own_for_the_circumplex() -> None:
    kept, _ = resolve_labels(SCHEME).apply(Manifest(rows()))
    calm = next(u for u in kept if u.path.endswith("_calm.wav"))
    assert calm.label == "neutral" and calm.fields[SOURCE_LABEL] == "calm"
    neutral = next(u for u in kept if u.path.endswith("_neutral.wav"))
    assert SOURCE_LABEL not in neutral.fields  # unchanged rows are left as they are
    targets = dimension_targets([calm, neutral])
    assert targets[0].tolist() == pytest.approx([-0.6, 0.4])  # calm's place, not neutral's
    assert targets[1].tolist() == [0.0, 0.0]


def write_rows(folder: Path) -> Manifest:
    out = []
    for i, u in enumerate(rows()):
        path = write_tone(folder / u.path, seconds=0.6, freq=150.0 + 10 * i)
        out.append(Utterance(str(path), u.label, u.speaker, u.gender, u.corpus, u.fields))
    return Manifest(out)


def test_dimension_rows_are_kept_without_a_class_only_when_asked(tmp_path: Path) -> None:
    manifest = write_rows(tmp_path)
    scheme = resolve_labels(SCHEME)
    feature = make_feature("logmel", n_mels=16)
    plain = load_dataset(manifest, scheme, feature, progress=False)
    assert NO_CLASS not in plain.y and plain.dropped == 9  # 3 boredom + 6 arousal-only rows
    data = load_dataset(manifest, scheme, feature, progress=False, dimension_rows=True)
    assert data.dropped == 0 and len(data.y) == len(plain.y) + 9
    extra = [u for u, y in zip(data.manifest, data.y, strict=True) if y == NO_CLASS]
    assert {u.corpus for u in extra} == {"a", "z"} and all(u.label == "" for u in extra)
    targets = dimension_targets(extra)
    boredom = [t for u, t in zip(extra, targets, strict=True) if u.corpus == "a"]
    assert all(t.tolist() == pytest.approx([-0.7, -0.3]) for t in boredom)  # both dimensions
    levels = [t for u, t in zip(extra, targets, strict=True) if u.corpus == "z"]
    assert all(np.isfinite(t[0]) and np.isnan(t[1]) for t in levels)  # arousal, no valence


def labelled_manifest() -> Manifest:
    scheme = resolve_labels(SCHEME)
    kept, _ = scheme.apply(Manifest(rows()))
    from emovox.train.dataset import dimension_only_rows

    return Manifest([*kept, *dimension_only_rows(Manifest(rows()), scheme)])


def test_rows_without_a_class_are_never_tested_nor_validated() -> None:
    manifest = labelled_manifest()
    unlabelled = {i for i, u in enumerate(manifest) if not u.label}
    folds = make_folds(manifest, "loco")
    # corpus z, with no class, is left out last and scored on its arousal alone
    assert [f.test_corpora for f in folds] == [("a",), ("b",), ("z",)]
    assert [f.index for f in folds] == [1, 2, 3]
    assert [f.dimensions_only for f in folds] == [False, False, True]
    z = {i for i, u in enumerate(manifest) if u.corpus == "z"}
    assert set(folds[2].test) == z and not z & set(folds[2].train)
    assert set(folds[2].train) == set(range(len(manifest))) - z
    folds = folds[:2]
    for fold in folds:
        assert not unlabelled & set(fold.test)
        assert {i for i in unlabelled if manifest[i].corpus not in fold.test_corpora} <= set(
            fold.train
        )
    assert {manifest[i].corpus for i in unlabelled & set(folds[0].train)} == {"z"}
    assert {manifest[i].corpus for i in unlabelled & set(folds[1].train)} == {"a", "z"}
    indices = list(range(len(manifest)))
    train, val = validation_split(manifest, indices, fraction=0.4, seed=3)
    assert unlabelled <= set(train) and not unlabelled & set(val)
    labelled = [i for i in indices if i not in unlabelled]
    plain_manifest = Manifest([manifest[i] for i in labelled])
    _, plain_val = validation_split(plain_manifest, list(range(len(labelled))), 0.4, seed=3)
    assert {plain_manifest[i].speaker for i in plain_val} == {manifest[i].speaker for i in val}


def test_items_without_a_class_add_nothing_and_keep_gradients_finite() -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, NO_CLASS, 2, NO_CLASS])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.bool)
    loss = masked_cross_entropy(logits, y, mask, label_smoothing=0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[3].abs().sum() == 0
    known = masked_cross_entropy(logits[[0, 2]], y[[0, 2]], mask[[0, 2]], label_smoothing=0.1)
    assert torch.isclose(loss, known)
    every = torch.ones_like(mask)
    plain = torch.nn.functional.cross_entropy(logits[[0, 2]], y[[0, 2]])
    assert torch.isclose(masked_cross_entropy(logits, y, every), plain)
    none = masked_cross_entropy(logits, torch.full((4,), NO_CLASS), mask)
    assert float(none.detach()) == 0.0


def test_the_trainer_learns_the_dimensions_from_rows_without_a_class() -> None:
    xs, ys = toy_data(n_per_class=12)
    ys = ys.copy()
    dims = np.full((len(xs), 2), np.nan, dtype=np.float32)
    dims[:, 0] = np.where(ys == 1, 0.6, -0.6)  # arousal follows the class
    ys[::3] = NO_CLASS  # a third of the rows have no class, only arousal
    cfg = TrainConfig(
        epochs=8, batch_size=8, lr=1e-2, crop_seconds=None, specaugment=False, dimensions=True
    )
    model = tiny_cnn()
    model.attach_dimensions()
    result = Trainer(model, cfg, 0.01, progress=False).fit(xs, ys, dims_y=dims)
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["dims_loss"]) for r in result.history)
    assert result.history[-1]["dims_loss"] < result.history[0]["dims_loss"]


def fake_baved(root: Path, speakers: int) -> Path:
    """BAVED-named tones: each speaker says one word at the three arousal levels."""
    for speaker in range(speakers):
        for level in range(3):
            name = f"{level}/{speaker}-{'mf'[speaker % 2]}-21-{level}-{level}-{speaker}.wav"
            write_tone(root / name, seconds=0.8, freq=120.0 + 40 * level + 5 * speaker)
    return root


def test_evaluate_trains_on_arousal_only_rows_and_never_tests_them(
    synth_corpus: Path, tmp_path: Path
) -> None:
    import json

    from conftest import run_cli, tiny_cli

    baved = fake_baved(tmp_path / "BAVED", speakers=4)
    data = ["--train", f"ravdess:{synth_corpus}", "--train", f"baved:{baved}"]
    data += ["--labels", "angry,happy,neutral,sad", "--protocol", "speakers-kfold:2"]
    out = tmp_path / "run"
    run_cli(tiny_cli("evaluate", data, out, "--train-param", "dimensions=true"))
    metrics = json.loads((out / "metrics.json").read_text())
    folds = metrics["folds"]
    assert folds and sum(f["n_test"] for f in folds) == 32  # the 32 labelled clips, each once
    assert all(f["n_train"] > 32 - f["n_test"] for f in folds)  # BAVED's 12 rows trained
    assert metrics["per_test_corpus"].keys() == {"ravdess"}


def test_a_cross_corpus_test_side_lends_no_row_to_training(
    synth_corpus: Path, tmp_path: Path
) -> None:
    import json
    import shutil
    import warnings

    from conftest import run_cli, tiny_cli

    baved = fake_baved(tmp_path / "BAVED", speakers=2)
    other = shutil.copytree(synth_corpus, tmp_path / "other")  # a second labelled test corpus
    data = ["--train", f"ravdess:{synth_corpus}", "--test", f"baved:{baved}"]
    data += ["--test", f"ravdess:{other}", "--labels", "angry,happy,neutral,sad"]
    out = tmp_path / "cross"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the copy shares the training corpus's speaker names
        run_cli(tiny_cli("evaluate", data, out, "--train-param", "dimensions=true"))
    metrics = json.loads((out / "metrics.json").read_text())
    fold = metrics["folds"][0]
    assert fold["n_test"] == 32 and fold["n_train"] == 32  # BAVED neither tested nor trained


def test_loco_scores_a_corpus_without_classes_on_arousal_alone(
    synth_corpus: Path, tmp_path: Path
) -> None:
    import csv
    import json

    from conftest import run_cli, tiny_cli

    savee = tmp_path / "SAVEE"
    for s, speaker in enumerate(("DC", "JE")):
        for k, code in enumerate(("a", "h", "n", "sa")):
            write_tone(savee / f"{speaker}_{code}01.wav", seconds=0.7, freq=140.0 + 30 * k + s)
    baved = fake_baved(tmp_path / "BAVED", speakers=4)
    data = [f"ravdess:{synth_corpus}", f"savee:{savee}", f"baved:{baved}"]
    args = [a for c in data for a in ("--train", c)]
    args += ["--labels", "angry,happy,neutral,sad", "--protocol", "loco"]
    out = tmp_path / "loco"
    cli = tiny_cli("evaluate", args, out, "--train-param", "dimensions=true", epochs=1)
    result = run_cli(cli)
    assert "baved: no class, arousal only: low/high UA" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    folds = metrics["folds"]
    assert [f["test_corpora"] for f in folds] == [["ravdess"], ["savee"], ["baved"]]
    baved_fold = folds[2]
    assert baved_fold["ua"] is None and baved_fold["n_test"] == 12
    assert baved_fold["n_train"] == 32 + 8  # both categorical corpora, none of BAVED
    assert baved_fold["dimensions"]["arousal"]["n_sign"] == 8  # low and high; neutral is 0
    assert metrics["ua"] == pytest.approx((folds[0]["ua"] + folds[1]["ua"]) / 2)
    assert sum(sum(r) for r in metrics["confusion"]["matrix"]) == 32 + 8  # labelled rows only
    per = metrics["per_test_corpus"]
    assert per["baved"]["dimensions_only"] and per["baved"]["n"] == 12
    assert sum(per["baved"]["predicted"].values()) == pytest.approx(100.0)
    assert per["baved"]["dimensions"]["arousal"]["n"] == 12
    assert per["baved"]["dimensions"]["valence"]["n"] == 0  # BAVED's levels say no valence
    assert "four_classes" in per["savee"] and "four_classes" not in per["baved"]
    # pooled arousal counts BAVED's rows with the labelled corpora's
    assert metrics["dimensions"]["arousal"]["n"] == 32 + 8 + 12
    with (out / "fold_3" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and all(r["label"] == "" and r["arousal_target"] for r in rows)
    report = (out / "report.md").read_text()
    assert "| baved* |" in report and "| 3 | baved | — | — | — |" in report
    run_cli([*cli, "--resume"])  # the finished dimensions-only fold is reused as it is
    again = json.loads((out / "metrics.json").read_text())
    assert again["folds"] == folds and again["per_test_corpus"] == per


def test_a_dimensions_only_fold_needs_the_dimensions_head_before_any_training() -> None:
    from conftest import tiny_recipe

    from emovox.data.protocols import Fold
    from emovox.evaluate.plans import Plan
    from emovox.evaluate.runner import run_fold

    fold = Fold(3, (0, 1), (2, 3), ("z_0",), ("z",), dimensions_only=True)
    recipe = tiny_recipe(dimensions=False)
    with pytest.raises(ValueError, match="dimensions=true"):
        run_fold(None, fold, recipe, Plan("loco", (fold,)), progress=False)  # never reads data


def test_dimension_rows_false_trains_the_head_on_classified_rows_alone(
    synth_corpus: Path, tmp_path: Path
) -> None:
    import json

    from conftest import run_cli, tiny_cli

    from emovox.train.dataset import variant_options

    assert variant_options(TrainConfig(dimensions=True))["dimension_rows"]
    assert not variant_options(TrainConfig(dimensions=True, dimension_rows=False))["dimension_rows"]
    assert not variant_options(TrainConfig(dimension_rows=True))["dimension_rows"]  # no head
    with pytest.raises(ValueError, match="dimension_rows"):
        TrainConfig(dimensions=True, dimension_rows="maybe")
    baved = fake_baved(tmp_path / "BAVED", speakers=4)
    data = ["--train", f"ravdess:{synth_corpus}", "--train", f"baved:{baved}"]
    data += ["--labels", "angry,happy,neutral,sad", "--protocol", "speakers-kfold:2"]
    out = tmp_path / "run"
    extra = ("--train-param", "dimensions=true", "--train-param", "dimension_rows=false")
    run_cli(tiny_cli("evaluate", data, out, *extra, epochs=1))
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(f["n_train"] == 32 - f["n_test"] for f in metrics["folds"])  # no BAVED row
    assert metrics["dropped_utterances"]["baved"] == 12
    assert metrics["training"]["dimension_rows"] is False
