"""Tests for emovox.plots: every figure is a valid PNG of sensible size; bad input is refused."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from emovox import plots

SR = 16_000
LABELS = ["neutral", "happy", "sad", "angry"]


@pytest.fixture(scope="module")
def sine() -> np.ndarray:
    """One second of a 220 Hz sine with a little noise at 16 kHz."""
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    return (0.5 * np.sin(2 * np.pi * 220.0 * t) + 0.02 * rng.standard_normal(SR)).astype(np.float32)


def assert_png(path: Path, min_width: int = 300, min_height: int = 150) -> np.ndarray:
    """The file exists, is a PNG, and decodes to an image of at least the given size."""
    assert path.is_file()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)
    height, width = image.shape[:2]
    assert width >= min_width
    assert height >= min_height
    assert width <= 4000
    assert height <= 4000
    # Not a blank canvas.
    assert float(np.ptp(image[..., :3])) > 0.1
    # No temporary file left beside it.
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    return image


def test_waveform(tmp_path: Path, sine: np.ndarray) -> None:
    out = plots.plot_waveform(sine, SR, tmp_path / "wave.png", title="sine")
    assert out == tmp_path / "wave.png"
    assert_png(out)


def test_waveform_long_signal_uses_envelope_and_creates_parents(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    audio = rng.uniform(-1, 1, size=SR * 5).astype(np.float32)  # above the point cap
    out = plots.plot_waveform(audio, SR, str(tmp_path / "a" / "b" / "wave.png"))
    assert isinstance(out, Path)
    assert_png(out)


def test_spectrogram(tmp_path: Path, sine: np.ndarray) -> None:
    assert_png(plots.plot_spectrogram(sine, SR, tmp_path / "spec.png", title="spec"))


def test_spectrogram_high_rate(tmp_path: Path) -> None:
    sr = 44_100
    t = np.arange(sr // 4) / sr
    audio = np.sin(2 * np.pi * 440.0 * t).astype(np.float64)  # float64 accepted
    assert_png(plots.plot_spectrogram(audio, sr, tmp_path / "spec44.png"))


def test_mfcc(tmp_path: Path, sine: np.ndarray) -> None:
    assert_png(plots.plot_mfcc(sine, SR, tmp_path / "mfcc.png", n_mfcc=20, title="mfcc"))


def test_overwrites_existing_file(tmp_path: Path, sine: np.ndarray) -> None:
    out = tmp_path / "wave.png"
    out.write_bytes(b"old")
    plots.plot_waveform(sine, SR, out)
    assert_png(out)


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion(tmp_path: Path, normalize: bool) -> None:
    matrix = [[10, 2, 0, 1], [3, 8, 1, 0], [0, 0, 12, 3], [0, 0, 0, 0]]  # one empty row
    out = plots.plot_confusion(
        matrix, LABELS, tmp_path / f"cm_{normalize}.png", title="test", normalize=normalize
    )
    assert_png(out)


def test_confusion_twelve_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    labels = [f"class_{i:02d}" for i in range(12)]
    matrix = rng.integers(0, 20, size=(12, 12)) + np.diag(np.full(12, 60))
    image = assert_png(plots.plot_confusion(matrix.tolist(), labels, tmp_path / "cm12.png"))
    assert image.shape[0] >= 800  # grows with the number of classes


def test_training_curves(tmp_path: Path) -> None:
    history = [
        {
            "epoch": e,
            "train_loss": 2.0 / e,
            "val_loss": 1.8 / e + 0.05 * e,
            "val_ua": 30.0 + 5 * e - 0.6 * e * e,
            "lr": 1e-3,
            "seconds": 3.0,
        }
        for e in range(1, 9)
    ]
    assert_png(plots.plot_training_curves(history, tmp_path / "curves.png", title="run"))


def test_training_curves_without_validation(tmp_path: Path) -> None:
    history = [{"epoch": e, "train_loss": 2.0 / e, "lr": 1e-3} for e in range(1, 4)]
    assert_png(plots.plot_training_curves(history, tmp_path / "curves_noval.png"))


def _segments(n: int, hop: float, window: float) -> list[dict]:
    rng = np.random.default_rng(3)
    segments = []
    for i in range(n):
        p = rng.dirichlet(np.ones(len(LABELS)))
        segments.append(
            {
                "start": i * hop,
                "end": i * hop + window,
                "label": LABELS[int(np.argmax(p))],
                "probabilities": dict(zip(LABELS, p.tolist(), strict=True)),
            }
        )
    return segments


def test_timeline(tmp_path: Path) -> None:
    assert_png(plots.plot_timeline(_segments(30, 2.0, 2.0), LABELS, tmp_path / "tl.png"))


def test_timeline_with_gaps_and_partial_probabilities(tmp_path: Path) -> None:
    segments = _segments(12, 2.5, 2.0)  # 0.5 s silence between segments
    segments[3]["probabilities"] = {"sad": 0.7, "angry": 0.3}  # others missing -> 0
    assert_png(plots.plot_timeline(segments, LABELS, tmp_path / "tl_gaps.png"))


def test_timeline_overlapping_long_unsorted(tmp_path: Path) -> None:
    segments = _segments(200, 1.0, 3.0)[::-1]  # 200 s, overlapping windows, reversed
    del segments[5]["label"]  # falls back to the most probable class
    out = plots.plot_timeline(segments, LABELS, tmp_path / "tl_long.png", title="long")
    assert_png(out)


@pytest.mark.parametrize(
    "func",
    [plots.plot_waveform, plots.plot_spectrogram, plots.plot_mfcc],
)
def test_empty_audio_raises(tmp_path: Path, func) -> None:
    with pytest.raises(ValueError, match="empty"):
        func(np.zeros(0, dtype=np.float32), SR, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_bad_audio_raises(tmp_path: Path, sine: np.ndarray) -> None:
    with pytest.raises(ValueError, match="sample rate"):
        plots.plot_waveform(sine, 0, tmp_path / "x.png")
    with pytest.raises(ValueError, match="mono"):
        plots.plot_waveform(np.zeros((2, 100)), SR, tmp_path / "x.png")
    with pytest.raises(ValueError, match="NaN"):
        plots.plot_waveform(np.array([0.0, np.nan]), SR, tmp_path / "x.png")
    with pytest.raises(ValueError, match="n_mfcc"):
        plots.plot_mfcc(sine, SR, tmp_path / "x.png", n_mfcc=0)


def test_confusion_shape_mismatch_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not match"):
        plots.plot_confusion([[1, 2], [3, 4]], LABELS, tmp_path / "x.png")
    with pytest.raises(ValueError, match="does not match"):
        plots.plot_confusion([[1, 2, 3], [3, 4, 5]], ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="empty"):
        plots.plot_confusion([], [], tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-negative"):
        plots.plot_confusion([[1, -1], [0, 2]], ["a", "b"], tmp_path / "x.png")


def test_empty_history_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        plots.plot_training_curves([], tmp_path / "x.png")


def test_timeline_bad_input_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="segments are empty"):
        plots.plot_timeline([], LABELS, tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels are empty"):
        plots.plot_timeline(_segments(2, 1.0, 1.0), [], tmp_path / "x.png")
    with pytest.raises(ValueError, match="not one of"):
        bad = [{"start": 0, "end": 1, "label": "bored", "probabilities": {}}]
        plots.plot_timeline(bad, LABELS, tmp_path / "x.png")
    with pytest.raises(ValueError, match="not after start"):
        bad = [{"start": 2, "end": 1, "label": "sad", "probabilities": {}}]
        plots.plot_timeline(bad, LABELS, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def _capture(monkeypatch) -> list:
    figures = []
    original = plots._save

    def keep(fig, out):
        figures.append(fig)
        return original(fig, out)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def test_mfcc_image_shows_every_coefficient(tmp_path: Path, sine: np.ndarray, monkeypatch) -> None:
    figures = _capture(monkeypatch)
    rng = np.random.default_rng(0)
    noisy = sine + 0.05 * rng.standard_normal(sine.size).astype(np.float32)
    plots.plot_mfcc(noisy, SR, tmp_path / "mfcc.png", n_mfcc=20)
    image = figures[0].axes[0].images[0].get_array()
    # each coefficient standardised over time: c0 no longer dwarfs the others
    np.testing.assert_allclose(image.mean(axis=1), 0.0, atol=1e-4)
    np.testing.assert_allclose(image.std(axis=1), 1.0, atol=1e-3)


def test_timeline_runs_to_the_end_and_names_the_predictions(tmp_path: Path, monkeypatch) -> None:
    figures = _capture(monkeypatch)
    segments = _segments(6, 2.5, 2.0)  # speech ends at 14.5 s
    plots.plot_timeline(segments, LABELS, tmp_path / "tl.png", duration=20.0)
    strip, prob = figures[0].axes[:2]
    assert prob.get_xlim() == (0.0, 20.0)
    texts = [t.get_text() for t in strip.texts]
    assert texts == [s["label"] for s in segments]


def test_plots_use_the_colours_of_the_web_page() -> None:
    from matplotlib.colors import to_hex

    from emovox.colours import label_colours

    labels = ["neutral", "happy", "sad", "angry", "fearful", "mystery"]
    assert {k: to_hex(v) for k, v in plots._label_colours(labels).items()} == label_colours(labels)
    assert label_colours(["fearful"])["fearful"] == label_colours(labels)["fearful"]
