"""Tests for emovox.inference.bundle (safetensors + JSON, never pickle) and
emovox.inference.recognizer."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SYNTH_EMOTIONS, copy_bundle, synth_manifest, write_tone
from safetensors.torch import load_file

from emovox.audio import AudioError, load_audio
from emovox.inference.bundle import BUNDLE_VERSION, BundleError, load_bundle, save_bundle
from emovox.inference.recognizer import Prediction, Recognizer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(synth_corpus: Path) -> list[str]:
    """Four files of the synthetic corpus (one per emotion, different speakers)."""
    manifest = synth_manifest(synth_corpus)
    picked = {}
    for u in manifest:
        picked.setdefault(u.label, u.path)
    return [picked[e] for e in SYNTH_EMOTIONS]


@pytest.fixture(scope="module")
def rec(trained_bundle: Path) -> Recognizer:
    return Recognizer.load(trained_bundle)


def assert_probabilities(pred: Prediction, labels: list[str]) -> None:
    assert pred.ok
    assert pred.error is None
    assert pred.label in labels
    assert list(pred.probabilities) == list(labels)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= p <= 1.0 for p in pred.probabilities.values())
    assert pred.label == max(pred.probabilities, key=pred.probabilities.get)


def test_declip_at_prediction_changes_only_clipped_recordings(
    trained_bundle: Path, files: list[str]
) -> None:
    plain = Recognizer.load(trained_bundle)
    fixed = Recognizer.load(trained_bundle, declip="sparse")
    assert fixed.feature.declip and fixed.feature.declip_method == "sparse"
    assert not plain.feature.declip  # the bundle itself is not changed
    clean = [load_audio(f) for f in files]
    loud = [np.clip(8 * w, -1, 1).astype(np.float32) for w in clean]
    names = [f"{i}.wav" for i in range(len(files))]

    def probs(rec: Recognizer, waves: list[np.ndarray]) -> np.ndarray:
        preds = rec.predict_waveforms(waves, names)
        return np.array([list(p.probabilities.values()) for p in preds])

    assert np.array_equal(probs(plain, clean), probs(fixed, clean))
    assert not np.allclose(probs(plain, loud), probs(fixed, loud))
    with pytest.raises(ValueError, match="declip method must be one of"):
        Recognizer.load(trained_bundle, declip="cubic")


def test_denoise_at_prediction_filters_noise_and_survives_a_label_subset(
    trained_bundle: Path, files: list[str]
) -> None:
    plain = Recognizer.load(trained_bundle)
    filtered = Recognizer.load(trained_bundle, denoise="wiener", declip="spline")
    assert filtered.feature.denoise == "wiener" and filtered.feature.declip
    assert not plain.feature.denoise and not plain.bundle.feature.denoise  # bundle unchanged
    rng = np.random.default_rng(0)
    clean = [load_audio(f) for f in files]
    noisy = [(w + rng.normal(0, 0.3 * w.std(), len(w))).astype(np.float32) for w in clean]
    names = [f"{i}.wav" for i in range(len(files))]

    def probs(rec: Recognizer, waves: list[np.ndarray]) -> np.ndarray:
        preds = rec.predict_waveforms(waves, names)
        return np.array([[p.probabilities[c] for c in rec.labels] for p in preds])

    # the filter changes what the model hears of a noisy clip
    assert not np.allclose(probs(plain, noisy), probs(filtered, noisy))
    # a subset of the labels (as the server makes per request) keeps the clean-up
    subset = filtered.restricted(filtered.labels[:2])
    assert subset.feature.denoise == "wiener" and subset.feature.declip
    assert Recognizer.load(trained_bundle, denoise="").feature.denoise == ""
    with pytest.raises(ValueError, match="denoise must be one of"):
        Recognizer.load(trained_bundle, denoise="spectral")


# -- bundles ----------------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_predictions(
    rec: Recognizer, files: list[str], tmp_path: Path
) -> None:
    out = save_bundle(tmp_path / "copy", rec.model, rec.feature, rec.labels, note={"x": 1})
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json"}
    again = Recognizer.load(out)
    assert again.labels == rec.labels
    assert again.feature == rec.feature
    assert again.config["note"] == {"x": 1}
    state, state_again = rec.model.state_dict(), again.model.state_dict()
    assert state.keys() == state_again.keys()
    assert all(torch.equal(state[k], state_again[k]) for k in state)
    assert not again.model.training
    for a, b in zip(rec.predict_batch(files), again.predict_batch(files), strict=True):
        assert a.label == b.label
        assert a.probabilities == b.probabilities


def test_a_bundle_holds_no_pickle(trained_bundle: Path, tmp_path: Path) -> None:
    out = copy_bundle(trained_bundle, tmp_path / "b")
    bundle = load_bundle(out)
    save_bundle(tmp_path / "fresh", bundle.model, bundle.feature, bundle.labels)
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    # The whole training output folder (bundle, curves, checkpoint) has no pickled object either.
    for path in [p for p in trained_bundle.rglob("*") if p.is_file()]:
        data = path.read_bytes()
        assert path.suffix in (".json", ".safetensors", ".csv", ".png"), path
        assert not data.startswith(b"\x80"), f"{path} looks like a pickle"
        assert not data.startswith(b"PK"), f"{path} looks like a torch.save zip"
        if path.suffix == ".json":
            json.loads(data)
        if path.suffix == ".safetensors":
            (n,) = struct.unpack("<Q", data[:8])
            header = json.loads(data[8 : 8 + n])
            assert all("dtype" in v for k, v in header.items() if k != "__metadata__")
    config = json.loads((trained_bundle / "config.json").read_text())
    assert config["format"] == "emovox-bundle"
    assert config["format_version"] == BUNDLE_VERSION
    assert config["labels"] == list(SYNTH_EMOTIONS)
    assert set(load_file(str(trained_bundle / "model.safetensors"))) == set(
        bundle.model.state_dict()
    )


def _edit_config(path: Path, fn) -> None:
    cfg = json.loads((path / "config.json").read_text())
    fn(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def _edit_feature(p: Path, **values) -> None:
    _edit_config(p, lambda c: c["feature"].update(values))


def _nan_weights(p: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(p / "model.safetensors"))
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first].clone().fill_(float("nan"))
    save_file(state, str(p / "model.safetensors"))


def _truncate(p: Path) -> None:
    data = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(data[: len(data) // 2])


def _garbage(p: Path) -> None:
    (p / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))


def _other_architecture(p: Path) -> None:
    _edit_config(p, lambda c: c["model"]["params"].update(channels=[4, 8, 8, 16]))


BROKEN = {
    "missing folder": (shutil.rmtree, ""),
    "missing config": (lambda p: (p / "config.json").unlink(), "config.json"),
    "missing weights": (lambda p: (p / "model.safetensors").unlink(), "model.safetensors"),
    "invalid JSON": (lambda p: (p / "config.json").write_text("{not json"), "config.json"),
    "empty config": (lambda p: (p / "config.json").write_text(""), "config.json"),
    "JSON list": (lambda p: (p / "config.json").write_text("[1, 2]"), "config.json"),
    "wrong format": (lambda p: _edit_config(p, lambda c: c.update(format="other")), "config.json"),
    "newer version": (
        lambda p: _edit_config(p, lambda c: c.update(format_version=BUNDLE_VERSION + 1)),
        "config.json",
    ),
    "unknown model": (
        lambda p: _edit_config(p, lambda c: c["model"].update(name="no-such-model")),
        "config.json",
    ),
    "no labels": (lambda p: _edit_config(p, lambda c: c.pop("labels")), "config.json"),
    "truncated weights": (_truncate, "model.safetensors"),
    "corrupt weights": (_garbage, "model.safetensors"),
    "other architecture": (_other_architecture, "model.safetensors"),
    # the corrupt configurations of issue 15: each a message naming config.json, no traceback
    "negative channels": (
        lambda p: _edit_config(p, lambda c: c["model"]["params"].update(channels=[-4, 8, 8, 8])),
        "config.json",
    ),
    "hop_length 0": (lambda p: _edit_feature(p, hop_length=0), "config.json"),
    "n_mels 0": (lambda p: _edit_feature(p, n_mels=0), "config.json"),
    "n_mels 80 against weights of 64": (lambda p: _edit_feature(p, n_mels=80), "config.json"),
    "sample_rate 0": (lambda p: _edit_feature(p, sample_rate=0), "config.json"),
    "sample_rate 16k": (lambda p: _edit_feature(p, sample_rate="16k"), "config.json"),
    "test_crops without crop_frames": (
        lambda p: _edit_config(
            p, lambda c: c.update(inference={"test_crops": 3, "crop_frames": 0})
        ),
        "config.json",
    ),
    "no format_version": (
        lambda p: _edit_config(p, lambda c: c.pop("format_version")),
        "config.json",
    ),
    "NaN weights": (_nan_weights, "model.safetensors"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_load_errors_name_the_file(case: str, trained_bundle: Path, tmp_path: Path) -> None:
    breaker, culprit = BROKEN[case]
    path = copy_bundle(trained_bundle, tmp_path / "model")
    breaker(path)
    with pytest.raises(BundleError) as info:
        load_bundle(path)
    assert str(path / culprit if culprit else path) in str(info.value)
    with pytest.raises(BundleError):
        Recognizer.load(path)


def test_bad_bundles_give_one_line_errors_in_the_cli(
    trained_bundle: Path, tmp_path: Path, files: list[str]
) -> None:
    from click.testing import CliRunner

    from emovox.apps.cli import main

    for case in ("n_mels 0", "sample_rate 16k", "no format_version", "NaN weights"):
        path = copy_bundle(trained_bundle, tmp_path / case.replace(" ", "_"))
        BROKEN[case][0](path)
        result = CliRunner().invoke(main, ["predict", "--model", str(path), files[0]])
        assert result.exit_code == 1, (case, result.output)
        assert "Traceback" not in result.output and str(path) in result.output, case
    path = copy_bundle(trained_bundle, tmp_path / "nofv")
    _edit_config(path, lambda c: c.pop("format_version"))
    with pytest.raises(BundleError, match="no format_version"):
        load_bundle(path)


def test_newer_format_version_asks_for_an_upgrade(trained_bundle: Path, tmp_path: Path) -> None:
    path = copy_bundle(trained_bundle, tmp_path / "model")
    _edit_config(path, lambda c: c.update(format_version=BUNDLE_VERSION + 1))
    with pytest.raises(BundleError, match="upgrade"):
        load_bundle(path)


# -- the recognizer -------------------------------------------------------------------------------


def test_predict_a_file(rec: Recognizer, files: list[str]) -> None:
    assert rec.labels == list(SYNTH_EMOTIONS)
    assert rec.sample_rate == 16000
    for f in files:
        pred = rec.predict(f)
        assert_probabilities(pred, rec.labels)
        assert pred.source == str(Path(f))
    assert rec.predict(Path(files[0])).probabilities == rec.predict(files[0]).probabilities


def test_predict_an_array_is_resampled(rec: Recognizer, files: list[str]) -> None:
    for f in files[:2]:
        from_file = rec.predict(f)
        at_44k = load_audio(f, sr=44100)
        pred = rec.predict(at_44k, sr=44100)
        assert_probabilities(pred, rec.labels)
        assert pred.source == "<array 0>"
        for c in rec.labels:
            assert pred.probabilities[c] == pytest.approx(from_file.probabilities[c], abs=0.02)
        # Tensors and integer PCM are accepted too.
        as_int16 = (np.clip(at_44k, -1, 1) * 32767).astype(np.int16)
        assert_probabilities(rec.predict(torch.from_numpy(at_44k), sr=44100), rec.labels)
        assert_probabilities(rec.predict(as_int16, sr=44100), rec.labels)
        # At the model's own rate an array is exactly the file.
        assert rec.predict(load_audio(f, sr=16000), sr=16000).probabilities == pytest.approx(
            from_file.probabilities, abs=1e-6
        )


def test_predict_an_array_needs_its_rate(rec: Recognizer, files: list[str]) -> None:
    audio = load_audio(files[0])
    with pytest.raises(AudioError, match="sample rate"):
        rec.predict(audio)
    with pytest.raises(AudioError):
        rec.predict(np.zeros(10, dtype=np.float32), sr=16000)  # too short


def test_predict_batch_reports_bad_inputs_and_keeps_the_good(
    rec: Recognizer, files: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.wav"
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    tone = write_tone(tmp_path / "tone.flac", seconds=1.0, sr=22050)
    preds = rec.predict_batch([files[0], missing, text, empty, tone])
    assert len(preds) == 5
    assert [p.source for p in preds] == [
        str(Path(x)) for x in (files[0], missing, text, empty, tone)
    ]
    good, p_missing, p_text, p_empty, p_tone = preds
    assert_probabilities(good, rec.labels)
    assert good.probabilities == pytest.approx(rec.predict(files[0]).probabilities, abs=1e-6)
    assert_probabilities(p_tone, rec.labels)
    for bad, words in ((p_missing, "no such file"), (p_text, "not a readable"), (p_empty, "empty")):
        assert not bad.ok
        assert bad.label is None
        assert bad.probabilities == {}
        assert words in bad.error
    assert json.loads(json.dumps([p.to_dict() for p in preds]))[1]["error"] == p_missing.error
    # Arrays and files mix; nothing readable at all is fine too.
    mixed = rec.predict_batch([load_audio(files[1]), files[1]], sr=16000)
    assert mixed[0].probabilities == pytest.approx(mixed[1].probabilities, abs=1e-6)
    assert [p.ok for p in rec.predict_batch([missing, empty])] == [False, False]
    assert rec.predict_batch([]) == []


def test_predict_proba(rec: Recognizer, files: list[str]) -> None:
    proba = rec.predict_proba(files)
    assert proba.shape == (len(files), len(rec.labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(AudioError):
        rec.predict_proba([files[0], "/no/such/file.wav"])


def test_label_subset_renormalises(trained_bundle: Path, rec: Recognizer, files: list[str]) -> None:
    sub = Recognizer.load(trained_bundle, labels=["sad", "happy"])
    assert sub.labels == ["sad", "happy"]
    for f in files:
        full = rec.predict(f).probabilities
        pred = sub.predict(f)
        assert_probabilities(pred, ["sad", "happy"])
        total = full["sad"] + full["happy"]
        assert pred.probabilities["sad"] == pytest.approx(full["sad"] / total, abs=1e-6)
        assert pred.probabilities["happy"] == pytest.approx(full["happy"] / total, abs=1e-6)
    assert sub.predict_proba(files).shape == (len(files), 2)


@pytest.mark.parametrize("labels", [["happy", "bored"], ["happy"], ["happy", "happy"]])
def test_bad_label_subsets_are_refused(trained_bundle: Path, labels: list[str]) -> None:
    with pytest.raises(ValueError):
        Recognizer.load(trained_bundle, labels=labels)
