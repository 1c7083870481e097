"""Applying a model to feature arrays: batching by length, softmax, multi-crop averaging.

Shared by the :class:`~emovox.inference.recognizer.Recognizer` and by validation and testing
during training and evaluation, so every path predicts the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from emovox.models.base import SERModel


def model_device(model: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for one with neither)."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        return t.device
    return torch.device("cpu")


def pad_batch(
    items: Sequence[np.ndarray],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``[S, F, T_i]`` arrays into ``[B, S, F, T_max]`` and a ``[B, T_max]`` frame mask."""
    t_max = max(a.shape[-1] for a in items)
    s, f = items[0].shape[:2]
    x = torch.zeros(len(items), s, f, t_max)
    mask = torch.zeros(len(items), t_max, dtype=torch.bool)
    for i, a in enumerate(items):
        x[i, ..., : a.shape[-1]] = torch.from_numpy(a)
        mask[i, : a.shape[-1]] = True
    return x, mask


@torch.no_grad()
def predict_logits(model: SERModel, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """Logits for full-length feature arrays, batched by similar length."""
    return _predict(model, xs, batch_size, dimensions=False)


@torch.no_grad()
def _predict(
    model: SERModel, xs: Sequence[np.ndarray], batch_size: int, dimensions: bool
) -> np.ndarray:
    """Logits ``[N, C]``, followed with ``dimensions`` by the dimension scores ``[N, D]``."""
    model.eval()
    device = model_device(model)
    order = sorted(range(len(xs)), key=lambda i: xs[i].shape[-1])
    width = model.n_classes
    if dimensions:
        width += model._modules["dimensions"].out_features
    out = np.zeros((len(xs), width), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        x, mask = pad_batch([xs[i] for i in idx])
        x, mask = x.to(device), mask.to(device)
        if dimensions:
            logits, dims = model.forward_with_dimensions(x, mask)
            out[idx] = torch.cat([logits, dims], dim=1).cpu().numpy()
        else:
            out[idx] = model(x, mask).cpu().numpy()
    return out


def predict_scores(model: SERModel, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """What a prediction reports of full-length feature arrays: the softmax probabilities
    ``[N, C]``, followed for a model with the dimensions head by its arousal and valence scores
    ``[N, D]`` (``[N, C + D]``). Multi-crop averaging and segment means treat every column
    alike."""
    if not model.has_dimensions():
        return predict_proba(model, xs, batch_size)
    out = _predict(model, xs, batch_size, dimensions=True)
    c = model.n_classes
    out[:, :c] = torch.softmax(torch.from_numpy(out[:, :c]), dim=1).numpy()
    return out


def predict_proba(
    model: SERModel,
    xs: Sequence[np.ndarray],
    batch_size: int = 32,
    test_crops: int = 1,
    crop: int | None = None,
) -> np.ndarray:
    """Softmax probabilities for feature arrays: of the full length, or with ``test_crops > 1``
    the mean over the windows of :func:`crop_windows` (``crop`` frames each)."""

    def full(items: Sequence[np.ndarray]) -> np.ndarray:
        logits = torch.from_numpy(predict_logits(model, items, batch_size))
        return torch.softmax(logits, dim=1).numpy()

    return multi_crop_proba(full, xs, test_crops, crop)


def crop_frames(crop_seconds: float | None, hop_seconds: float) -> int | None:
    """``crop_seconds`` in feature frames (at least one), or ``None`` for whole utterances."""
    return None if crop_seconds is None else max(1, round(crop_seconds / hop_seconds))


def crop_windows(n_frames: int, crop: int | None, n_crops: int) -> list[tuple[int, int]]:
    """``(start, end)`` frame windows for multi-crop prediction.

    ``n_crops`` windows of ``crop`` frames, evenly spaced from the first frame to the last (the
    first starts at 0, the last ends at ``n_frames``); fewer when the utterance has fewer distinct
    start frames, and one window over the whole utterance when it is not longer than ``crop``
    (or when ``n_crops`` is 1 or ``crop`` is ``None``).
    """
    if crop is None or n_crops <= 1 or n_frames <= crop:
        return [(0, n_frames)]
    starts = np.round(np.linspace(0, n_frames - crop, n_crops)).astype(int)
    return [(int(s), int(s) + crop) for s in dict.fromkeys(starts.tolist())]


def multi_crop_proba(
    proba_fn: Callable[[list[np.ndarray]], np.ndarray],
    xs: Sequence[np.ndarray],
    n_crops: int,
    crop: int | None,
) -> np.ndarray:
    """Per-utterance mean of ``proba_fn`` over the :func:`crop_windows` of each ``[S, F, T]`` array.

    ``proba_fn`` maps a list of arrays to probabilities ``[N, C]`` (the torch model, or the ONNX
    session); every window of every utterance goes through it in one call. With ``n_crops <= 1``
    it is called on ``xs`` as they are.
    """
    if n_crops <= 1 or crop is None:
        return proba_fn(list(xs))
    windows: list[np.ndarray] = []
    owner: list[int] = []
    for i, x in enumerate(xs):
        for start, end in crop_windows(x.shape[-1], crop, n_crops):
            windows.append(x[..., start:end])
            owner.append(i)
    if not windows:
        return proba_fn([])
    proba = np.asarray(proba_fn(windows), dtype=np.float64)
    out = np.zeros((len(xs), proba.shape[1]))
    np.add.at(out, np.asarray(owner), proba)
    out /= np.bincount(owner, minlength=len(xs))[:, None]
    return out.astype(np.float32)
