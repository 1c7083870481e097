"""Fused models (:mod:`emovox.inference.fusion`, ``emovox fuse``): a tiny CNN on the log-mel and
an SVM on a tiny random Whisper encoder, averaged, used as one model everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SYNTH_EMOTIONS, run_cli, synth_manifest
from tiny_whisper import make_tiny_whisper, train_on_tiny_whisper

from emovox.apps.cli import main
from emovox.inference.bundle import BundleError
from emovox.inference.fusion import FUSION_FILE, fuse_scores, label_orders, read_fusion, save_fusion
from emovox.inference.recognizer import FusedRecognizer, Recognizer

pytestmark = pytest.mark.slow
LABELS = ",".join(SYNTH_EMOTIONS)


@pytest.fixture(scope="module")
def whisper_svm(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``encoder-svm`` on layer 1 of a tiny random Whisper, trained on the synthetic corpus."""
    root = tmp_path_factory.mktemp("fusion")
    encoder = make_tiny_whisper(root / "whisper")
    out = root / "whisper-svm"
    return train_on_tiny_whisper(
        synth_corpus, encoder, out, "encoder-svm", "--feature-param", "layer=1"
    )


@pytest.fixture(scope="module")
def fused(trained_bundle: Path, whisper_svm: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("fused") / "cnn+whisper"
    return save_fusion(folder, [trained_bundle, whisper_svm], [3.0, 1.0], ["cnn", "whisper-svm"])


@pytest.fixture(scope="module")
def files(synth_corpus: Path) -> list[str]:
    return [u.path for u in synth_manifest(synth_corpus)][:8]


def test_the_fusion_is_the_weighted_mean_of_its_members(
    fused: Path, trained_bundle: Path, whisper_svm: Path, files: list[str]
) -> None:
    rec = Recognizer.load(fused)
    assert isinstance(rec, FusedRecognizer)
    assert rec.weights == pytest.approx([0.75, 0.25])
    assert sorted(rec.labels) == sorted(SYNTH_EMOTIONS)
    cnn, svm = (Recognizer.load(p, guard=None) for p in (trained_bundle, whisper_svm))
    got = rec.predict_batch(files)
    for g, a, b in zip(got, cnn.predict_batch(files), svm.predict_batch(files), strict=True):
        want = {c: 0.75 * a.probabilities[c] + 0.25 * b.probabilities[c] for c in rec.labels}
        assert g.probabilities == pytest.approx(want, abs=1e-5)
        assert g.label == max(want, key=want.get)
    assert rec.predict_proba(files[:2]).shape == (2, 4)
    assert rec.config["model"]["name"] == "fusion"


def test_one_file_is_read_once_and_each_member_gets_its_own_features(
    fused: Path, files: list[str]
) -> None:
    rec = Recognizer.load(fused)
    item = rec.feature.extract(rec.feature.load(files[0]))
    cnn, svm = item
    assert cnn.ndim == 3 and svm.shape == (1, 32, 1)  # log-mel frames; Whisper's pooled layer
    pred = rec.predict_features([item], ["x"])[0]
    assert pred.probabilities == pytest.approx(rec.predict(files[0]).probabilities, abs=1e-6)


def test_labels_adaptation_and_long_audio_work_as_for_one_model(
    fused: Path, files: list[str]
) -> None:
    rec = Recognizer.load(fused, labels=["angry", "sad"])
    pred = rec.predict(files[0])
    assert set(pred.probabilities) == {"angry", "sad"}
    assert sum(pred.probabilities.values()) == pytest.approx(1.0)
    full = Recognizer.load(fused)
    assert full.restricted(["angry", "sad"]).labels == ["angry", "sad"]
    adapted = full.predict_batch(files, speaker_stats="batch")
    assert all(p.ok for p in adapted)
    stats = full.speaker_stats(files)
    assert stats.n_utterances == len(files) and stats.mean_proba.shape == (4,)
    waves = [full.feature.load(f) for f in files[:4]]
    gap = np.zeros(full.sample_rate // 2, dtype=np.float32)
    long = np.concatenate([x for w in waves for x in (w, gap)])
    segments = full.predict_segments(long, sr=full.sample_rate, vad="energy")
    assert segments and all(set(s["probabilities"]) == set(full.labels) for s in segments)


def test_clean_up_at_prediction_reaches_every_member(fused: Path) -> None:
    rec = Recognizer.load(fused, declip="sparse", denoise="wiener")
    for member in rec.members:
        assert member.feature.denoise == "wiener"
        assert member.feature.declip and member.feature.declip_method == "sparse"
    assert all(not m.feature.denoise for m in Recognizer.load(fused).members)


def test_continuous_scores_are_averaged_over_the_members_that_give_them() -> None:
    a = np.array([[0.2, 0.8, 0.5]])  # classes x, y; then arousal 0.5
    b = np.array([[0.6, 0.4]])  # classes y, x: no dimensions
    orders = label_orders([["x", "y"], ["y", "x"]])
    out = fuse_scores([a, b], [0.5, 0.5], orders, 2, [["arousal"], []], ["arousal"])
    np.testing.assert_allclose(out, [[0.3, 0.7, 0.5]], atol=1e-6)
    with pytest.raises(ValueError, match="same classes"):
        label_orders([["x", "y"], ["x", "z"]])


def test_broken_fusion_files_are_named(tmp_path: Path) -> None:
    def write(spec) -> Path:
        (tmp_path / FUSION_FILE).write_text(spec if isinstance(spec, str) else json.dumps(spec))
        return tmp_path

    for spec, match in (
        ("{", "cannot be read as JSON"),
        ({"format": 2, "members": []}, "not a fusion of format 1"),
        ({"format": 1, "members": [{"path": "a"}]}, "at least two"),
        ({"format": 1, "members": [{"path": "a"}, {"path": "b", "weight": 0}]}, "weight 0"),
        ({"format": 1, "members": [{"path": "a"}, {"path": "../b"}]}, "inside the fusion"),
    ):
        with pytest.raises(BundleError, match=match):
            read_fusion(write(spec))
    write({"format": 1, "members": [{"path": "a"}, {"path": "b"}]})
    with pytest.raises(BundleError, match="no such model folder"):
        Recognizer.load(tmp_path)
    with pytest.raises(BundleError, match="fused model"):
        Recognizer.load(tmp_path, backend="onnx")


def test_fuse_command(
    trained_bundle: Path, whisper_svm: Path, files: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "both"
    result = run_cli(["fuse", trained_bundle, whisper_svm, "-w", "2", "-w", "1", "-o", out])
    assert "shares model 0.67, whisper-svm 0.33" in result.output
    assert (out / FUSION_FILE).is_file() and (out / "whisper-svm" / "config.json").is_file()
    runner = CliRunner()
    again = runner.invoke(main, ["fuse", str(trained_bundle), str(whisper_svm), "-o", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    odd = runner.invoke(main, ["fuse", str(trained_bundle), str(whisper_svm), "-w", "1", "-o", "x"])
    assert odd.exit_code == 2 and "one --weight per model" in odd.output
    missing = runner.invoke(main, ["fuse", "default", str(tmp_path / "nope"), "-o", "y"])
    assert missing.exit_code == 1 and "nope: no such model folder" in missing.output
    shipped = runner.invoke(main, ["fuse", "default", str(whisper_svm), "-o", str(tmp_path / "z")])
    assert shipped.exit_code == 1 and "same classes" in shipped.output  # found by name: 7 vs 4
    exported = runner.invoke(main, ["export", str(out), "-o", str(tmp_path / "m.onnx")])
    assert exported.exit_code == 1 and "is a fused model" in exported.output
    predicted = run_cli(["predict", files[0], "--model", out])
    assert any(c in predicted.output for c in SYNTH_EMOTIONS)


def test_members_must_answer_the_same_classes(
    trained_bundle: Path, synth_corpus: Path, tmp_path: Path
) -> None:
    other = tmp_path / "two-classes"
    run_cli([
        "train", "--train", f"ravdess:{synth_corpus}", "--labels", "angry,sad",
        "--arch", "encoder-svm", "--feature-param",
        f"path={make_tiny_whisper(tmp_path / 'w')}", "--out", other, "--quiet", "--no-cache",
    ])  # fmt: skip
    result = CliRunner().invoke(
        main, ["fuse", str(trained_bundle), str(other), "-o", str(tmp_path / "f")]
    )
    assert result.exit_code == 1 and "same classes" in result.output
    assert not (tmp_path / "f").exists()  # checked before anything is written
