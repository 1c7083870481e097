"""silero-vad with its encoder batched over the chunks of a block: silero's own probabilities
(its state carried through the stream), whatever the blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.segmentation import silero as sil

pytestmark = pytest.mark.skipif(not sil.silero_available(), reason="silero-vad is not installed")

SR = 16000


def recording(seed: int = 0) -> np.ndarray:
    """Speech-like bursts (a harmonic series, syllable-gated) between quiet stretches."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(4):
        t = np.arange(int(1.2 * SR)) / SR
        voice = sum(np.sin(2 * np.pi * (140 + 20 * k) * h * t) / h for h in range(1, 8))
        parts.append(0.2 * voice * (np.sin(2 * np.pi * 4 * t) > -0.3))
        parts.append(1e-3 * rng.standard_normal(int(1.5 * SR)))
    parts.append(0.05 * rng.standard_normal(SR))  # loud noise at the end
    return np.concatenate(parts).astype(np.float32)


def silero_loop(x: np.ndarray) -> np.ndarray:
    """silero's own way: the TorchScript model called on one chunk after another."""
    vad = sil.SileroVad(SR)
    model = vad.model
    model.reset_states()
    n = len(x) // sil.SileroVad.CHUNK
    chunks = x[: n * sil.SileroVad.CHUNK].reshape(n, -1)
    with torch.inference_mode():
        return np.array([float(model(torch.from_numpy(c.copy())[None], SR)) for c in chunks])


def probabilities(vad: sil.SileroVad, x: np.ndarray, block: int) -> np.ndarray:
    vad.keep_probabilities = True
    for i in range(0, len(x), block):
        vad.feed(x[i : i + block])
    vad.flush()
    return np.array(vad.probabilities)


def test_the_batched_encoder_gives_silero_s_own_probabilities(monkeypatch) -> None:
    x = recording()
    want = silero_loop(x)
    got = probabilities(sil.SileroVad(SR), x, len(x))
    assert len(got) == len(want) and want.max() - want.min() > 0.1  # not a constant answer
    assert np.abs(got - want).max() < 1e-4
    monkeypatch.setattr(sil.SileroVad, "BATCH", 7)  # the encoder in many small calls
    assert np.abs(probabilities(sil.SileroVad(SR), x, len(x)) - want).max() < 1e-4


@pytest.mark.parametrize("block", [1, 511, 513, 4000])
def test_the_blocks_do_not_change_the_probabilities(block: int) -> None:
    x = recording(1)[: 3 * SR]
    whole = probabilities(sil.SileroVad(SR), x, len(x))
    assert np.abs(probabilities(sil.SileroVad(SR), x, block) - whole).max() < 1e-5


def test_other_rates_are_resampled_as_a_stream() -> None:
    x16 = recording(2)[: 2 * SR]
    t = np.arange(3 * len(x16)) / 48000
    x48 = np.interp(t, np.arange(len(x16)) / SR, x16).astype(np.float32)
    p16 = probabilities(sil.SileroVad(SR), x16, len(x16))
    p48 = probabilities(sil.SileroVad(48000), x48, 4800)
    assert abs(len(p48) - len(p16)) <= 1
    n = min(len(p16), len(p48))
    assert np.corrcoef(p16[:n], p48[:n])[0, 1] > 0.9
