"""benchmarks/functionals_fusion.py: a functionals regression fused with a LOCO run's CNN,
everything chosen on the folds' validation speakers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_module, run_cli, tiny_cli, tone_corpora

LABELS = "angry,happy,neutral,sad"


@pytest.fixture(scope="module")
def loco_run(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny ``emovox evaluate --protocol loco`` run over three corpora, and its ``--train``."""
    root = tmp_path_factory.mktemp("fusion")
    train = [f"ravdess:{synth_corpus}", *tone_corpora(root)]
    args = [a for c in train for a in ("--train", c)]
    args += ["--labels", LABELS, "--protocol", "loco", "--folds", "1,2"]
    out = root / "loco"
    run_cli(tiny_cli("evaluate", args, out, epochs=1))
    return out, [a for c in train for a in ("--train", c)]


def test_the_regression_weights_clips_as_the_fold_drew_them() -> None:
    mod = benchmark_module("functionals_fusion")
    corpora = ["a"] * 6 + ["b"] * 2
    y = np.array([0, 0, 0, 0, 1, 1, 0, 2])
    pairs = list(zip(corpora, y, strict=True))

    def share(w: np.ndarray) -> dict:
        return {cell: w[[i for i, p in enumerate(pairs) if p == cell]].sum() for cell in set(pairs)}

    w = mod.training_weights({"corpus_balance": True}, corpora, y)
    assert w.mean() == pytest.approx(1.0)
    assert all(v == pytest.approx(2.0) for v in share(w).values())  # 8 clips / 4 cells
    w = mod.training_weights({"corpus_balance": True, "corpus_weights": {"A": 3.0}}, corpora, y)
    assert share(w)[("a", 0)] == pytest.approx(3.0) and share(w)[("b", 2)] == pytest.approx(1.0)
    w = mod.training_weights({"corpus_balance": False}, corpora, y)  # classes only
    assert share(w)[("a", 0)] + share(w)[("b", 0)] == pytest.approx(8 / 3)


def test_the_choice_is_made_on_validation_and_prefers_the_smaller_share() -> None:
    mod = benchmark_module("functionals_fusion")
    y = np.array([0, 1, 2, 0, 1, 2])
    p_cnn = np.eye(3)[[0, 1, 1, 0, 1, 1]].astype(float)  # class 2 never right
    good = np.eye(3)[[0, 1, 2, 0, 1, 2]].astype(float)
    C, w, s = mod.choose(y, p_cnn, {0.1: np.full((6, 3), 1 / 3), 1.0: good}, [0.0, 0.4, 0.6])
    assert (C, w) == (1.0, 0.6) and s == pytest.approx(100.0)
    # nothing to gain: the regression gets no share
    C, w, s = mod.choose(y, good, {0.1: good, 1.0: good}, [0.0, 0.3])
    assert (C, w) == (0.1, 0.0) and s == pytest.approx(100.0)


def test_a_loco_run_is_fused_fold_by_fold_and_resumed(
    loco_run, tmp_path: Path, monkeypatch
) -> None:
    mod = benchmark_module("functionals_fusion")
    run, train = loco_run
    out = tmp_path / "fusion.json"
    args = ["--run", str(run), *train, "--labels", LABELS, "--out", str(out), "--gains=20"]
    assert mod.main(args) == 0
    result = json.loads(out.read_text())
    assert result["command"].startswith("python benchmarks/functionals_fusion.py --run")
    assert result["protocol"] == "loco" and [f["fold"] for f in result["folds"]] == [1, 2]
    metrics = json.loads((run / "metrics.json").read_text())
    for fold in result["folds"]:
        assert fold["C"] in mod.DEFAULT_CS and fold["weight"] in mod.DEFAULT_WEIGHTS
        facts = json.loads((run / f"fold_{fold['fold']}" / "metrics.json").read_text())
        assert fold["validation_clips"] > 0 and fold["test_clips"] == facts["n_test"]
        # the weight 0 is a candidate: the fusion never does worse on validation than the CNN
        assert fold["validation_ua"]["fused"] >= fold["validation_ua"]["cnn"]
        (corpus,) = fold["test_corpora"]
        recorded = metrics["per_test_corpus"][corpus]["four_classes"]["ua"]
        assert fold["test"]["cnn"][corpus]["four_classes"] == pytest.approx(recorded, abs=0.01)
        for kept in fold["gains"][corpus]["+20"].values():
            assert 0.0 <= kept <= 100.0
    summary = result["summary"]
    assert set(summary["cnn"]["four_classes_by_corpus"]) == {"ravdess", "savee"}
    assert set(summary["labels_kept"]["+20"]) == {"cnn", "fused"}

    def never(*a, **k):
        raise AssertionError("a finished fold was measured again")

    monkeypatch.setattr(mod, "measure_fold", never)
    assert mod.main(args) == 0  # both folds already in --out


def test_clear_errors(loco_run, tmp_path: Path, capsys) -> None:
    mod = benchmark_module("functionals_fusion")
    run, train = loco_run
    out = ["--out", str(tmp_path / "x.json")]
    assert mod.main(["--run", str(run), *train, "--labels", "angry,sad", *out]) == 2
    assert "the run has ['angry', 'happy', 'neutral', 'sad']" in capsys.readouterr().err
    assert mod.main(["--run", str(tmp_path), *train, "--labels", LABELS, *out]) == 2
    assert "no run.json" in capsys.readouterr().err


def test_a_model_that_chose_on_one_corpus_is_fused_on_that_corpus_alone(
    loco_run, tmp_path: Path, capsys
) -> None:
    import shutil

    mod = benchmark_module("functionals_fusion")
    run, train = loco_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    facts = json.loads((copy / "fold_1" / "metrics.json").read_text())
    config_file = copy / "fold_1" / "model" / "config.json"
    config = json.loads(config_file.read_text())
    corpus_of = {"Actor": "ravdess", "savee": "savee", "tess": "tess"}
    val_corpora = {next(c for p, c in corpus_of.items() if s.startswith(p))
                   for s in facts["validation_speakers"]}  # fmt: skip
    missing = ({"savee", "tess"} - val_corpora).pop()
    config["training"]["val_corpus"] = missing
    config_file.write_text(json.dumps(config))
    out = ["--out", str(tmp_path / "x.json")]
    assert mod.main(["--run", str(copy), *train, "--labels", LABELS, *out]) == 2
    assert f"no validation speakers of {missing} to choose on" in capsys.readouterr().err
    present = sorted(val_corpora)[0]
    config["training"]["val_corpus"] = present.upper()  # names match in any case
    config_file.write_text(json.dumps(config))
    shutil.rmtree(copy / "fold_2")
    assert mod.main(["--run", str(copy), *train, "--labels", LABELS, *out]) == 0
    (fold,) = json.loads((tmp_path / "x.json").read_text())["folds"]
    assert fold["validation_corpus"] == present
    per_speaker = {"ravdess": 8, "savee": 4, "tess": 4}[present]
    assert fold["validation_clips"] == per_speaker * sum(
        corpus_of[next(p for p in corpus_of if s.startswith(p))] == present
        for s in facts["validation_speakers"]
    )


def test_the_regression_can_read_egemaps_beside_the_functionals(loco_run, tmp_path: Path) -> None:
    pytest.importorskip("opensmile")
    mod = benchmark_module("functionals_fusion")
    run, train = loco_run
    out = tmp_path / "views.json"
    args = ["--run", str(run), *train, "--labels", LABELS, "--views", "functionals,egemaps"]
    assert mod.main([*args, "--out", str(out), "--gains=20"]) == 0
    result = json.loads(out.read_text())
    assert result["views"] == ["functionals", "egemaps"]
    for fold in result["folds"]:
        assert fold["validation_ua"]["fused"] >= fold["validation_ua"]["cnn"]
    data = mod.Data.load(train[1::2], LABELS, None, LABELS.split(","), ["functionals", "egemaps"])
    assert data.x.shape[1] == len(mod.functional_columns()) + 88
    assert np.isfinite(data.x).all()


def test_an_unknown_view_is_refused(loco_run, tmp_path: Path, capsys) -> None:
    mod = benchmark_module("functionals_fusion")
    run, train = loco_run
    args = ["--run", str(run), *train, "--labels", LABELS, "--views", "functionals,mfcc"]
    assert mod.main([*args, "--out", str(tmp_path / "x.json")]) == 2
    assert "unknown view 'mfcc'; known: functionals, egemaps" in capsys.readouterr().err


def test_result_names_follow_the_views_and_name_the_committed_results() -> None:
    mod = benchmark_module("functionals_fusion")
    assert mod.result_name("loco-x", ["functionals"]) == "functionals_fusion_loco-x.json"
    both = mod.result_name("loco-x", ["functionals", "egemaps"])
    assert both == "functionals_fusion_functionals+egemaps_loco-x.json"
    # the rows loco_table.py draws from results/ are the files functionals_fusion.py wrote there
    table = benchmark_module("loco_table")
    for name, views, what in table.FUSIONS:
        stems = [f"loco{p}-{name}" for p in ("", "-pairs")]
        files = [table.RESULTS / mod.result_name(s, views.split(",")) for s in stems]
        assert any(f.is_file() for f in files), name
        assert f"`loco-{name}` + {views.replace(',', ' + ')}" in table.fusion_row(name, what, views)


def test_an_encoder_layer_is_a_view(tmp_path: Path) -> None:
    from tiny_whisper import make_tiny_whisper

    mod = benchmark_module("functionals_fusion")
    folder = str(make_tiny_whisper(tmp_path / "whisper"))
    feature = mod.view_feature("encoder-l1", folder)
    assert (feature.name, feature.layer, feature.pooling) == ("encoder-pooled", 1, "meanstd")
    with pytest.raises(ValueError, match="needs --encoder"):
        mod.view_feature("encoder-l1")
    with pytest.raises(ValueError, match="unknown view 'encoder-lx'"):
        mod.view_feature("encoder-lx", folder)
