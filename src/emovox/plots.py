"""Diagnostic figures: waveform, spectrogram, MFCC, confusion matrix, training curves, timeline.

Every function renders with the non-interactive ``Agg`` backend, writes a PNG atomically (to a
hidden temporary file beside the target, then ``os.replace``), creates missing parent folders,
closes its figure and returns the path it wrote. Empty or malformed inputs raise ``ValueError``
before anything is drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from emovox.metrics import VAL_UA_PREFIX

__all__ = [
    "plot_confusion",
    "plot_mfcc",
    "plot_spectrogram",
    "plot_timeline",
    "plot_training_curves",
    "plot_waveform",
]

DPI = 120
"""Resolution of every saved figure."""

N_MELS = 128
"""Mel bands of the spectrogram and of the MFCC front end."""

N_FFT = 1024
"""FFT size of the spectrogram and the MFCC front end."""

TOP_DB = 80.0
"""Dynamic range shown by the spectrogram (as ``librosa.power_to_db``'s ``top_db``)."""

MAX_WAVEFORM_POINTS = 20_000
"""Above this many samples the waveform is drawn as a per-pixel min/max envelope."""


# --------------------------------------------------------------------------------------------
# helpers


def _save(fig: Figure, out: str | os.PathLike) -> Path:
    """Save ``fig`` as PNG to ``out`` atomically, always closing the figure."""
    path = Path(out)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def _check_audio(audio: np.ndarray, sr: int) -> np.ndarray:
    """Return ``audio`` as a contiguous 1-D float32 array, or raise ``ValueError``."""
    if not isinstance(sr, (int, np.integer)) or isinstance(sr, bool) or sr <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sr!r}")
    arr = np.asarray(audio)
    if arr.size == 0:
        raise ValueError("audio is empty: nothing to plot")
    if arr.ndim > 1:
        arr = np.squeeze(arr)
    if arr.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {np.shape(audio)}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("audio contains NaN or infinite samples")
    return arr


def _hop(sr: int) -> int:
    """10 ms hop, at least one sample."""
    return max(1, sr // 100)


def _win(sr: int) -> int:
    """Analysis window: the full FFT above 16 kHz, 25 ms (400 samples) at 16 kHz and below."""
    return N_FFT if sr > 16000 else 400


def _time_formatter(duration: float) -> FuncFormatter:
    """Seconds on short axes, ``m:ss`` (or ``h:mm:ss``) once the axis spans two minutes."""

    def fmt(x: float, _pos: int | None = None) -> str:
        if duration < 120:
            return f"{x:g}"
        sign = "-" if x < 0 else ""
        total = round(abs(x))
        hours, rest = divmod(total, 3600)
        minutes, seconds = divmod(rest, 60)
        if hours:
            return f"{sign}{hours}:{minutes:02d}:{seconds:02d}"
        return f"{sign}{minutes}:{seconds:02d}"

    return FuncFormatter(fmt)


def _format_time_axis(ax: Any, duration: float) -> None:
    """Seconds on short axes; ``m:ss`` ticks on round minute fractions for long ones."""
    ax.xaxis.set_major_formatter(_time_formatter(duration))
    if duration >= 120:
        steps = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
        step = next((s for s in steps if duration / s <= 10), None)
        if step is None:
            step = steps[-1] * math.ceil(duration / (10 * steps[-1]))
        ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.set_xlabel(_time_label(duration))


def _time_label(duration: float) -> str:
    if duration < 120:
        return "time (s)"
    return "time (h:mm:ss)" if duration >= 3600 else "time (m:ss)"


def _label_colours(labels: Sequence[str]) -> dict[str, Any]:
    """The colour of each label, the same as on the web page (:mod:`emovox.colours`)."""
    from emovox.colours import label_colours

    return dict(label_colours(labels))


def _float_or_nan(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------------------------
# audio


def plot_waveform(
    audio: np.ndarray, sr: int, out: str | os.PathLike, title: str = ""
) -> Path:
    """Plot amplitude over time (seconds) of mono ``audio`` sampled at ``sr`` Hz.

    Long signals are drawn as a min/max envelope so the figure stays fast and faithful.

    Args:
        audio: 1-D samples (a ``[1, N]`` or ``[N, 1]`` array is squeezed).
        sr: sample rate in Hz.
        out: PNG path to write.
        title: optional figure title.

    Returns:
        The path written.

    Raises:
        ValueError: if the audio is empty, not mono, not finite, or ``sr`` is not positive.
    """
    y = _check_audio(audio, sr)
    n = y.size
    duration = n / sr
    fig, ax = plt.subplots(figsize=(10, 3))
    if n > MAX_WAVEFORM_POINTS:
        bins = MAX_WAVEFORM_POINTS // 2
        edges = np.linspace(0, n, bins + 1).astype(np.int64)
        lo = np.minimum.reduceat(y, edges[:-1])
        hi = np.maximum.reduceat(y, edges[:-1])
        t = edges[:-1] / sr
        ax.fill_between(t, lo, hi, color="tab:blue", linewidth=0.5, step="post")
    else:
        t = np.arange(n) / sr
        ax.plot(t, y, color="tab:blue", linewidth=0.6)
    peak = float(np.max(np.abs(y)))
    limit = peak * 1.05 if peak > 0 else 1.0
    ax.set_ylim(-limit, limit)
    ax.set_xlim(0, duration)
    ax.axhline(0.0, color="0.6", linewidth=0.5)
    _format_time_axis(ax, duration)
    ax.set_ylabel("amplitude")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"Waveform ({duration:.2f} s, {sr} Hz)")
    fig.tight_layout()
    return _save(fig, out)


def plot_spectrogram(
    audio: np.ndarray, sr: int, out: str | os.PathLike, title: str = ""
) -> Path:
    """Plot the log-mel spectrogram (dB) of ``audio``: time on x, mel band (Hz ticks) on y.

    Uses :func:`emovox.features.spectral.log_mel_spectrogram` with a 1024-point FFT, a 10 ms
    hop, a 25 ms window at 16 kHz and below (the full FFT above) and 128 mel bands; the colour
    range spans the top 80 dB. Arguments, result and errors as :func:`plot_waveform`.
    """
    import torch

    from emovox.features.spectral import log_mel_spectrogram

    y = _check_audio(audio, sr)
    hop = _hop(sr)
    with torch.no_grad():
        spec = log_mel_spectrogram(
            torch.from_numpy(y)[None], sr, n_fft=N_FFT, hop_length=hop,
            win_length=_win(sr), n_mels=N_MELS,
        )[0].numpy()
    peak = float(spec.max())
    vmin = peak - TOP_DB
    n_frames = spec.shape[1]
    duration = y.size / sr
    fig, ax = plt.subplots(figsize=(10, 4))
    image = ax.imshow(
        spec, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=peak,
        extent=(0.0, n_frames * hop / sr, -0.5, N_MELS - 0.5), interpolation="nearest",
    )
    # Label mel bands with their centre frequencies.
    import librosa

    centres = librosa.mel_frequencies(n_mels=N_MELS, fmin=0.0, fmax=sr / 2.0)
    freqs = [f for f in (0, 250, 500, 1000, 2000, 4000, 8000, 16000) if f <= centres[-1] * 1.001]
    ax.set_yticks(np.interp(freqs, centres, np.arange(N_MELS)))
    ax.set_yticklabels([_hz(f) for f in freqs])
    ax.set_ylabel("frequency (Hz, mel scale)")
    ax.set_xlim(0.0, max(duration, hop / sr))
    _format_time_axis(ax, duration)
    colorbar = fig.colorbar(image, ax=ax, pad=0.01)
    colorbar.set_label("power (dB)")
    ax.set_title(title or f"Log-mel spectrogram ({N_MELS} bands, {sr} Hz)")
    fig.tight_layout()
    return _save(fig, out)


def _hz(freq: float) -> str:
    return f"{freq / 1000:g}k" if freq >= 1000 else f"{freq:.0f}"


MFCC_RANGE = 3.0
"""Colour range of the MFCC image, in standard deviations of each coefficient."""


def plot_mfcc(
    audio: np.ndarray, sr: int, out: str | os.PathLike, n_mfcc: int = 40, title: str = ""
) -> Path:
    """Plot the MFCCs of ``audio`` as an image (coefficient on y, time on x) with a colorbar.

    Computed with :mod:`emovox.features.spectral` over the same front end as
    :func:`plot_spectrogram` (1024-point FFT, 10 ms hop, 128 mel bands, 80 dB range), which
    matches ``librosa.feature.mfcc`` with those parameters.

    ``n_mfcc`` is the number of coefficients, 1 to 128 (a ``ValueError`` outside); the other
    arguments, the result and the errors are those of :func:`plot_waveform`.
    """
    import torch

    from emovox.features.spectral import clip_top_db, log_mel_spectrogram, mfcc_from_log_mel

    y = _check_audio(audio, sr)
    if not 1 <= int(n_mfcc) <= N_MELS:
        raise ValueError(f"n_mfcc must be between 1 and {N_MELS}, got {n_mfcc}")
    hop = _hop(sr)
    with torch.no_grad():
        log_mel = log_mel_spectrogram(
            torch.from_numpy(y)[None], sr, n_fft=N_FFT, hop_length=hop,
            win_length=_win(sr), n_mels=N_MELS,
        )
        mfcc = mfcc_from_log_mel(clip_top_db(log_mel, TOP_DB), int(n_mfcc))[0].numpy()
    n_frames = mfcc.shape[1]
    duration = y.size / sr
    # every coefficient standardised over time: c0 (overall energy) no longer dwarfs the others
    mfcc = (mfcc - mfcc.mean(axis=1, keepdims=True)) / (mfcc.std(axis=1, keepdims=True) + 1e-8)
    limit = MFCC_RANGE
    fig, ax = plt.subplots(figsize=(10, 4))
    image = ax.imshow(
        mfcc, origin="lower", aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit,
        extent=(0.0, n_frames * hop / sr, -0.5, mfcc.shape[0] - 0.5), interpolation="nearest",
    )
    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.set_ylabel("MFCC coefficient")
    ax.set_xlim(0.0, max(duration, hop / sr))
    _format_time_axis(ax, duration)
    colorbar = fig.colorbar(image, ax=ax, pad=0.01)
    colorbar.set_label("standardised value (each coefficient over time)")
    ax.set_title(title or f"MFCC ({mfcc.shape[0]} coefficients, {sr} Hz)")
    fig.tight_layout()
    return _save(fig, out)


# --------------------------------------------------------------------------------------------
# evaluation


def plot_confusion(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str],
    out: str | os.PathLike,
    title: str = "",
    normalize: bool = True,
) -> Path:
    """Plot a confusion matrix: true label on y, predicted label on x.

    With ``normalize`` the colours are row percentages (recall per true class) and each cell
    shows its count and percentage; without it the colours and text are raw counts.

    Args:
        matrix: square counts, ``matrix[true][predicted]``, one row per label.
        labels: class names in matrix order.
        out: PNG path to write.
        title: optional figure title.
        normalize: colour by row percentage rather than by count.

    Returns:
        The path written.

    Raises:
        ValueError: if there are no labels or the matrix is not ``len(labels)`` square, or
            holds negative or non-finite values.
    """
    labels = [str(label) for label in labels]
    n = len(labels)
    if n == 0:
        raise ValueError("labels are empty: nothing to plot")
    try:
        counts = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"confusion matrix is not a rectangular numeric table: {exc}") from None
    if counts.shape != (n, n):
        raise ValueError(
            f"confusion matrix shape {counts.shape} does not match {n} labels "
            f"(expected ({n}, {n}))"
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("confusion matrix must hold finite, non-negative counts")

    row_sums = counts.sum(axis=1, keepdims=True)
    percent = np.divide(
        100.0 * counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0
    )
    values = percent if normalize else counts
    vmax = 100.0 if normalize else max(float(counts.max()), 1.0)

    side = max(4.5, 0.75 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fontsize = 10 if n <= 6 else 9 if n <= 9 else 8
    integral = np.allclose(counts, np.round(counts))
    for i in range(n):
        for j in range(n):
            count = f"{round(float(counts[i, j]))}" if integral else f"{counts[i, j]:.3g}"
            text = f"{count}\n{percent[i, j]:.0f}%" if normalize else count
            colour = "white" if values[i, j] > 0.55 * vmax else "black"
            ax.text(
                j, i, text, ha="center", va="center", color=colour, fontsize=fontsize,
                linespacing=1.1,
            )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    # Thin white grid between cells.
    ax.set_xticks(np.arange(-0.5, n, 1.0), minor=True)
    ax.set_yticks(np.arange(-0.5, n, 1.0), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("% of true class" if normalize else "count")
    total = round(float(counts.sum()))
    correct = float(np.trace(counts))
    accuracy = 100.0 * correct / counts.sum() if counts.sum() > 0 else 0.0
    present = row_sums[:, 0] > 0
    ua = float(np.mean(np.diag(percent)[present])) if present.any() else 0.0
    ax.set_title(
        (f"{title}\n" if title else "Confusion matrix\n")
        + f"n={total}  WA {accuracy:.1f}%  UA {ua:.1f}%",
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, out)


def plot_training_curves(
    history: Sequence[Mapping[str, Any]], out: str | os.PathLike, title: str = ""
) -> Path:
    """Plot losses and validation unweighted accuracy per epoch, marking the best epoch.

    Each history row looks like ``{"epoch": 1, "train_loss": 1.9, "val_loss": 1.8,
    "val_ua": 31.2, "lr": 0.001, "seconds": 3.1}``; the ``val_*`` keys may be missing (training
    without validation), in which case the right panel says so. Each validation corpus's UA
    (``val_ua@<corpus>``, training on several corpora) is drawn as a thin line of its own.

    Args:
        history: one mapping per epoch, in order.
        out: PNG path to write.
        title: optional figure title.

    Returns:
        The path written.

    Raises:
        ValueError: if ``history`` is empty or a row is not a mapping.
    """
    rows = list(history)
    if not rows:
        raise ValueError("training history is empty: nothing to plot")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"history row {i} is not a mapping: {row!r}")

    epochs = np.array([_float_or_nan(row.get("epoch", i + 1)) for i, row in enumerate(rows)])
    train_loss = np.array([_float_or_nan(row.get("train_loss")) for row in rows])
    val_loss = np.array([_float_or_nan(row.get("val_loss")) for row in rows])
    val_ua = np.array([_float_or_nan(row.get("val_ua")) for row in rows])
    marker = "o" if len(rows) <= 30 else None

    fig, (ax_loss, ax_ua) = plt.subplots(1, 2, figsize=(11, 4))
    if np.isfinite(train_loss).any():
        ax_loss.plot(epochs, train_loss, marker=marker, markersize=3, label="train loss")
    if np.isfinite(val_loss).any():
        ax_loss.plot(epochs, val_loss, marker=marker, markersize=3, label="validation loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Loss")
    ax_loss.grid(True, alpha=0.3)
    ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax_loss.get_legend_handles_labels()[0]:
        ax_loss.legend()
    else:
        ax_loss.text(0.5, 0.5, "no loss recorded", ha="center", va="center",
                     transform=ax_loss.transAxes, color="0.4")

    ax_ua.set_xlabel("epoch")
    ax_ua.set_ylabel("validation UA (%)")
    ax_ua.set_title("Validation unweighted accuracy")
    ax_ua.grid(True, alpha=0.3)
    ax_ua.xaxis.set_major_locator(MaxNLocator(integer=True))
    finite = np.isfinite(val_ua)
    if finite.any():
        keys = dict.fromkeys(k for row in rows for k in row if str(k).startswith(VAL_UA_PREFIX))
        per_corpus = {
            str(k)[len(VAL_UA_PREFIX):]: np.array([_float_or_nan(row.get(k)) for row in rows])
            for k in keys
        }
        for corpus, curve in per_corpus.items():
            ax_ua.plot(epochs, curve, linewidth=0.8, alpha=0.6, label=corpus)
        ax_ua.plot(epochs, val_ua, marker=marker, markersize=3, color="tab:green",
                   label="validation UA")
        best = int(np.nanargmax(val_ua))
        best_epoch, best_ua = epochs[best], val_ua[best]
        ax_ua.plot([best_epoch], [best_ua], marker="*", markersize=14, color="tab:red",
                   linestyle="none", label=f"best: {best_ua:.1f}% @ epoch {best_epoch:g}")
        for ax in (ax_loss, ax_ua):
            ax.axvline(best_epoch, color="tab:red", linestyle="--", linewidth=0.8, alpha=0.6)
        shown = np.concatenate([val_ua, *per_corpus.values()])
        low, high = float(np.nanmin(shown)), float(np.nanmax(shown))
        ax_ua.set_ylim(max(0.0, low - 5.0), min(100.0, high + 5.0))
        ax_ua.legend(loc="lower right", fontsize="small")
    else:
        ax_ua.set_ylim(0.0, 100.0)
        ax_ua.text(0.5, 0.5, "no validation", ha="center", va="center",
                   transform=ax_ua.transAxes, color="0.4")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


# --------------------------------------------------------------------------------------------
# long recordings


def plot_timeline(
    segments: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    out: str | os.PathLike,
    title: str = "",
    duration: float | None = None,
) -> Path:
    """Plot per-segment class probabilities over a long recording, plus the predicted label.

    The lower panel stacks each segment's class probabilities over the span of the segment;
    the strip above colours each segment by its predicted label. Overlapping (sliding-window)
    segments are split at the midpoint between neighbouring centres so nothing is drawn twice.
    Each label keeps one colour (its position in ``labels``) in both panels and the legend.

    Args:
        segments: mappings with ``start`` and ``end`` in seconds, ``label`` (the prediction;
            the most probable class when missing) and ``probabilities`` (label -> probability;
            missing labels count as 0).
        labels: every class name, in display order.
        out: PNG path to write.
        title: optional figure title.
        duration: the recording's length in seconds: the time axis runs from 0 to it (by
            default, to the end of the last segment).

    When every segment has ``arousal`` and ``valence`` (a model trained with ``dimensions``),
    a third panel draws both over time on a -1..1 scale.

    Returns:
        The path written.

    Raises:
        ValueError: if ``segments`` or ``labels`` is empty, or a segment lacks a valid
            ``start < end``, or names a label that is not in ``labels``.
    """
    labels = [str(label) for label in labels]
    lo, hi, prob, pred = _timeline_rows(segments, labels)
    dims = _timeline_dimensions(segments)
    colours = _label_colours(labels)
    t0, t1 = 0.0, max(float(hi.max()), float(duration or 0.0))
    ratios = [1, 6] + ([3] if dims else [])
    fig, axes = plt.subplots(
        len(ratios), 1, figsize=(12, 4.5 + (1.8 if dims else 0.0)), sharex=True,
        gridspec_kw={"height_ratios": ratios, "hspace": 0.06},
    )
    ax_strip, ax_prob = axes[0], axes[1]
    _draw_predicted_strip(ax_strip, lo, hi, pred, labels, colours, t1 - t0)
    _draw_stacked_probabilities(ax_prob, lo, hi, prob, labels, colours)
    bottom = ax_prob
    if dims:
        bottom = axes[2]
        _draw_dimensions(bottom, lo, hi, dims)
    bottom.set_xlim(t0, t1)
    _format_time_axis(bottom, t1 - t0)
    handles = [Patch(facecolor=colours[label], label=label) for label in labels]
    ax_prob.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
        title="emotion", fontsize=9,
    )
    ax_strip.set_title(title or f"Emotion timeline ({len(lo)} segments)")
    return _save(fig, out)


DIMENSION_COLOURS = {"arousal": "#d62728", "valence": "#1f77b4"}
"""Line colours of the arousal and valence panel of :func:`plot_timeline`."""


def _timeline_dimensions(segments) -> dict[str, np.ndarray]:
    """Each dimension (arousal, valence) that every segment has, in the segments' time order
    (as :func:`_timeline_rows` sorts them); none when any segment lacks it."""
    rows = list(segments)
    order = np.argsort([float(s["start"]) for s in rows], kind="stable")
    out = {}
    for d in DIMENSION_COLOURS:
        values = [_float_or_nan(s.get(d)) if s.get(d) is not None else None for s in rows]
        if rows and all(v is not None and math.isfinite(v) for v in values):
            out[d] = np.clip(np.asarray(values, dtype=float)[order], -1.0, 1.0)
    return out


def _draw_dimensions(ax, lo, hi, dims: Mapping[str, np.ndarray]) -> None:
    """Arousal and valence of each segment as steps over its span, on a -1..1 axis."""
    for name, values in dims.items():
        xs = np.ravel(np.column_stack([lo, hi]))
        ys = np.repeat(values, 2)
        ax.plot(xs, ys, color=DIMENSION_COLOURS[name], lw=1.6, label=name)
    ax.axhline(0.0, color="#9aa3b2", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_yticks([-1, 0, 1])
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)


def _timeline_rows(segments, labels: list[str]):
    """Checked segments in time order: starts, ends (overlapping neighbours split at the midpoint
    between their centres), probabilities ``[N, len(labels)]`` and predicted labels."""
    if not labels:
        raise ValueError("labels are empty: nothing to plot")
    rows = list(segments)
    if not rows:
        raise ValueError("segments are empty: nothing to plot")
    index = {label: i for i, label in enumerate(labels)}

    starts, ends, probs, predicted = [], [], [], []
    for i, seg in enumerate(rows):
        if not isinstance(seg, Mapping):
            raise ValueError(f"segment {i} is not a mapping: {seg!r}")
        try:
            start, end = float(seg["start"]), float(seg["end"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"segment {i} needs numeric 'start' and 'end' (seconds)") from None
        if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
            raise ValueError(f"segment {i} has end {end} not after start {start}")
        p = seg.get("probabilities") or {}
        if not isinstance(p, Mapping):
            raise ValueError(f"segment {i} 'probabilities' must be a mapping label -> prob")
        unknown = [k for k in p if str(k) not in index]
        if unknown:
            raise ValueError(f"segment {i} has probabilities for unknown labels {unknown}")
        row = np.zeros(len(labels))
        for k, v in p.items():
            value = _float_or_nan(v)
            row[index[str(k)]] = value if math.isfinite(value) and value > 0 else 0.0
        label = seg.get("label")
        if label is None:
            label = labels[int(np.argmax(row))]
        label = str(label)
        if label not in index:
            raise ValueError(f"segment {i} label {label!r} is not one of {labels}")
        starts.append(start)
        ends.append(end)
        probs.append(row)
        predicted.append(label)

    order = np.argsort(starts, kind="stable")
    lo = np.asarray(starts)[order]
    hi = np.asarray(ends)[order]
    prob = np.asarray(probs)[order]
    pred = [predicted[k] for k in order]
    # Split overlapping neighbours at the midpoint between their centres.
    centres = (lo + hi) / 2.0
    for k in range(1, len(lo)):
        if lo[k] < hi[k - 1]:
            cut = min(max((centres[k - 1] + centres[k]) / 2.0, lo[k]), hi[k - 1])
            hi[k - 1] = cut
            lo[k] = cut
    return lo, hi, prob, pred


STRIP_TEXT_FRACTION = 0.04
"""A segment of the predicted strip at least this share of the time axis gets its label
written on it."""


def _draw_predicted_strip(ax, lo, hi, pred, labels, colours, span: float) -> None:
    """The strip colouring each segment by its predicted label, named where there is room."""
    widths = np.maximum(hi - lo, 0.0)
    for start, width, label in zip(lo, widths, pred, strict=True):
        if span > 0 and width >= STRIP_TEXT_FRACTION * span:
            ax.text(
                start + width / 2, 0.5, label, ha="center", va="center", fontsize=8,
                color="white", clip_on=True,
            )
    for label in labels:
        mask = np.array([p == label for p in pred])
        if mask.any():
            ax.broken_barh(
                list(zip(lo[mask], widths[mask], strict=True)), (0, 1),
                facecolors=colours[label], edgecolor="none",
            )
    ax.set_ylim(0, 1)
    ax.set_yticks([0.5])
    ax.set_yticklabels(["predicted"])
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", bottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _draw_stacked_probabilities(ax, lo, hi, prob, labels, colours) -> None:
    """Each segment's class probabilities stacked over its span."""
    # Stacked probabilities as one step-shaped polygon per label (fast for thousands of
    # segments); NaN rows break the polygons across gaps between segments.
    n_seg = len(lo)
    xs = np.empty(2 * n_seg)
    xs[0::2], xs[1::2] = lo, hi
    upper = np.repeat(np.cumsum(prob, axis=1), 2, axis=0)
    gaps = np.nonzero(lo[1:] > hi[:-1] + 1e-9)[0] + 1
    if gaps.size:
        xs = np.insert(xs, 2 * gaps, (hi[gaps - 1] + lo[gaps]) / 2.0)
        upper = np.insert(upper, 2 * gaps, np.nan, axis=0)
    lower = np.zeros(len(xs))
    lower[np.isnan(upper[:, 0])] = np.nan
    for j, label in enumerate(labels):
        ax.fill_between(
            xs, lower, upper[:, j], color=colours[label], linewidth=0, edgecolor="none",
        )
        lower = upper[:, j]
    ax.set_ylim(0.0, max(1.0, float(np.nanmax(upper[:, -1]))))
    ax.set_ylabel("class probability")
    ax.grid(True, axis="y", alpha=0.3)
