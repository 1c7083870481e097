"""The gated silero detector: silero only near energetic chunks, regions batched, each with its
own state; identical to plain silero where the gate never closes."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.segmentation import silero as sil
from emovox.segmentation.config import SegmentationConfig
from emovox.segmentation.vad import make_vad

pytestmark = pytest.mark.skipif(not sil.silero_available(), reason="silero-vad is not installed")

SR = 16000


def recording(seed: int = 0) -> np.ndarray:
    """Speech-like bursts (a 150 Hz harmonic series) between quiet stretches."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(4):
        t = np.arange(int(1.2 * SR)) / SR
        voice = sum(np.sin(2 * np.pi * (140 + 20 * k) * h * t) / h for h in range(1, 8))
        parts.append(0.2 * voice * (np.sin(2 * np.pi * 4 * t) > -0.3))
        parts.append(1e-4 * rng.standard_normal(int(1.5 * SR)))
    return np.concatenate(parts).astype(np.float32)


def probabilities(vad, x: np.ndarray, block: int) -> np.ndarray:
    vad.keep_probabilities = True
    for i in range(0, len(x), block):
        vad.feed(x[i : i + block])
    vad.flush()
    return np.array(vad.probabilities)


def test_an_open_gate_is_plain_silero_exactly(monkeypatch) -> None:
    x = recording()
    plain = probabilities(sil.SileroVad(SR), x, SR * 2)
    monkeypatch.setattr(sil, "GATE_RANGE_DB", 1e9)
    monkeypatch.setattr(sil, "GATE_FLOOR_DB", -1e9)
    gated = probabilities(sil.GatedSileroVad(SR), x, 4000)  # other blocks: same numbers
    assert len(gated) == len(plain) and np.array_equal(gated, plain)


def test_silero_never_runs_on_the_quiet_and_regions_are_batched(monkeypatch) -> None:
    x = recording()
    vad = sil.GatedSileroVad(SR)
    calls: list[int] = []
    model = vad.model

    class Spy:
        def __getattr__(self, name):
            return getattr(model, name)

        def __setattr__(self, name, value):
            setattr(model, name, value)

        def __call__(self, chunk, sr):
            calls.append(chunk.shape[0])
            return model(chunk, sr)

    object.__setattr__(vad, "model", Spy())
    p = probabilities(vad, x, len(x))  # one block: all four regions at once
    n_chunks = len(x) // sil.SileroVad.CHUNK
    assert len(p) == n_chunks
    assert sum(calls) < 0.8 * n_chunks  # the quiet stretches were skipped
    assert max(calls) == 4  # the four regions side by side
    quiet = ~np.array(vad._open)
    assert (p[quiet] == 0).mean() > 0.5


def test_the_gate_is_a_segmentation_setting() -> None:
    assert type(make_vad("silero", SR)) is sil.SileroVad
    assert type(make_vad("silero", SR, SegmentationConfig(gate=True))) is sil.GatedSileroVad
    assert make_vad("energy", SR, SegmentationConfig(gate=True)).flush() == []
