"""``encoder-mlp`` (:mod:`emovox.models.mlp`): standardisation fitted in closed form, then a
hidden layer and the classifier trained by the gradient trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synth_manifest, toy_data
from tiny_whisper import make_tiny_whisper, train_on_tiny_whisper

from emovox.inference.predict import predict_logits
from emovox.inference.recognizer import Recognizer
from emovox.models import build_model
from emovox.models.mlp import EncoderMLP
from emovox.train.config import TrainConfig
from emovox.train.fitting import fit_arrays


def test_it_standardises_on_the_training_clips_then_learns() -> None:
    xs, y = toy_data(n_per_class=24, bins=6)
    xs = [x * 50.0 + 300.0 for x in xs]  # far from standardised: the buffers must fix it
    torch.manual_seed(0)
    model = EncoderMLP(3, (1, 6), hidden=16, dropout=0.1, input_dropout=0.0)
    config = TrainConfig.for_model(EncoderMLP)
    config = TrainConfig(**{**config.__dict__, "epochs": 20, "patience": 20, "batch_size": 8,
                            "lr": 1e-2})  # fmt: skip
    result = fit_arrays(model, xs[:36], y[:36], xs[36:], y[36:], config, progress=False)
    pooled = np.stack([x.mean(-1).ravel() for x in xs[:36]])
    assert np.allclose(model.mean.numpy(), pooled.mean(0), rtol=1e-4)
    assert np.allclose(model.scale.numpy(), pooled.std(0), rtol=1e-3)
    assert result.best_val_ua == pytest.approx(100.0)  # separable toy classes
    assert (predict_logits(model, xs).argmax(1) == y).mean() > 0.95  # whole clips, padded
    with torch.no_grad():
        emb = model.embed(torch.from_numpy(np.stack([x[..., :12] for x in xs])))
    assert emb.shape == (len(xs), 16)
    rebuilt = build_model("encoder-mlp", 3, (1, 6), **model.hparams)
    assert rebuilt.hparams == {"hidden": 16, "dropout": 0.1, "input_dropout": 0.0}
    for bad in ({"hidden": 0}, {"dropout": 1.0}, {"input_dropout": -0.1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            EncoderMLP(3, (1, 6), **bad)


def test_trained_on_a_whisper_folder_it_predicts_with_arousal_and_valence(
    synth_corpus: Path, tmp_path: Path
) -> None:
    encoder = make_tiny_whisper(tmp_path / "whisper")
    out = tmp_path / "whisper-mlp"
    train_on_tiny_whisper(
        synth_corpus, encoder, out, "encoder-mlp",
        "--feature-param", "layers=1,2", "--feature-param", "combine=mean",
        "--param", "hidden=8", "--train-param", "epochs=3", "--train-param", "dimensions=true",
    )  # fmt: skip
    assert "encoder-mlp" in (out / "config.json").read_text()
    rec = Recognizer.load(out)
    files = [u.path for u in synth_manifest(synth_corpus)][:4]
    preds = rec.predict_batch(files)
    assert all(p.ok and sum(p.probabilities.values()) == pytest.approx(1.0) for p in preds)
    assert all(p.arousal is not None and -1.0 <= p.arousal <= 1.0 for p in preds)
    again = Recognizer.load(out).predict_batch(files)
    assert [p.probabilities for p in again] == [p.probabilities for p in preds]
