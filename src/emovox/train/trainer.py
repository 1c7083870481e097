"""The gradient trainer: epochs of seeded batches, early stopping on validation UA, checkpoints.

Randomness comes from per-epoch seeds (``seed``, epoch), so a run is deterministic on CPU and a
resumed run continues exactly as an uninterrupted one would. Checkpoints are safetensors + JSON.
:meth:`Trainer.fit` reads as its steps: prepare (device, optimiser, loss), resume, run the epochs
(each: draw batches, step, validate, record, checkpoint, report), restore the best weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from emovox._fs import atomic_write_text
from emovox.data.balance import corpus_balanced_draw
from emovox.data.labels import NO_CLASS
from emovox.inference.predict import crop_frames, pad_batch, predict_logits, predict_proba
from emovox.metrics import VAL_UA_PREFIX, ua_per_group, unweighted_accuracy
from emovox.models.base import SERModel
from emovox.progress import console, progress_bar
from emovox.train.adversary import CorpusAdversary, corpus_indices, reversal_scale
from emovox.train.aux import AUX_TARGETS, embed_dim, known_ce, known_mse, make_aux_heads
from emovox.train.batches import (
    crop_pair,
    js_divergence,
    lr_at,
    masked_log_softmax,
    pick_two_variants,
    pick_variant,
    random_crop,
    spec_augment,
)
from emovox.train.checkpoint import load_optimizer_tensors, optimizer_tensors, save_tensors
from emovox.train.config import TrainConfig, resolve_device
from emovox.train.distill import soft_cross_entropy
from emovox.train.distributed import broadcast_buffers, is_main, local_device, shard, world
from emovox.train.ema import WeightEMA


@dataclasses.dataclass
class _Run:
    """What one call of :meth:`Trainer.fit` works with."""

    opt: torch.optim.Optimizer
    loss_fn: nn.Module
    crop: int | None
    steps_per_epoch: int
    total_steps: int
    class_mask: torch.Tensor | None = None
    """``[N, C]``: the classes each training item's corpus labels (``None``: all of them)."""
    draw: torch.Tensor | None = None
    """``[N]``: the probability of each training item per draw (``None``: each once an epoch)."""

    def loss(self, logits: torch.Tensor, y: torch.Tensor, idx: list[int], perm=None):
        """The emotion loss of a batch; with :attr:`class_mask`, over each item's own classes
        (:func:`masked_cross_entropy`)."""
        fn = self.loss_fn
        mask = self.classes_of(idx, logits)
        if perm is not None:
            mask = mask[perm]
        return masked_cross_entropy(logits, y, mask, fn.weight, fn.label_smoothing)

    def classes_of(self, idx: list[int], logits: torch.Tensor) -> torch.Tensor:
        """``[len(idx), C]`` booleans on ``logits``' device: the classes each item's corpus
        labels (all of them without :attr:`class_mask`)."""
        if self.class_mask is None:
            return torch.ones_like(logits, dtype=torch.bool)
        return self.class_mask[idx].to(logits.device)


def masked_cross_entropy(
    logits: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy where item ``i`` only knows the classes ``mask[i]`` (its corpus labels):
    the softmax and the label smoothing run over those classes alone, so a corpus never teaches
    anything about a class it does not have. Equal to ``nn.CrossEntropyLoss(weight,
    label_smoothing)`` when every mask is all true (that loss is then used as it is). An item
    without a class (``y`` is :data:`~emovox.data.labels.NO_CLASS`, a row for the dimensions
    head only) adds nothing; a batch of such items only gives 0."""
    known = y >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0
    if bool(mask.all()):
        return nn.functional.cross_entropy(
            logits, y, weight=weight, label_smoothing=label_smoothing, ignore_index=NO_CLASS
        )
    mask = mask | ~known[:, None]  # a finite softmax for the items that count 0
    logp = masked_log_softmax(logits, mask)
    target = y.clamp(min=0)
    nll = -logp.gather(1, target[:, None])[:, 0]
    smooth = -logp.sum(1) / mask.sum(1).clamp(min=1)
    per_item = (1 - label_smoothing) * nll + label_smoothing * smooth
    w = weight[target] if weight is not None else torch.ones_like(per_item)
    w = w * known
    return (w * per_item).sum() / w.sum().clamp(min=1e-12)


def checked_targets(
    name: str, value, shape: tuple[int, int], bounds: tuple[float, float], why: str, maker: str
) -> np.ndarray:
    """Per-item float targets for :meth:`Trainer.fit` (NaN: unknown), checked for their shape
    and range.

    Raises:
        ValueError: ``value`` is missing (``why`` it is needed, and the ``emovox.train`` function
            that makes it), has another shape, or holds values outside ``bounds``.
    """
    if value is None:
        raise ValueError(
            f"{why} but Trainer.fit got no {name} (build it with emovox.train.{maker})"
        )
    arr = np.asarray(value, dtype=np.float32)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, not {shape}")
    known = arr[~np.isnan(arr)]
    low, high = bounds
    if known.size and (known.min() < low or known.max() > high):
        raise ValueError(f"{name} holds values outside [{low:g}, {high:g}]")
    return arr


@dataclasses.dataclass
class _Progress:
    """Where training stands: the history, the best epoch so far and its weights."""

    history: list[dict] = dataclasses.field(default_factory=list)
    best_ua: float = -1.0
    best_epoch: int = 0
    best_state: dict | None = None
    next_epoch: int = 1
    epoch: int = 1
    stale: int = 0

    def record(self, row: dict, improved: bool) -> None:
        self.history.append(row)
        if improved:
            self.best_epoch, self.stale = self.epoch, 0
        else:
            self.stale += 1


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the last good checkpoint was kept."""

    def __init__(self, epoch: int, checkpoint: Path | None) -> None:
        self.epoch, self.checkpoint = epoch, checkpoint
        super().__init__(f"training interrupted during epoch {epoch}")


@dataclasses.dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int
    best_val_ua: float | None
    seconds: float
    interrupted: bool = False

    @property
    def best_val_ua_by_corpus(self) -> dict[str, float]:
        """Each validation corpus's UA (%) at the best epoch (``{}``: one corpus, or none)."""
        for row in self.history:
            if row.get("epoch") == self.best_epoch and "member" not in row:
                n = len(VAL_UA_PREFIX)
                return {k[n:]: float(v) for k, v in row.items() if k.startswith(VAL_UA_PREFIX)}
        return {}


class _Net(nn.Module):
    """What one training step runs, as one module (so that ``DistributedDataParallel`` sees
    every trained parameter): the model's forward, and with auxiliary heads, the dimensions head
    or the corpus adversary also the embedding through them (in float32, outside autocast)."""

    def __init__(
        self,
        model: SERModel,
        aux_heads: nn.ModuleDict | None,
        dims: bool,
        adversary: CorpusAdversary | None = None,
    ) -> None:
        super().__init__()
        self.model, self.aux_heads, self.dims = model, aux_heads, dims
        self.adversary = adversary

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None):
        if self.aux_heads is None and not self.dims and self.adversary is None:
            return self.model(x, mask), {}, None, None
        logits, emb = self.model.forward_with_embedding(x, mask)
        with torch.autocast(x.device.type, enabled=False):
            emb = emb.float()  # bf16 under autocast; the heads train in float32
            aux = {n: h(emb) for n, h in (self.aux_heads or {}).items()}
            dims = self.model.dimensions_from(emb) if self.dims else None
            adv = self.adversary(emb) if self.adversary is not None else None
        return logits, aux, dims, adv


class Trainer:
    """Fits a :class:`SERModel` on feature arrays with early stopping on validation UA.

    Args:
        model: the network (its best weights are loaded back into it at the end).
        config: training settings.
        hop_seconds: seconds per feature frame (turns ``crop_seconds`` into frames).
        checkpoint_dir: where ``best.safetensors``, ``last.safetensors`` and ``state.json`` go
            (``None``: keep checkpoints in memory only).
        progress: show a progress bar (one log line per epoch when not on a terminal).

    With ``config.ema`` the trainer keeps a :class:`WeightEMA` of the model, used for validation,
    the best checkpoint and the final weights. With ``config.aux_targets`` it owns one linear head
    per target on ``model.embed(x, mask)`` (:attr:`aux_heads`); the heads are trained with the
    model and checkpointed for resume, but never become part of the model (nor of a bundle).
    With ``config.corpus_adversary`` it owns, in the same way, a corpus classifier behind a
    gradient reversal (:attr:`adversary`, :mod:`emovox.train.adversary`), built by :meth:`fit`
    from the training items' corpora.

    Raises:
        ValueError: ``aux_targets`` are requested for a model without ``embed``.
    """

    def __init__(
        self,
        model: SERModel,
        config: TrainConfig,
        hop_seconds: float,
        checkpoint_dir: str | Path | None = None,
        progress: bool = True,
    ) -> None:
        self.model, self.config = model, config
        self.hop_seconds = hop_seconds
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.progress = progress
        self.device = torch.device("cpu")
        self.ema: WeightEMA | None = None
        self.aux_heads: nn.ModuleDict | None = None
        self._aux_y: dict[str, np.ndarray] = {}
        self._aux_loss = 0.0
        self._dims_y: np.ndarray | None = None
        self._dims_loss = 0.0
        self.adversary: CorpusAdversary | None = None
        self._corpus_y: np.ndarray | None = None
        self._adv_loss = 0.0
        self._cons_loss = 0.0
        self._soft_y: np.ndarray | None = None
        self._distill_loss = 0.0
        self._val_groups: Sequence[str] | None = None
        if config.aux_targets:
            self.aux_heads = make_aux_heads(model, config.aux_targets, config.seed)

    # -- public ---------------------------------------------------------------------------------
    def fit(
        self,
        train_x: Sequence[np.ndarray],
        train_y: Sequence[int],
        val_x: Sequence[np.ndarray] | None = None,
        val_y: Sequence[int] | None = None,
        resume: bool = False,
        aux_y: dict[str, Sequence[int]] | None = None,
        class_mask: np.ndarray | None = None,
        dims_y: np.ndarray | None = None,
        corpora: Sequence[str] | None = None,
        val_corpora: Sequence[str] | None = None,
        soft_y: np.ndarray | None = None,
    ) -> TrainResult:
        """Train, validating after every epoch; the model ends with its best weights.

        Args:
            train_x: ``[S, F, T]`` arrays, or tuples of variants (one is drawn per epoch).
            train_y: class indices.
            val_x, val_y: the validation set (none: every epoch counts as the best).
            resume: continue from ``checkpoint_dir`` when it holds a checkpoint.
            aux_y: for each of ``config.aux_targets``, one class index per training item
                (:func:`~emovox.train.aux.aux_labels`; ``-1`` where unknown, ignored by that
                head's loss).
            class_mask: ``[N, n_classes]`` booleans, the classes each training item's corpus
                labels: the loss of an item ignores the others (:func:`masked_cross_entropy`).
            dims_y: ``[N, 2]`` arousal and valence targets in [-1, 1], NaN where unknown; needed
                (and only taken) when the model has the dimensions head, whose squared error on
                the known ones joins the loss with weight ``config.dimensions_weight``.
            corpora: each training item's corpus, for ``config.corpus_balance`` (all one corpus
                when ``None``) and ``config.corpus_adversary`` (which needs two or more).
            val_corpora: each validation item's corpus: its UA joins the history
                (``val_ua@<corpus>``), and ``config.val_by_corpus`` / ``config.val_corpus``
                choose the best epoch with them.
            soft_y: ``[N, n_classes]`` a teacher's probabilities (NaN: none), needed (and only
                taken) with ``config.distill`` (:func:`~emovox.train.distill.soft_cross_entropy`).

        Raises:
            TrainingInterrupted: Ctrl-C (the best weights so far are in the model).
            ValueError: ``aux_y`` lacks a target of ``config.aux_targets`` or has the wrong length;
                ``dims_y`` is missing for a model with the dimensions head, or malformed;
                ``config.corpus_adversary`` without two or more corpora in ``corpora``;
                ``soft_y`` missing with ``config.distill``, or malformed.
        """
        train_y = np.asarray(train_y, dtype=int)
        self._soft_y = self._check_soft_y(soft_y, len(train_x))
        self._dims_y = self._check_dims_y(dims_y, len(train_x))
        self._make_adversary(corpora, len(train_x))
        draw = (
            corpus_balanced_draw(train_y, corpora, self.config.corpus_weights)
            if self.config.corpus_balance
            else None
        )
        run = self._prepare(len(train_x), train_y, aux_y, draw)
        if class_mask is not None:
            run.class_mask = torch.as_tensor(np.asarray(class_mask, dtype=bool))
        state = self._load_resume(run.opt) if resume else None
        state = state or _Progress()
        val = (val_x, val_y) if val_x is not None and len(val_x) > 0 else None
        self._val_groups = None if val_corpora is None else np.asarray(val_corpora, dtype=str)
        if val is not None:
            self._check_val_corpus()
        t0 = time.time()
        interrupted = False
        try:
            self._run_epochs(run, state, train_x, train_y, val)
        except KeyboardInterrupt:
            interrupted = True
        self._restore_best(state)
        result = TrainResult(
            history=state.history,
            best_epoch=state.best_epoch,
            best_val_ua=100.0 * state.best_ua if val and state.best_ua >= 0 else None,
            seconds=time.time() - t0,
            interrupted=interrupted,
        )
        if interrupted:
            raise TrainingInterrupted(state.epoch, self.checkpoint_dir) from None
        return result

    @torch.no_grad()
    def predict_proba(self, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``[N, n_classes]`` of the model as it is (full-length feature
        arrays, or the mean over ``config.test_crops`` windows)."""
        crop = crop_frames(self.config.crop_seconds, self.hop_seconds)
        return predict_proba(self.model, xs, batch_size, self.config.test_crops, crop)

    @torch.no_grad()
    def evaluate(self, xs, ys, loss_fn, groups: Sequence[str] | None = None) -> tuple[float, float]:
        """Validation loss and UA (a fraction) on full-length utterances (with
        ``config.test_crops > 1``: on the mean probabilities over the windows, as at test time);
        with ``groups`` (each item's corpus), the UA is the mean of each group's UA."""
        loss, pooled, per_group = self.validation_scores(xs, ys, loss_fn, groups)
        return loss, pooled if groups is None else float(np.mean(list(per_group.values())))

    def validation_scores(
        self, xs, ys, loss_fn, groups: Sequence[str] | None = None
    ) -> tuple[float, float, dict[str, float]]:
        """Validation loss, pooled UA and each group's UA (fractions; ``{}`` without groups),
        as :meth:`evaluate` computes them; training validates with this every epoch."""
        if self.config.test_crops > 1:
            proba = torch.from_numpy(self.predict_proba(xs)).double()
            logits = torch.log(proba.clamp_min(1e-12)).float()  # softmax(log p) == p
        else:
            logits = torch.from_numpy(predict_logits(self.model, xs))
        ys_t = torch.as_tensor(np.asarray(ys), dtype=torch.long)
        loss = float(loss_fn(logits.to(self.device), ys_t.to(self.device)))
        pred, y = logits.argmax(1).numpy(), ys_t.numpy()
        n = self.model.n_classes
        per_group = {} if groups is None else ua_per_group(y, pred, groups, n)
        return loss, unweighted_accuracy(y, pred, n), per_group

    def _check_val_corpus(self) -> None:
        """Refuse a ``val_corpus`` without validation speakers before any epoch is trained.

        Raises:
            ValueError: no validation item of that corpus (the corpora that have them named).
        """
        wanted, groups = self.config.val_corpus, self._val_groups
        present = [] if groups is None else sorted(set(groups.tolist()))
        if wanted and wanted not in {g.lower() for g in present}:
            raise ValueError(
                f"val_corpus={wanted!r}: no validation speaker of that corpus "
                f"(validation corpora: {', '.join(present) or 'not given'})"
            )

    def _chosen_ua(self, pooled: float, per_group: dict[str, float]) -> float:
        """The validation UA that picks the best epoch: pooled, the mean over the corpora
        (``val_by_corpus``) or one corpus's (``val_corpus``, checked by
        :meth:`_check_val_corpus` before training)."""
        cfg = self.config
        if cfg.val_corpus:
            return next(ua for g, ua in per_group.items() if g.lower() == cfg.val_corpus)
        if cfg.val_by_corpus and per_group:
            return float(np.mean(list(per_group.values())))
        return pooled

    # -- the steps of fit -----------------------------------------------------------------------
    def _prepare(self, n_items: int, train_y: np.ndarray, aux_y, draw=None) -> _Run:
        """Device and memory layout, auxiliary targets, weight average, optimiser and loss."""
        cfg, model = self.config, self.model
        self.device = local_device(resolve_device(cfg.device))
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.aux_heads is not None:
            self.aux_heads.to(self.device)
        self._aux_y = self._check_aux_y(aux_y, n_items)
        self.ema = WeightEMA(model, cfg.ema) if cfg.ema > 0 else None
        if self.adversary is not None:
            self.adversary.to(self.device)
        self._net = _Net(model, self.aux_heads, self._dims_y is not None, self.adversary)
        size = world()[1]
        if size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._net = DistributedDataParallel(self._net, device_ids=ids)
            n_items = -(-n_items // size)  # each process's share of an epoch
        steps = math.ceil(n_items / cfg.batch_size)
        return _Run(
            opt=self._optimizer(),
            loss_fn=nn.CrossEntropyLoss(
                weight=self._class_weights(train_y, draw),
                label_smoothing=cfg.label_smoothing,
                ignore_index=NO_CLASS,
            ),
            crop=crop_frames(cfg.crop_seconds, self.hop_seconds),
            steps_per_epoch=steps,
            total_steps=steps * cfg.epochs,
            draw=None if draw is None else torch.as_tensor(draw, dtype=torch.float64),
        )

    def _class_weights(self, train_y: np.ndarray, draw=None) -> torch.Tensor | None:
        """Inverse class frequencies (``balance``) among the items an epoch draws (each once,
        or by the ``draw`` probabilities), 0 for classes absent from training."""
        if not self.config.balance:
            return None
        n = self.model.n_classes
        known = train_y >= 0  # rows for the dimensions head only have no class
        draw = None if draw is None else np.asarray(draw)[known]
        counts = np.bincount(train_y[known], weights=draw, minlength=n).astype(float)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n, 0.0)
        return torch.tensor(w, dtype=torch.float32, device=self.device)

    def _run_epochs(self, run: _Run, state: _Progress, train_x, train_y, val) -> None:
        """Epochs from ``state.next_epoch`` until the last or until patience runs out."""
        cfg = self.config
        with progress_bar(cfg.epochs, "train", enabled=self.progress) as bar:
            bar.advance(state.next_epoch - 1)
            for epoch in range(state.next_epoch, cfg.epochs + 1):
                if state.stale >= cfg.patience:
                    break
                state.epoch = epoch
                t_epoch = time.time()
                loss = self._epoch(train_x, train_y, run, epoch)
                row = {"epoch": epoch, "train_loss": loss, "lr": run.opt.param_groups[0]["lr"]}
                if self.aux_heads is not None:
                    row["aux_loss"] = self._aux_loss
                if self._dims_y is not None:
                    row["dims_loss"] = self._dims_loss
                if self.adversary is not None:
                    row["adversary_loss"] = self._adv_loss
                if cfg.consistency > 0:
                    row["consistency_loss"] = self._cons_loss
                if self._soft_y is not None:
                    row["distill_loss"] = self._distill_loss
                improved = self._validate(run, state, row, val)
                row["seconds"] = time.time() - t_epoch
                state.record(row, improved)
                self._save(run.opt, state)
                self._report(bar, state, loss, row, val is not None)

    def _validate(self, run: _Run, state: _Progress, row: dict, val) -> bool:
        """Score the (averaged) weights on the validation set; keep them when they are the best
        (every epoch is the best without a validation set)."""
        broadcast_buffers(self.model)  # every process validates process 0's weights
        with self._averaged_weights():
            improved = True
            if val is not None:
                scores = self.validation_scores(*val, run.loss_fn, self._val_groups)
                val_loss, pooled, per_corpus = scores
                val_ua = self._chosen_ua(pooled, per_corpus)
                row.update(val_loss=val_loss, val_ua=100.0 * val_ua)
                if len(per_corpus) > 1:
                    row.update({f"{VAL_UA_PREFIX}{g}": 100.0 * ua for g, ua in per_corpus.items()})
                improved = val_ua > state.best_ua
                if improved:
                    state.best_ua = val_ua
            if improved:
                state.best_state = {
                    k: v.detach().clone() for k, v in self.model.state_dict().items()
                }
        return improved

    def _report(self, bar, state: _Progress, loss: float, row: dict, has_val: bool) -> None:
        status = f"loss {loss:.3f}" + (
            f" val UA {row['val_ua']:.1f} (best {100 * state.best_ua:.1f} @ {state.best_epoch})"
            if has_val
            else ""
        )
        bar.describe(status)
        bar.advance(1)
        if self.progress and not sys.stderr.isatty():
            console.log(f"epoch {state.epoch}/{self.config.epochs} {status}")

    def _restore_best(self, state: _Progress) -> None:
        """The best weights back in the model, on the CPU, contiguous, in eval mode."""
        if state.best_state is not None:
            self.model.load_state_dict(state.best_state)
        self.model.to("cpu", memory_format=torch.contiguous_format)
        for head in (self.aux_heads, self.adversary):
            if head is not None:
                head.to("cpu")
        self.model.eval()

    # -- internals -----------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        params = list(self.model.parameters())
        if self.aux_heads is not None:
            params += list(self.aux_heads.parameters())  # after the model's: ids stay as before
        if self.adversary is not None:
            params += list(self.adversary.parameters())
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _check_aux_y(self, aux_y, n: int) -> dict[str, np.ndarray]:
        if self.aux_heads is None:
            return {}
        out = {}
        for name in self.config.aux_targets:
            if aux_y is None or name not in aux_y:
                raise ValueError(
                    f"aux_targets includes {name!r} but Trainer.fit got no aux_y[{name!r}] "
                    "(build it with emovox.train.trainer.aux_labels)"
                )
            arr = np.asarray(aux_y[name], dtype=np.int64)
            if arr.shape != (n,):
                raise ValueError(f"aux_y[{name!r}] has {arr.shape} entries for {n} items")
            n_cls = len(AUX_TARGETS[name])
            if ((arr < -1) | (arr >= n_cls)).any():
                raise ValueError(f"aux_y[{name!r}] holds values outside -1..{n_cls - 1}")
            out[name] = arr
        return out

    def _make_adversary(self, corpora: Sequence[str] | None, n: int) -> None:
        """The corpus adversary and each item's corpus index (``config.corpus_adversary``)."""
        weight = self.config.corpus_adversary
        if weight <= 0:
            self.adversary, self._corpus_y = None, None
            return
        if not self.model.supports_embedding():
            raise ValueError(
                f"model {getattr(self.model, 'name', type(self.model).__name__)!r} has no "
                "embed(x, mask) method, which corpus_adversary needs; train it without"
            )
        self._corpus_y, names = corpus_indices(corpora, n)
        self.adversary = CorpusAdversary(embed_dim(self.model), len(names), self.config.seed)

    def _check_dims_y(self, dims_y, n: int) -> np.ndarray | None:
        if not self.model.has_dimensions():
            return None
        width = self.model._modules["dimensions"].out_features
        why = "the model has the dimensions head"
        return checked_targets("dims_y", dims_y, (n, width), (-1, 1), why, "aux.dimension_targets")

    def _check_soft_y(self, soft_y, n: int) -> np.ndarray | None:
        if self.config.distill <= 0:
            return None
        shape = (n, self.model.n_classes)
        return checked_targets(
            "soft_y", soft_y, shape, (0, 1), "distill is on", "distill.teacher_targets"
        )

    def _distill_losses(self, logits, y, idx: list[int], run: _Run, perm, lam: float):
        """The distillation term of a batch (mixed as the labels are under mixup): each labelled
        row weighed as its label is (``balance``) over its corpus's classes; a row without a
        class that has a target (``distill_unlabelled``) weighs 1, over every class."""
        assert self._soft_y is not None
        target = torch.as_tensor(self._soft_y[idx], device=logits.device)
        mask = run.classes_of(idx, logits) | (y < 0)[:, None]
        w = run.loss_fn.weight
        weight = w[y.clamp(min=0)] if w is not None else torch.ones_like(logits[:, 0])
        weight = torch.where(y >= 0, weight, torch.ones_like(weight))
        t = self.config.distill_temperature
        term = soft_cross_entropy(logits, target, mask, weight, t)
        if perm is None:
            return term
        mixed = soft_cross_entropy(logits, target[perm], mask[perm], weight[perm], t)
        return lam * term + (1 - lam) * mixed

    def _dims_losses(self, pred: torch.Tensor, idx: list[int], perm, lam: float) -> torch.Tensor:
        """The dimensions head's squared error on the known targets (mixed as under mixup)."""
        assert self._dims_y is not None
        t = torch.as_tensor(self._dims_y[idx], device=pred.device)
        if perm is None:
            return known_mse(pred, t)
        return lam * known_mse(pred, t) + (1 - lam) * known_mse(pred, t[perm])

    @contextmanager
    def _averaged_weights(self) -> Iterator[None]:
        """The EMA weights in the model for the block (the trained ones back afterwards)."""
        if self.ema is None:
            yield
            return
        raw = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.ema.state)
        try:
            yield
        finally:
            self.model.load_state_dict(raw)

    def _aux_losses(self, outputs: dict, idx: list[int], perm, lam: float) -> torch.Tensor:
        """Sum over the heads of their cross-entropy on the items whose target is known (mixed
        with ``perm``/``lam`` as the emotion targets are under mixup)."""
        total = None
        for name, out in outputs.items():
            t = torch.as_tensor(self._aux_y[name][idx], dtype=torch.long, device=out.device)
            if perm is None:
                term = known_ce(out, t)
            else:
                term = lam * known_ce(out, t) + (1 - lam) * known_ce(out, t[perm])
            total = term if total is None else total + term
        return total

    def _epoch(self, xs, ys: np.ndarray, run: _Run, epoch: int) -> float:
        """One pass over the training items in a seeded order; the mean loss."""
        cfg, model = self.config, self.model
        seed = cfg.seed * 100_003 + epoch
        torch.manual_seed(seed)  # dropout
        gen = torch.Generator().manual_seed(seed)  # order, crops, masks, mixup
        model.train()
        if run.draw is None:
            order = torch.randperm(len(xs), generator=gen).tolist()
        else:
            order = torch.multinomial(run.draw, len(xs), replacement=True, generator=gen).tolist()
        rank, size = world()
        if size > 1:  # the same order everywhere, each process its share and its own draws
            order = shard(order, rank, size)
            torch.manual_seed(seed + 7_919 * rank)
            gen = torch.Generator().manual_seed(seed + 7_919 * rank)
        per_step = max(1, cfg.batch_size // 2) if cfg.consistency > 0 else cfg.batch_size
        totals = dict.fromkeys(("emotion", "aux", "dims", "adv", "consistency", "distill"), 0.0)
        count = 0
        for b in range(run.steps_per_epoch):
            idx = order[b * per_step : (b + 1) * per_step]
            if not idx:
                break
            x, mask, y, rows = self._batch(xs, ys, idx, run.crop, gen)
            step = (epoch - 1) * run.steps_per_epoch + b
            for g in run.opt.param_groups:
                g["lr"] = lr_at(step, run.total_steps, cfg.lr, cfg.schedule)
            if self.adversary is not None:
                progress = step / max(run.total_steps - 1, 1)
                self.adversary.scale = reversal_scale(progress, cfg.corpus_adversary)
            losses = self._step(x, mask, y, rows, run, gen)
            for k, v in losses.items():
                totals[k] += v * len(rows)
            count += len(rows)
        self._aux_loss = totals["aux"] / max(count, 1)
        self._dims_loss = totals["dims"] / max(count, 1)
        self._adv_loss = totals["adv"] / max(count, 1)
        self._cons_loss = totals["consistency"] / max(count, 1)
        self._distill_loss = totals["distill"] / max(count, 1)
        return totals["emotion"] / max(count, 1)

    def _batch(self, xs, ys: np.ndarray, idx: list[int], crop: int | None, gen: torch.Generator):
        """Variants drawn, cropped, padded, masked (SpecAugment) and moved to the device; with
        ``config.consistency`` each item twice, two different variants of the same window (the
        first views, then the second ones). Returns ``x``, ``mask``, ``y`` and the training item
        of each row."""
        cfg = self.config
        if cfg.consistency > 0:
            pairs = [pick_two_variants(xs[i], gen) for i in idx]
            if crop is not None:
                pairs = [crop_pair(a, b, crop, gen) for a, b in pairs]
            items = [a for a, _ in pairs] + [b for _, b in pairs]
            rows = idx + idx
        else:
            items = [pick_variant(xs[i], gen) for i in idx]
            if crop is not None:
                items = [random_crop(a, crop, gen) for a in items]
            rows = idx
        x, mask = pad_batch(items)
        y = torch.as_tensor(ys[rows], dtype=torch.long)
        if cfg.specaugment:
            x = spec_augment(x, gen)
        x, mask, y = x.to(self.device), mask.to(self.device), y.to(self.device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, mask, y, rows

    def _step(self, x, mask, y, idx: list[int], run: _Run, gen) -> dict[str, float]:
        """Mixup, forward, loss (with the teacher's soft targets, the auxiliary heads', the
        dimensions head's, the corpus adversary's and the two views' consistency), backward,
        optimiser and EMA step; returns each loss by name."""
        cfg, model = self.config, self.model
        perm, lam = None, 1.0
        if cfg.mixup > 0 and len(idx) > 1:
            lam = float(torch.distributions.Beta(cfg.mixup, cfg.mixup).sample())
            if cfg.consistency > 0:  # the same mixing of both views
                half = len(idx) // 2
                p = torch.randperm(half, generator=gen)
                perm = torch.cat([p, p + half]).to(self.device)
            else:
                perm = torch.randperm(len(idx), generator=gen).to(self.device)
            x = lam * x + (1 - lam) * x[perm]
            mask = mask | mask[perm]
        with torch.autocast(self.device.type, torch.bfloat16, cfg.precision == "bf16"):
            logits, aux_out, dims_out, adv_out = self._net(x, mask)
        logits = logits.float()
        loss = run.loss(logits, y, idx)
        if perm is not None:
            loss = lam * loss + (1 - lam) * run.loss(logits, y[perm], idx, perm)
        objective, aux_value, dims_value, adv_value, cons_value = loss, 0.0, 0.0, 0.0, 0.0
        distill_value = 0.0
        if self._soft_y is not None:
            kd = self._distill_losses(logits, y, idx, run, perm, lam)
            objective = (1 - cfg.distill) * loss + cfg.distill * kd
            distill_value = float(kd.detach())
        if cfg.consistency > 0:
            half = len(idx) // 2
            cons = js_divergence(logits[:half], logits[half:])
            objective = objective + cfg.consistency * cons
            cons_value = float(cons.detach())
        if self.aux_heads is not None:
            aux = self._aux_losses(aux_out, idx, perm, lam)
            objective = objective + cfg.aux_weight * aux
            aux_value = float(aux.detach())
        if self._dims_y is not None:
            dims = self._dims_losses(dims_out, idx, perm, lam)
            objective = objective + cfg.dimensions_weight * dims
            dims_value = float(dims.detach())
        if adv_out is not None:
            assert self._corpus_y is not None
            t = torch.as_tensor(self._corpus_y[idx], device=adv_out.device)
            adv = nn.functional.cross_entropy(adv_out, t)
            if perm is not None:
                adv = lam * adv + (1 - lam) * nn.functional.cross_entropy(adv_out, t[perm])
            objective = objective + adv  # the reversal scales what reaches the model
            adv_value = float(adv.detach())
        run.opt.zero_grad(set_to_none=True)
        objective.backward()
        run.opt.step()
        if self.ema is not None:
            self.ema.update(model)
        return {
            "emotion": float(loss.detach()),
            "aux": aux_value,
            "dims": dims_value,
            "adv": adv_value,
            "consistency": cons_value,
            "distill": distill_value,
        }

    def _save(self, opt, state: _Progress) -> None:
        d = self.checkpoint_dir
        if d is None or not is_main():  # one writer in a process group
            return
        d.mkdir(parents=True, exist_ok=True)
        if state.best_state is not None and state.best_epoch == state.epoch:
            save_tensors(state.best_state, d / "best.safetensors")
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(optimizer_tensors(opt))
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state.items()})
        if self.aux_heads is not None:
            tensors.update({f"aux.{k}": v for k, v in self.aux_heads.state_dict().items()})
        if self.adversary is not None:
            tensors.update({f"adv.{k}": v for k, v in self.adversary.state_dict().items()})
        save_tensors(tensors, d / "last.safetensors")
        saved = {
            "epoch": state.epoch,
            "best_epoch": state.best_epoch,
            "best_val_ua": state.best_ua,
            "history": state.history,
            "config": self.config.to_dict(),
        }
        if self.ema is not None:
            saved["ema_updates"] = self.ema.updates
        atomic_write_text(d / "state.json", json.dumps(saved, indent=1))

    def _load_resume(self, opt) -> _Progress | None:
        d = self.checkpoint_dir
        if d is None or not (d / "state.json").is_file() or not (d / "last.safetensors").is_file():
            return None
        saved = json.loads((d / "state.json").read_text())
        tensors = load_file(str(d / "last.safetensors"))
        self.model.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        load_optimizer_tensors(opt, tensors)
        self._load_extra_state(d, saved, tensors)
        best_state = None
        if (d / "best.safetensors").is_file():
            best_state = load_file(str(d / "best.safetensors"))
        console.log(f"resuming after epoch {saved['epoch']} from {d}")
        history = saved["history"]
        return _Progress(
            history=history,
            best_ua=saved["best_val_ua"],
            best_epoch=saved["best_epoch"],
            best_state=best_state,
            next_epoch=saved["epoch"] + 1,
            epoch=saved["epoch"],
            stale=len([h for h in history if h["epoch"] > saved["best_epoch"]]),
        )

    def _load_extra_state(self, d: Path, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        """The EMA, the auxiliary heads and the corpus adversary of a checkpoint (needed for an
        exact resume)."""
        if self.ema is not None:
            ema = {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
            if not ema:
                raise ValueError(
                    f"{d / 'last.safetensors'}: the checkpoint has no weight average (it was "
                    "trained without ema); resume it with the same ema setting"
                )
            self.ema.load(ema, int(state.get("ema_updates", 0)))
        heads = (
            (
                self.aux_heads,
                "aux.",
                f"the checkpoint's auxiliary heads do not fit aux_targets "
                f"{list(self.config.aux_targets)}; resume with the same setting",
            ),
            (
                self.adversary,
                "adv.",
                "the checkpoint has no corpus adversary for these corpora (trained without "
                "corpus_adversary, or on other corpora); resume with the same setting and data",
            ),
        )
        for head, prefix, mismatch in heads:
            if head is None:
                continue
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                head.load_state_dict(own)
            except RuntimeError as exc:
                raise ValueError(f"{d / 'last.safetensors'}: {mismatch}") from exc
