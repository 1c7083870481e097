"""Training options of issue #3: weight EMA, auxiliary heads, multi-crop test-time averaging and
speaker-level feature normalisation (Trainer, pipeline, evaluation, Recognizer, ONNX, CLI)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import (
    SYNTH_EMOTIONS,
    TOY_TRAINING,
    full_and_resumed_after_ctrl_c,
    run_cli,
    synth_manifest,
    synth_scheme,
    tiny_cli,
    tiny_cnn,
    tiny_config,
    tiny_recipe,
    tone,
    toy_data,
)
from safetensors.torch import load_file
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from emovox.apps.cli import main
from emovox.data.manifest import Manifest, Utterance
from emovox.evaluate.runner import evaluate
from emovox.features import make_feature
from emovox.features.normalization import normalize_by_speaker, speaker_stats
from emovox.inference.bundle import load_bundle
from emovox.inference.predict import crop_windows, multi_crop_proba, predict_proba
from emovox.inference.recognizer import Recognizer
from emovox.models import build_model
from emovox.train.aux import aux_labels, known_ce
from emovox.train.config import TrainConfig
from emovox.train.dataset import Dataset, speaker_subset
from emovox.train.trainer import Trainer

HOP = 0.01
SR = 16000


# -- helpers ------------------------------------------------------------------------------------


def toy_config(**overrides) -> TrainConfig:
    """Every random path on (:data:`TOY_TRAINING`), 2 epochs at a constant rate."""
    return TrainConfig(**{**TOY_TRAINING, "epochs": 2, "schedule": "constant", **overrides})


def snapshot(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def strip_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def record_steps(model: nn.Module) -> tuple[list[dict], object]:
    """Snapshots of ``model`` after every optimiser step (before the EMA update)."""
    seen: list[dict] = []
    handle = register_optimizer_step_post_hook(
        lambda opt, args, kwargs: seen.append(snapshot(model))
    )
    return seen, handle


def steps_of_plain_training(model: nn.Module, xs, ys) -> list[dict]:
    """Train ``model`` with :func:`toy_config` (no EMA); its weights after every step."""
    raws, handle = record_steps(model)
    try:
        Trainer(model, toy_config(), HOP, progress=False).fit(xs, ys)
    finally:
        handle.remove()
    return raws


# -- weight EMA -------------------------------------------------------------------------------


def test_ema_equals_a_hand_computed_average_and_is_what_validation_sees(monkeypatch) -> None:
    xs, ys = toy_data()  # 16 items in batches of 8: 2 steps per epoch
    vx, vy = toy_data(n_per_class=3, seed=1)
    decay = 0.2  # the warm-up (1 + n) / (10 + n) wins for the first two steps, then the decay
    model = tiny_cnn()
    init = snapshot(model)
    validated: list[dict] = []
    script = iter([0.6, 0.4])

    def scripted(self, xs_, ys_, loss_fn, groups=None):
        validated.append(snapshot(self.model))
        return 1.0, next(script), {}

    monkeypatch.setattr(Trainer, "validation_scores", scripted)
    raws, handle = record_steps(model)
    try:
        result = Trainer(model, toy_config(ema=decay), HOP, progress=False).fit(xs, ys, vx, vy)
    finally:
        handle.remove()
    assert len(raws) == 4 and len(validated) == 2
    params = {n for n, _ in model.named_parameters()}
    ref = {k: init[k].double() for k in params}
    averages = []
    for n, raw in enumerate(raws):
        d = min(decay, (1 + n) / (10 + n))
        ref = {k: d * ref[k] + (1 - d) * raw[k].double() for k in params}
        averages.append(dict(ref))
    for epoch, seen in enumerate(validated, 1):
        avg, raw = averages[2 * epoch - 1], raws[2 * epoch - 1]
        for k in params:
            assert torch.allclose(seen[k].double(), avg[k], atol=1e-6), k
        for k in set(seen) - params:  # buffers (batch-norm statistics) are copied
            assert torch.equal(seen[k], raw[k]), k
        assert not all(torch.allclose(seen[k], raw[k]) for k in params)  # not the raw weights
    assert result.best_epoch == 1
    assert same_state(model.state_dict(), validated[0])  # the best average is the final model

    # The average never feeds back into training: the raw steps are those of a run without EMA.
    model2 = tiny_cnn()
    raws2 = steps_of_plain_training(model2, xs, ys)
    assert all(same_state(a, b) for a, b in zip(raws, raws2, strict=True))


def test_ema_off_keeps_the_raw_weights() -> None:
    xs, ys = toy_data()
    model = tiny_cnn()
    raws = steps_of_plain_training(model, xs, ys)
    assert same_state(model.state_dict(), raws[-1])


# -- auxiliary heads ---------------------------------------------------------------------------


def gender_targets(n: int, unknown_every: int = 3) -> np.ndarray:
    return np.array([-1 if i % unknown_every == 0 else i % 2 for i in range(n)])


def testknown_ce_ignores_unknown_targets() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 2, generator=gen, requires_grad=True)
    target = torch.tensor([-1, 0, 1, -1, 1])
    keep = target >= 0
    expected = nn.functional.cross_entropy(logits[keep], target[keep])
    assert torch.allclose(known_ce(logits, target), expected)
    none = known_ce(logits, torch.full((5,), -1))
    assert float(none.detach()) == 0.0
    none.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_aux_loss_ignores_unknown_targets_and_learns_known_ones() -> None:
    xs, ys = toy_data()
    config = toy_config(aux_targets=["gender"])
    assert config.aux_targets == ("gender",)

    def fit(cfg: TrainConfig, aux):
        model = tiny_cnn()
        trainer = Trainer(model, cfg, HOP, progress=False)
        result = trainer.fit(xs, ys, aux_y=aux)
        return model, result

    plain, _ = fit(toy_config(), None)
    unknown, r_unknown = fit(config, {"gender": np.full(len(xs), -1)})
    # No known target: the heads add nothing to the model's gradients (nor to its random state).
    assert same_state(plain.state_dict(), unknown.state_dict())
    assert [h["aux_loss"] for h in r_unknown.history] == [0.0, 0.0]
    known, r_known = fit(config, {"gender": gender_targets(len(xs))})
    assert not same_state(plain.state_dict(), known.state_dict())
    assert all(h["aux_loss"] > 0 for h in r_known.history)


def test_aux_targets_are_checked() -> None:
    xs, ys = toy_data()
    trainer = Trainer(tiny_cnn(), toy_config(aux_targets=("gender",)), HOP, progress=False)
    with pytest.raises(ValueError, match="aux_y"):
        trainer.fit(xs, ys)
    with pytest.raises(ValueError, match="entries"):
        trainer.fit(xs, ys, aux_y={"gender": [0, 1]})
    with pytest.raises(ValueError, match="outside"):
        trainer.fit(xs, ys, aux_y={"gender": np.full(len(xs), 2)})
    with pytest.raises(ValueError, match="aux_targets"):
        TrainConfig(aux_targets=("age",))
    no_embed = build_model("tutorial-cnn1d", 2, (1, 8), length=16)
    with pytest.raises(ValueError, match="embed"):
        Trainer(no_embed, toy_config(aux_targets=("gender",)), HOP)


def test_aux_labels_come_from_the_manifest() -> None:
    rows = [
        Utterance("a.wav", "happy", "s1", "female", "ravdess", {"intensity": "strong"}),
        Utterance("b.wav", "sad", "s2", "male", "ravdess", {"intensity": "normal"}),
        Utterance("c.wav", "sad", "s3", "", "emodb", {}),
    ]
    got = aux_labels(rows, ("gender", "intensity"))
    assert got["gender"].tolist() == [0, 1, -1]
    assert got["intensity"].tolist() == [1, 0, -1]


def run_aux_ema(config: TrainConfig, ckpt: Path, resume: bool = False, seed: int = 0):
    xs, ys = toy_data()
    vx, vy = toy_data(n_per_class=3, seed=1)
    model = tiny_cnn(seed)
    trainer = Trainer(model, config, HOP, ckpt, progress=False)
    aux = {"gender": gender_targets(len(xs))}
    return model, trainer.fit(xs, ys, vx, vy, resume=resume, aux_y=aux), trainer


def test_resume_with_ema_and_aux_heads_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    opts = {"ema": 0.5, "aux_targets": ("gender",), "epochs": 4}
    full, r_full, t_full = run_aux_ema(toy_config(**opts), tmp_path / "full")
    run_aux_ema(toy_config(**{**opts, "epochs": 2}), tmp_path / "split")
    # Fresh weights: the model, the average and the heads must all come from the checkpoint.
    resumed, r_resumed, t_resumed = run_aux_ema(
        toy_config(**opts), tmp_path / "split", resume=True, seed=9
    )
    assert same_state(full.state_dict(), resumed.state_dict())
    assert strip_seconds(r_full.history) == strip_seconds(r_resumed.history)
    assert same_state(t_full.aux_heads.state_dict(), t_resumed.aux_heads.state_dict())
    last_full = load_file(str(tmp_path / "full" / "last.safetensors"))
    last_resumed = load_file(str(tmp_path / "split" / "last.safetensors"))
    assert any(k.startswith("ema.") for k in last_full)
    assert "aux.gender.weight" in last_full
    assert same_state(last_full, last_resumed)
    best = load_file(str(tmp_path / "full" / "best.safetensors"))
    assert set(best) == set(full.state_dict())  # the best checkpoint holds the model only


def test_resume_after_ctrl_c_with_ema_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch
) -> None:
    config = toy_config(ema=0.7, aux_targets=("gender",), epochs=4, schedule="onecycle")
    (full, r_full, _), (resumed, r_resumed, _) = full_and_resumed_after_ctrl_c(
        run_aux_ema, config, tmp_path, monkeypatch
    )
    assert same_state(full.state_dict(), resumed.state_dict())
    assert strip_seconds(r_full.history) == strip_seconds(r_resumed.history)


def test_resuming_without_the_average_is_refused(tmp_path: Path) -> None:
    run_aux_ema(toy_config(aux_targets=("gender",)), tmp_path / "ckpt")
    with pytest.raises(ValueError, match="ema"):
        run_aux_ema(toy_config(aux_targets=("gender",), ema=0.9), tmp_path / "ckpt", resume=True)


# -- multi-crop test-time averaging -------------------------------------------------------------


@pytest.mark.parametrize("n_frames", [150, 151, 400, 1000])
def test_crop_windows_are_evenly_spaced_and_cover_the_utterance(n_frames: int) -> None:
    wins = crop_windows(n_frames, 150, 5)
    expected = min(5, n_frames - 150 + 1) if n_frames > 150 else 1
    assert len(wins) == expected
    assert wins[0][0] == 0 and wins[-1][1] == n_frames
    assert all(end - start == 150 for start, end in wins)
    starts = [s for s, _ in wins]
    assert starts == sorted(set(starts))
    if len(starts) > 2:
        gaps = np.diff(starts)
        assert gaps.max() - gaps.min() <= 1


def test_short_utterances_use_one_full_window() -> None:
    assert crop_windows(80, 150, 5) == [(0, 80)]
    assert crop_windows(400, 150, 1) == [(0, 400)]
    assert crop_windows(400, None, 5) == [(0, 400)]


def test_multi_crop_proba_averages_over_the_windows() -> None:
    xs = [np.arange(t, dtype=np.float32)[None, None, :] for t in (40, 100, 7)]

    def proba_fn(items):  # "probability" of class 0: the window's first frame value / 100
        first = np.array([x[0, 0, 0] / 100 for x in items])
        return np.stack([first, 1 - first], axis=1)

    got = multi_crop_proba(proba_fn, xs, 3, 20)
    for x, row in zip(xs, got, strict=True):
        starts = [s for s, _ in crop_windows(x.shape[-1], 20, 3)]
        assert row[0] == pytest.approx(np.mean(starts) / 100)
    assert got[2][0] == 0.0  # short: one window from frame 0


def test_predict_proba_with_crops_differs_from_the_full_utterance() -> None:
    model = tiny_cnn().eval()
    xs, _ = toy_data()
    full = predict_proba(model, xs)
    crops = predict_proba(model, xs, test_crops=3, crop=10)
    assert crops.shape == full.shape
    assert np.allclose(crops.sum(1), 1.0, atol=1e-5)
    assert not np.allclose(crops, full)
    assert np.allclose(predict_proba(model, xs, test_crops=3, crop=100), full, atol=1e-6)


def test_validation_uses_the_crops() -> None:
    xs, ys = toy_data()
    config = toy_config(test_crops=3, crop_seconds=0.1)
    trainer = Trainer(tiny_cnn().eval(), config, HOP, progress=False)
    loss, _ = trainer.evaluate(xs, ys, nn.CrossEntropyLoss())
    proba = predict_proba(trainer.model, xs, test_crops=3, crop=10)
    expected = nn.functional.nll_loss(torch.log(torch.from_numpy(proba)), torch.from_numpy(ys))
    assert loss == pytest.approx(float(expected), rel=1e-4)
    with pytest.raises(ValueError, match="crop_seconds"):
        TrainConfig(test_crops=3, crop_seconds=None)


# -- speaker normalisation -----------------------------------------------------------------------


def test_speaker_stats_are_per_bin_over_all_frames() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(3.0, 2.0, (2, 5, 30)).astype(np.float32)
    b = rng.normal(1.0, 0.5, (2, 5, 12)).astype(np.float32)
    stats = speaker_stats([a, b])
    frames = np.concatenate([a, b], axis=-1).astype(np.float64)
    assert stats.mean.shape == (2, 5, 1)
    assert np.allclose(stats.mean[..., 0], frames.mean(-1))
    assert np.allclose(stats.std[..., 0], frames.std(-1))
    assert stats.n_frames == 42 and stats.n_utterances == 2
    out = normalize_by_speaker([a, (b, b * 2)], ["s", "s"])
    joint = np.concatenate([out[0], out[1][0]], axis=-1)
    assert np.allclose(joint.mean(-1), 0.0, atol=1e-5)
    assert np.allclose(joint.std(-1), 1.0, atol=1e-4)
    assert np.allclose(out[1][1], stats.apply(b * 2))  # variants: the original's statistics
    with pytest.raises(ValueError, match="speakers"):
        normalize_by_speaker([a], ["s", "t"])
    with pytest.raises(ValueError, match="shape"):
        stats.apply(np.zeros((1, 5, 3)))


def test_speaker_norm_is_gain_invariant() -> None:
    """A gain on all of a speaker's recordings changes nothing (log-mel without its own
    per-utterance normalisation, so only the speaker statistics remove the gain)."""
    feature = make_feature("logmel", n_mels=32, normalize="none", amin=1e-20)
    rng = np.random.default_rng(0)
    waves = []
    for i, seconds in enumerate((0.6, 0.9, 1.2)):
        x = tone(seconds, SR, freq=150.0 + 90 * i) * np.hanning(round(seconds * SR))
        waves.append((x + 0.02 * rng.standard_normal(x.size)).astype(np.float32))
    loud = feature(waves)
    quiet = feature([0.1 * w for w in waves])
    assert not np.allclose(loud[0], quiet[0], atol=1e-2)  # the features themselves move
    a = normalize_by_speaker(loud, ["s"] * 3)
    b = normalize_by_speaker(quiet, ["s"] * 3)
    for x, y in zip(a, b, strict=True):
        assert np.allclose(x, y, atol=1e-3)


def fake_dataset(speakers: list[str], seed: int = 0) -> Dataset:
    """Random features whose level depends on the speaker."""
    rng = np.random.default_rng(seed)
    offsets = {s: 10.0 * k for k, s in enumerate(sorted(set(speakers)))}
    rows = [Utterance(f"{i}.wav", "happy", s, "", "x") for i, s in enumerate(speakers)]
    feats = [(rng.standard_normal((1, 4, 20)) + offsets[s]).astype(np.float32) for s in speakers]
    return Dataset(Manifest(rows), feats, np.zeros(len(rows), dtype=int), ["happy"], None, {})


def test_subset_statistics_never_come_from_other_subsets() -> None:
    data = fake_dataset(["a", "a", "a", "b", "b", "a", "b"])
    config = TrainConfig(speaker_norm=True)
    test = [3, 4, 5, 6]  # "a" is on both sides, as in a random (speaker-leaking) split
    items, _ = speaker_subset(data, test, config)
    for spk in ("a", "b"):
        own = [items[k] for k, i in enumerate(test) if data.manifest[i].speaker == spk]
        joint = np.concatenate(own, axis=-1)
        assert np.allclose(joint.mean(-1), 0.0, atol=1e-5)  # from the test utterances only
    # Changing the other subset's features changes nothing in this one.
    for i in (0, 1, 2):
        data.features[i] = data.features[i] * 5 + 3
    again, _ = speaker_subset(data, test, config)
    assert all(np.array_equal(x, y) for x, y in zip(items, again, strict=True))
    plain, _ = speaker_subset(data, test, TrainConfig())
    assert all(np.array_equal(x, data.features[i]) for x, i in zip(plain, test, strict=True))


def test_evaluate_normalises_each_side_with_its_own_speakers(
    synth_corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    import emovox.train.dataset as pipeline

    calls: list[set[str]] = []
    original = pipeline.normalize_by_speaker

    def spy(items, speakers):
        calls.append(set(speakers))
        return original(items, speakers)

    monkeypatch.setattr(pipeline, "normalize_by_speaker", spy)
    config = tiny_config(
        epochs=1, speaker_norm=True, test_crops=3, ema=0.9, aux_targets=("gender",)
    )
    metrics = evaluate(
        synth_manifest(synth_corpus),
        synth_scheme(),
        tiny_recipe(config),
        tmp_path / "eval",
        protocol="speakers-kfold",
        k=2,
        progress=False,
    )
    assert metrics["training"]["speaker_norm"] is True
    assert metrics["training"]["test_crops"] == 3
    folds = metrics["folds"]
    # training, validation, the test set per utterance (each its own group), speaker-adapted,
    # and speaker-adapted on the one-emotion-per-speaker test
    assert len(calls) == 5 * len(folds)
    for f, fold in enumerate(folds):
        train_call, val_call, alone_call, test_call, one_call = calls[5 * f : 5 * f + 5]
        assert val_call == set(fold["validation_speakers"])
        assert len(alone_call) == fold["n_test"] and all(g.startswith("#") for g in alone_call)
        assert test_call == set(fold["test_speakers"]) == one_call
        assert not train_call & (val_call | test_call)
        adapted = fold["speaker_adapted"]
        assert set(adapted) == {"ua", "wa", "macro_f1", "guarded", "one_emotion_per_speaker"}
        one = adapted["one_emotion_per_speaker"]
        assert one["speakers"] == len(fold["test_speakers"]) and one["n"] > 0
        assert set(one) == {"n", "speakers", "per_utterance", "adapted", "guarded"}
    assert metrics["speaker_adapted"]["folds"] == len(folds)
    assert set(metrics["speaker_adapted"]["one_emotion_per_speaker"]) >= {"guarded", "n"}
    assert metrics["scoring"].startswith("per-utterance")


# -- bundles, the Recognizer, ONNX and the CLI ---------------------------------------------------


@pytest.fixture(scope="module")
def options_bundle(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cnn trained by ``emovox train`` with all four options on."""
    out = tmp_path_factory.mktemp("options") / "model"
    options = ["ema=0.999", "aux_targets=gender,intensity", "test_crops=5", "speaker_norm=true"]
    options.append("crop_seconds=0.5")
    run_cli(
        tiny_cli(
            "train",
            ["--data", synth_corpus, "--labels", ",".join(SYNTH_EMOTIONS)],
            out,
            *[a for o in options for a in ("--train-param", o)],
        )
    )
    return out


def test_the_cli_records_the_options(options_bundle: Path) -> None:
    cfg = json.loads((options_bundle / "config.json").read_text())
    training = cfg["training"]
    assert training["ema"] == 0.999
    assert training["aux_targets"] == ["gender", "intensity"]
    assert training["test_crops"] == 5
    assert training["speaker_norm"] is True
    assert cfg["inference"] == {"test_crops": 5, "crop_frames": 50, "speaker_norm": True}


def test_aux_heads_are_in_the_checkpoint_but_not_in_the_bundle(options_bundle: Path) -> None:
    weights = load_file(str(options_bundle / "model.safetensors"))
    assert not any(k.startswith("aux") for k in weights)
    bundle = load_bundle(options_bundle)  # strict: exactly the emotion model's weights
    assert set(weights) == set(bundle.model.state_dict())
    last = load_file(str(options_bundle / "checkpoint" / "last.safetensors"))
    assert {"aux.gender.weight", "aux.intensity.weight"} <= set(last)
    assert last["aux.gender.weight"].shape[0] == 2
    assert any(k.startswith("ema.") for k in last)


def long_waves() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    out = []
    for i, seconds in enumerate((0.3, 1.1, 2.4, 3.0)):
        x = tone(seconds, SR, freq=170.0 + 80 * i) * np.hanning(round(seconds * SR))
        out.append((x + 0.01 * rng.standard_normal(x.size)).astype(np.float32))
    return out


def proba(preds, labels) -> np.ndarray:
    return np.array([[p.probabilities[c] for c in labels] for p in preds])


def test_recognizer_averages_the_bundle_crops(options_bundle: Path) -> None:
    rec = Recognizer.load(options_bundle, guard=None)  # adapted fully (the guard: elsewhere)
    assert (rec.test_crops, rec.crop_frames, rec.speaker_norm) == (5, 50, True)
    waves = long_waves()
    stats = rec.speaker_stats(waves, sr=SR)
    got = proba(rec.predict_batch(waves, sr=SR, speaker_stats=stats), rec.labels)
    feats = [stats.apply(f) for f in rec.feature(waves)]
    expected = predict_proba(rec.model, feats, test_crops=5, crop=50)
    assert np.allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, predict_proba(rec.model, feats), atol=1e-4)


def test_onnx_backend_uses_the_same_crops(options_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from emovox.inference.onnx_backend import export_onnx, read_metadata

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.safetensors", "config.json"):
        shutil.copy2(options_bundle / name, folder / name)
    path = export_onnx(folder)
    assert json.loads(read_metadata(path)["inference"])["test_crops"] == 5
    torch_rec = Recognizer.load(folder)
    onnx_rec = Recognizer.load(folder, backend="onnx")
    waves = long_waves()
    a = proba(torch_rec.predict_batch(waves, sr=SR, speaker_stats="batch"), torch_rec.labels)
    b = proba(onnx_rec.predict_batch(waves, sr=SR, speaker_stats="batch"), onnx_rec.labels)
    assert np.allclose(a, b, atol=1e-4)


def test_speaker_norm_bundle_without_stats_uses_each_utterance(
    options_bundle: Path, caplog
) -> None:
    rec = Recognizer.load(options_bundle, guard=None)  # statistics used fully
    waves = long_waves()
    with caplog.at_level(logging.WARNING, logger="emovox.inference.recognizer"):
        alone = proba(rec.predict_batch(waves[2:3], sr=SR), rec.labels)
        together = proba(rec.predict_batch(waves, sr=SR), rec.labels)
    assert sum("speaker_stats" in r.getMessage() for r in caplog.records) == 1  # once
    assert np.allclose(alone[0], together[2], atol=1e-6)  # independent of the other files
    own = rec.speaker_stats(waves[2:3], sr=SR)
    explicit = proba(rec.predict_batch(waves[2:3], sr=SR, speaker_stats=own), rec.labels)
    assert np.allclose(alone, explicit, atol=1e-6)
    batch = proba(rec.predict_batch(waves, sr=SR, speaker_stats="batch"), rec.labels)
    given = rec.speaker_stats(waves, sr=SR)
    assert np.allclose(
        batch, proba(rec.predict_batch(waves, sr=SR, speaker_stats=given), rec.labels)
    )
    assert not np.allclose(batch, together, atol=1e-4)
    with pytest.raises(ValueError, match="batch"):
        rec.predict_batch(waves, sr=SR, speaker_stats="speaker")


def test_bad_cli_option_values_are_usage_errors(synth_corpus: Path, tmp_path: Path) -> None:
    for bad in ("ema=1.5", "aux_targets=age", "test_crops=0", "speaker_norm=maybe"):
        result = CliRunner().invoke(
            main,
            [
                "train",
                "--data",
                str(synth_corpus),
                "--labels",
                ",".join(SYNTH_EMOTIONS),
                "--train-param",
                bad,
                "--out",
                str(tmp_path / "m"),
                "--quiet",
                "--no-cache",
            ],
        )
        assert result.exit_code == 2, (bad, result.output)
        assert not (tmp_path / "m").exists()


def test_cli_one_speaker_uses_the_speaker_statistics_of_the_files(
    options_bundle: Path, synth_corpus: Path
) -> None:
    files = sorted(str(p) for p in (synth_corpus / "Actor_01").glob("*.wav"))[:4]
    full = Recognizer.load(options_bundle, guard=None)
    expected = proba(full.predict_batch(files, speaker_stats="batch"), full.labels)
    alone = proba(full.predict_batch(files), full.labels)
    assert not np.allclose(expected, alone, atol=1e-4)
    args = ["predict", "--model", str(options_bundle), "--format", "json", *files]

    def cli(*extra: str) -> np.ndarray:
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        return np.array([[r["probabilities"][c] for c in full.labels] for r in rows])

    np.testing.assert_allclose(cli("--one-speaker", "--full-adaptation"), expected, atol=1e-5)
    guarded = Recognizer.load(options_bundle)  # the default: the guard's blend
    want = proba(guarded.predict_batch(files, speaker_stats="batch"), full.labels)
    np.testing.assert_allclose(cli("--one-speaker"), want, atol=1e-5)
    lone = CliRunner().invoke(main, [*args, "--full-adaptation"])
    assert lone.exit_code == 2 and "--one-speaker" in lone.output
    segments = CliRunner().invoke(main, [*args, "--one-speaker", "--segments"])
    assert segments.exit_code == 0, segments.output  # each file's segments: one speaker
