"""Training: batching, augmentation, early stopping on validation UA, checkpoints, resume.

Randomness comes from per-epoch seeds (``seed``, epoch), so a run is deterministic on CPU and a
resumed run continues exactly as an uninterrupted one would. Checkpoints are safetensors + JSON.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from emovox._fs import atomic_write_text
from emovox.metrics import unweighted_accuracy
from emovox.models.base import SERModel
from emovox.progress import console, progress_bar

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "onecycle", "cosine")
PRECISIONS = ("fp32", "bf16")
AUX_TARGETS: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male"),
    "intensity": ("normal", "strong"),
}
"""Auxiliary targets (``TrainConfig.aux_targets``) -> their classes. ``gender`` is the manifest's
column; ``intensity`` is the corpus field of that name (RAVDESS). Other values count as unknown."""


@dataclasses.dataclass
class TrainConfig:
    """Training settings; every field is saved with the model and in ``metrics.json``."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    patience: int = 10
    crop_seconds: float | None = 2.0
    specaugment: bool = True
    mixup: float = 0.0
    label_smoothing: float = 0.0
    speed_perturb: tuple[float, ...] = ()
    augment: tuple[str, ...] = ()
    """Waveform augmentations among :data:`emovox.augment.AUGMENT_KINDS` (a tuple, or a comma-
    separated string) for the ``augment_copies`` extra copies of every training file."""
    augment_copies: int = 0
    """How many randomly augmented copies of each file join its variants (one drawn per epoch)."""
    balance: bool = True
    val_fraction: float = 0.2
    seed: int = 0
    ema: float = 0.0
    """Decay of an exponential moving average of the weights (0: off). When on, validation, the
    best checkpoint and the final model use the averaged weights."""
    aux_targets: tuple[str, ...] = ()
    """Auxiliary tasks among :data:`AUX_TARGETS` (a tuple, or a comma-separated string)."""
    aux_weight: float = 0.3
    """Weight of each auxiliary head's loss, added to the emotion loss."""
    test_crops: int = 1
    """Average the softmax over this many evenly spaced ``crop_seconds`` windows at prediction."""
    speaker_norm: bool = False
    """Normalise features per bin by each speaker's own mean and std (see
    :mod:`emovox.normalization`)."""
    precision: str = "fp32"
    """``fp32``, or ``bf16``: forward passes under bfloat16 autocast (weights, optimiser and loss
    stay in float32). Several times faster on CPUs with AMX or AVX-512 BF16 and on recent GPUs;
    slower on CPUs without them. Prediction always runs in float32."""
    channels_last: bool = False
    """Keep 4-D activations in channels-last memory order while training (same arithmetic;
    often faster for 2-D convolutions on CPU). The saved weights are unaffected."""
    device: str = "cpu"
    """Where the network trains: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (CUDA when
    available). Batches are drawn on the CPU exactly as there, so the run differs from a CPU run
    only by the device's arithmetic; the trained model is always returned on the CPU."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        self.speed_perturb = tuple(float(s) for s in self.speed_perturb)
        if any(s <= 0 for s in self.speed_perturb):
            raise ValueError("speed_perturb factors must be positive")
        self._check_augment()
        self._check_options()

    def _check_options(self) -> None:
        """Validate (and normalise) ``ema``, ``aux_targets``, ``aux_weight``, ``test_crops`` and
        ``speaker_norm``."""
        self.ema = float(self.ema)
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be a decay in [0, 1) (0: off), not {self.ema}")
        targets = self.aux_targets
        if isinstance(targets, str):
            targets = [t for t in (p.strip() for p in targets.split(",")) if t]
        self.aux_targets = tuple(dict.fromkeys(str(t) for t in targets))
        unknown = [t for t in self.aux_targets if t not in AUX_TARGETS]
        if unknown:
            raise ValueError(f"aux_targets {unknown} unknown; choose among {sorted(AUX_TARGETS)}")
        self.aux_weight = float(self.aux_weight)
        if self.aux_weight < 0:
            raise ValueError("aux_weight must be >= 0")
        if isinstance(self.test_crops, bool) or int(self.test_crops) != self.test_crops:
            raise ValueError(f"test_crops must be a whole number, not {self.test_crops!r}")
        self.test_crops = int(self.test_crops)
        if self.test_crops < 1:
            raise ValueError("test_crops must be >= 1")
        if self.test_crops > 1 and self.crop_seconds is None:
            raise ValueError("test_crops > 1 needs crop_seconds (the length of each window)")
        self.speaker_norm = _flag("speaker_norm", self.speaker_norm)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        self.channels_last = _flag("channels_last", self.channels_last)
        self.device = str(self.device).strip().lower()
        if not re.fullmatch(r"cpu|auto|mps|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be cpu, cuda, cuda:N, mps or auto, not {self.device!r}")

    def _check_augment(self) -> None:
        """Validate (and normalise) ``augment`` and ``augment_copies``."""
        from emovox.augment import check_kinds

        self.augment = check_kinds(self.augment)
        copies = self.augment_copies
        if isinstance(copies, bool) or int(copies) != copies or copies < 0:
            raise ValueError(f"augment_copies must be a whole number >= 0, not {copies!r}")
        self.augment_copies = int(copies)
        if self.augment and not self.augment_copies:
            raise ValueError(
                f"augment={','.join(self.augment)} needs augment_copies >= 1 (how many "
                f"augmented copies of each file to train on)"
            )
        if self.augment_copies and not self.augment:
            raise ValueError(
                "augment_copies needs augment (a comma list of noise, gain, pitch, reverb)"
            )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["speed_perturb"] = list(self.speed_perturb)
        d["augment"] = list(self.augment)
        d["aux_targets"] = list(self.aux_targets)
        return d

    @classmethod
    def for_model(cls, model_cls: type[SERModel], **overrides) -> TrainConfig:
        """The model's recommended settings, with ``overrides`` (``None`` values ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        params = {k: v for k, v in model_cls.default_training.items() if k in fields}
        params.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**params)


def _flag(name: str, value) -> bool:
    """A true/false setting, also as the strings ``"true"``/``"false"`` of the command line.

    Raises:
        ValueError: anything else (the setting named).
    """
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


def resolve_device(name: str) -> torch.device:
    """The torch device for :attr:`TrainConfig.device` (``auto``: CUDA when available).

    Raises:
        ValueError: the device is not available on this machine (named in the message).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but torch sees no CUDA GPU here")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for, but torch sees no Apple GPU here")
    return dev


def model_device(model: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for one with neither)."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        return t.device
    return torch.device("cpu")


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the last good checkpoint was kept."""

    def __init__(self, epoch: int, checkpoint: Path | None) -> None:
        self.epoch, self.checkpoint = epoch, checkpoint
        super().__init__(f"training interrupted during epoch {epoch}")


# -- batching ----------------------------------------------------------------------------------
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


def random_crop(a: np.ndarray, frames: int, gen: torch.Generator) -> np.ndarray:
    """A random window of ``frames`` frames (zero-padded when the utterance is shorter)."""
    t = a.shape[-1]
    if t <= frames:
        return np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, frames - t)])
    start = int(torch.randint(0, t - frames + 1, (1,), generator=gen))
    return a[..., start : start + frames]


def spec_augment(
    x: torch.Tensor,
    gen: torch.Generator,
    n_freq: int = 2,
    n_time: int = 2,
    max_freq: float = 0.15,
    max_time: float = 0.1,
) -> torch.Tensor:
    """SpecAugment-style masks: ``n_freq`` bands and ``n_time`` spans set to zero per example."""
    b, _, f, t = x.shape
    x = x.clone()
    for i in range(b):
        for _ in range(n_freq):
            w = int(torch.randint(0, max(1, int(f * max_freq)) + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, f - w + 1), (1,), generator=gen))
            x[i, :, s : s + w, :] = 0.0
        for _ in range(n_time):
            w = int(torch.randint(0, max(1, int(t * max_time)) + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, t - w + 1), (1,), generator=gen))
            x[i, :, :, s : s + w] = 0.0
    return x


def lr_at(step: int, total: int, base: float, schedule: str) -> float:
    """Learning rate at ``step`` of ``total`` (one-cycle: 30 % warm-up, then cosine to ~0)."""
    if schedule == "constant" or total <= 1:
        return base
    frac = step / total
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * frac))
    warm = 0.3
    if frac < warm:
        return base * (0.04 + 0.96 * frac / warm)
    return base * (0.5 * (1 + math.cos(math.pi * (frac - warm) / (1 - warm))) + 1e-3)


# -- the trainer -------------------------------------------------------------------------------
@dataclasses.dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int
    best_val_ua: float | None
    seconds: float
    interrupted: bool = False


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
    ) -> TrainResult:
        """Train, validating after every epoch; the model ends with its best weights.

        Args:
            train_x: ``[S, F, T]`` arrays, or tuples of variants (one is drawn per epoch).
            train_y: class indices.
            val_x, val_y: the validation set (none: every epoch counts as the best).
            resume: continue from ``checkpoint_dir`` when it holds a checkpoint.
            aux_y: for each of ``config.aux_targets``, one class index per training item
                (:func:`aux_labels`; ``-1`` where unknown, ignored by that head's loss).

        Raises:
            TrainingInterrupted: Ctrl-C (the best weights so far are in the model).
            ValueError: ``aux_y`` lacks a target of ``config.aux_targets`` or has the wrong length.
        """
        cfg, model = self.config, self.model
        n_classes = model.n_classes
        train_y = np.asarray(train_y, dtype=int)
        self.device = resolve_device(cfg.device)
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.aux_heads is not None:
            self.aux_heads.to(self.device)
        self._aux_y = self._check_aux_y(aux_y, len(train_x))
        self.ema = WeightEMA(model, cfg.ema) if cfg.ema > 0 else None
        has_val = val_x is not None and len(val_x) > 0
        opt = self._optimizer()
        steps_per_epoch = math.ceil(len(train_x) / cfg.batch_size)
        total_steps = steps_per_epoch * cfg.epochs
        weight = None
        if cfg.balance:
            counts = np.bincount(train_y, minlength=n_classes).astype(float)
            w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)
            weight = torch.tensor(w, dtype=torch.float32, device=self.device)
        loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
        crop = crop_frames(cfg.crop_seconds, self.hop_seconds)

        history: list[dict] = []
        best_ua, best_epoch, best_state = -1.0, 0, None
        start_epoch = 1
        if resume:
            loaded = self._load_resume(opt)
            if loaded is not None:
                history, best_ua, best_epoch, best_state, start_epoch = loaded
        t0 = time.time()
        epoch = start_epoch
        interrupted = False
        stale = len([h for h in history if h["epoch"] > best_epoch])
        try:
            with progress_bar(cfg.epochs, "train", enabled=self.progress) as bar:
                bar.advance(start_epoch - 1)
                for epoch in range(start_epoch, cfg.epochs + 1):
                    if stale >= cfg.patience:
                        break
                    t_epoch = time.time()
                    loss = self._epoch(
                        train_x, train_y, opt, loss_fn, crop, epoch, steps_per_epoch, total_steps
                    )
                    row = {"epoch": epoch, "train_loss": loss, "lr": opt.param_groups[0]["lr"]}
                    if self.aux_heads is not None:
                        row["aux_loss"] = self._aux_loss
                    with self._averaged_weights():
                        if has_val:
                            val_loss, val_ua = self.evaluate(val_x, val_y, loss_fn)
                            row.update(val_loss=val_loss, val_ua=100.0 * val_ua)
                            improved = val_ua > best_ua
                        else:
                            improved = True
                        if improved:
                            best_state = {
                                k: v.detach().clone() for k, v in model.state_dict().items()
                            }
                    row["seconds"] = time.time() - t_epoch
                    history.append(row)
                    if improved:
                        best_ua = val_ua if has_val else -1.0
                        best_epoch, stale = epoch, 0
                    else:
                        stale += 1
                    self._save(opt, history, best_ua, best_epoch, best_state, epoch)
                    status = f"loss {loss:.3f}" + (
                        f" val UA {row['val_ua']:.1f} (best {100 * best_ua:.1f} @ {best_epoch})"
                        if has_val
                        else ""
                    )
                    bar.describe(status)
                    bar.advance(1)
                    if self.progress and not sys.stderr.isatty():
                        console.log(f"epoch {epoch}/{cfg.epochs} {status}")
        except KeyboardInterrupt:
            interrupted = True
        if best_state is not None:
            model.load_state_dict(best_state)
        model.to("cpu", memory_format=torch.contiguous_format)
        if self.aux_heads is not None:
            self.aux_heads.to("cpu")
        model.eval()
        result = TrainResult(
            history=history,
            best_epoch=best_epoch,
            best_val_ua=100.0 * best_ua if has_val and best_ua >= 0 else None,
            seconds=time.time() - t0,
            interrupted=interrupted,
        )
        if interrupted:
            raise TrainingInterrupted(epoch, self.checkpoint_dir) from None
        return result

    @torch.no_grad()
    def predict_proba(self, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``[N, n_classes]`` of the model as it is (full-length feature
        arrays, or the mean over ``config.test_crops`` windows)."""
        crop = crop_frames(self.config.crop_seconds, self.hop_seconds)
        return predict_proba(self.model, xs, batch_size, self.config.test_crops, crop)

    @torch.no_grad()
    def evaluate(self, xs, ys, loss_fn) -> tuple[float, float]:
        """Validation loss and UA (a fraction) on full-length utterances (with
        ``config.test_crops > 1``: on the mean probabilities over the windows, as at test time)."""
        if self.config.test_crops > 1:
            proba = torch.from_numpy(self.predict_proba(xs)).double()
            logits = torch.log(proba.clamp_min(1e-12)).float()  # softmax(log p) == p
        else:
            logits = torch.from_numpy(predict_logits(self.model, xs))
        ys_t = torch.as_tensor(np.asarray(ys), dtype=torch.long)
        loss = float(loss_fn(logits.to(self.device), ys_t.to(self.device)))
        pred = logits.argmax(1).numpy()
        return loss, unweighted_accuracy(ys_t.numpy(), pred, self.model.n_classes)

    # -- internals -----------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        params = list(self.model.parameters())
        if self.aux_heads is not None:
            params += list(self.aux_heads.parameters())  # after the model's: ids stay as before
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
                    "(build it with emovox.training.aux_labels)"
                )
            arr = np.asarray(aux_y[name], dtype=np.int64)
            if arr.shape != (n,):
                raise ValueError(f"aux_y[{name!r}] has {arr.shape} entries for {n} items")
            n_cls = len(AUX_TARGETS[name])
            if ((arr < -1) | (arr >= n_cls)).any():
                raise ValueError(f"aux_y[{name!r}] holds values outside -1..{n_cls - 1}")
            out[name] = arr
        return out

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

    def _aux_losses(self, emb: torch.Tensor, idx: list[int], perm, lam: float) -> torch.Tensor:
        """Sum over the heads of their cross-entropy on the items whose target is known (mixed
        with ``perm``/``lam`` as the emotion targets are under mixup)."""
        assert self.aux_heads is not None
        emb = emb.float()  # bf16 under autocast; the heads train in float32
        total = emb.new_zeros(())
        for name, head in self.aux_heads.items():
            out = head(emb)
            t = torch.as_tensor(self._aux_y[name][idx], dtype=torch.long, device=emb.device)
            if perm is None:
                total = total + _known_ce(out, t)
            else:
                total = total + lam * _known_ce(out, t) + (1 - lam) * _known_ce(out, t[perm])
        return total

    def _epoch(self, xs, ys, opt, loss_fn, crop, epoch, steps_per_epoch, total_steps) -> float:
        cfg, model = self.config, self.model
        seed = cfg.seed * 100_003 + epoch
        torch.manual_seed(seed)  # dropout
        gen = torch.Generator().manual_seed(seed)  # order, crops, masks, mixup
        model.train()
        order = torch.randperm(len(xs), generator=gen).tolist()
        total, count, aux_total = 0.0, 0, 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if not idx:
                break
            items = [_pick_variant(xs[i], gen) for i in idx]
            if crop is not None:
                items = [random_crop(a, crop, gen) for a in items]
            x, mask = pad_batch(items)
            y = torch.as_tensor(ys[idx], dtype=torch.long)
            if cfg.specaugment:
                x = spec_augment(x, gen)
            x, mask, y = x.to(self.device), mask.to(self.device), y.to(self.device)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            step = (epoch - 1) * steps_per_epoch + b
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, cfg.lr, cfg.schedule)
            perm, lam = None, 1.0
            if cfg.mixup > 0 and len(idx) > 1:
                lam = float(torch.distributions.Beta(cfg.mixup, cfg.mixup).sample())
                perm = torch.randperm(len(idx), generator=gen).to(self.device)
                x = lam * x + (1 - lam) * x[perm]
                mask = mask | mask[perm]
            with (
                _capture_embedding(model, self.aux_heads is not None) as captured,
                torch.autocast(self.device.type, torch.bfloat16, cfg.precision == "bf16"),
            ):
                logits = model(x, mask)
            logits = logits.float()
            if perm is not None:
                loss = lam * loss_fn(logits, y) + (1 - lam) * loss_fn(logits, y[perm])
            else:
                loss = loss_fn(logits, y)
            objective = loss
            if self.aux_heads is not None:
                emb = captured[0] if captured else model.embed(x, mask)
                aux = self._aux_losses(emb, idx, perm, lam)
                objective = loss + cfg.aux_weight * aux
                aux_total += float(aux.detach()) * len(idx)
            opt.zero_grad(set_to_none=True)
            objective.backward()
            opt.step()
            if self.ema is not None:
                self.ema.update(model)
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        self._aux_loss = aux_total / max(count, 1)
        return total / max(count, 1)

    def _save(self, opt, history, best_ua, best_epoch, best_state, epoch) -> None:
        d = self.checkpoint_dir
        if d is None:
            return
        d.mkdir(parents=True, exist_ok=True)
        if best_state is not None and best_epoch == epoch:
            _save_tensors(best_state, d / "best.safetensors")
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(_optimizer_tensors(opt))
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state.items()})
        if self.aux_heads is not None:
            tensors.update({f"aux.{k}": v for k, v in self.aux_heads.state_dict().items()})
        _save_tensors(tensors, d / "last.safetensors")
        state = {
            "epoch": epoch,
            "best_epoch": best_epoch,
            "best_val_ua": best_ua,
            "history": history,
            "config": self.config.to_dict(),
        }
        if self.ema is not None:
            state["ema_updates"] = self.ema.updates
        atomic_write_text(d / "state.json", json.dumps(state, indent=1))

    def _load_resume(self, opt):
        d = self.checkpoint_dir
        if d is None or not (d / "state.json").is_file() or not (d / "last.safetensors").is_file():
            return None
        state = json.loads((d / "state.json").read_text())
        tensors = load_file(str(d / "last.safetensors"))
        self.model.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        _load_optimizer_tensors(opt, tensors)
        self._load_extra_state(d, state, tensors)
        best_state = None
        if (d / "best.safetensors").is_file():
            best_state = load_file(str(d / "best.safetensors"))
        console.log(f"resuming after epoch {state['epoch']} from {d}")
        return (
            state["history"],
            state["best_val_ua"],
            state["best_epoch"],
            best_state,
            state["epoch"] + 1,
        )

    def _load_extra_state(self, d: Path, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        """The EMA and the auxiliary heads of a checkpoint (needed for an exact resume)."""
        if self.ema is not None:
            ema = {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
            if not ema:
                raise ValueError(
                    f"{d / 'last.safetensors'}: the checkpoint has no weight average (it was "
                    "trained without ema); resume it with the same ema setting"
                )
            self.ema.load(ema, int(state.get("ema_updates", 0)))
        if self.aux_heads is not None:
            aux = {k[len("aux.") :]: v for k, v in tensors.items() if k.startswith("aux.")}
            try:
                self.aux_heads.load_state_dict(aux)
            except RuntimeError as exc:
                raise ValueError(
                    f"{d / 'last.safetensors'}: the checkpoint's auxiliary heads do not fit "
                    f"aux_targets {list(self.config.aux_targets)}; resume with the same setting"
                ) from exc


class WeightEMA:
    """An exponential moving average of a model's weights.

    After every optimiser step, each floating-point parameter's average moves towards it,
    ``avg = d * avg + (1 - d) * param``, with ``d = min(decay, (1 + n) / (10 + n))`` at the
    ``n``-th update (so the first updates do not keep the random initial weights for long);
    buffers (batch-norm statistics, counters) are copied as they are. :attr:`state` is a full
    ``state_dict`` of the model, ready for ``load_state_dict``.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.updates = 0
        self.params = {name for name, _ in model.named_parameters()}
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        d = self.current_decay()
        for k, v in model.state_dict().items():
            avg = self.state[k]
            if k in self.params and v.is_floating_point():
                avg.mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                avg.copy_(v)
        self.updates += 1

    def load(self, state: dict[str, torch.Tensor], updates: int) -> None:
        """Restore an average saved from :attr:`state` after ``updates`` updates."""
        missing = set(self.state) - set(state)
        if missing:
            raise ValueError(f"the saved weight average lacks {sorted(missing)[:5]}")
        self.state = {
            k: state[k].detach().clone().to(self.state[k].device, self.state[k].dtype)
            for k in self.state
        }
        self.updates = updates


def embed_dim(model: SERModel) -> int:
    """The width of ``model.embed(x, mask)``: ``model.embed_dim``, or measured on a dummy input.

    Raises:
        ValueError: the model has no ``embed`` method.
    """
    if not callable(getattr(model, "embed", None)):
        raise ValueError(
            f"model {getattr(model, 'name', type(model).__name__)!r} has no embed(x, mask) "
            "method, which auxiliary heads (aux_targets) need; train it without aux_targets"
        )
    dim = getattr(model, "embed_dim", None)
    if isinstance(dim, int):
        return dim
    was_training = model.training
    model.eval()
    with torch.no_grad():
        s, f = model.in_shape
        out = model.embed(torch.zeros(1, s, f, 64), torch.ones(1, 64, dtype=torch.bool))
    model.train(was_training)
    return int(out.shape[-1])


def make_aux_heads(model: SERModel, targets: Sequence[str], seed: int = 0) -> nn.ModuleDict:
    """One linear layer per auxiliary target on the model's embedding (initialised from
    ``seed`` without touching the global random state)."""
    dim = embed_dim(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 7919)
        return nn.ModuleDict({t: nn.Linear(dim, len(AUX_TARGETS[t])) for t in targets})


def aux_labels(utterances: Sequence, targets: Sequence[str]) -> dict[str, np.ndarray]:
    """For each target of :data:`AUX_TARGETS`, the class index of every utterance (``-1`` where
    the manifest does not know it): ``gender`` from the column, others from the corpus fields."""
    out = {}
    for name in targets:
        if name not in AUX_TARGETS:
            raise ValueError(f"unknown aux target {name!r}; choose among {sorted(AUX_TARGETS)}")
        index = {c: i for i, c in enumerate(AUX_TARGETS[name])}
        out[name] = np.array(
            [index.get(str(u.get(name, "")).strip().lower(), -1) for u in utterances],
            dtype=np.int64,
        )
    return out


@contextmanager
def _capture_embedding(model: nn.Module, enabled: bool) -> Iterator[list[torch.Tensor]]:
    """Record what ``model.embed`` returns during the block (for heads on the same forward pass,
    without running the network twice). Stays empty if the model's forward does not call it."""
    captured: list[torch.Tensor] = []
    if not enabled:
        yield captured
        return
    original = model.embed

    def embed(*args, **kwargs):
        out = original(*args, **kwargs)
        captured.append(out)
        return out

    model.__dict__["embed"] = embed
    try:
        yield captured
    finally:
        del model.__dict__["embed"]


def _known_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the items whose target is not ``-1`` (0 when none is known)."""
    known = int((target >= 0).sum())
    if known == 0:
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits, target, ignore_index=-1, reduction="sum") / known


@torch.no_grad()
def predict_logits(model: SERModel, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """Logits for full-length feature arrays, batched by similar length."""
    model.eval()
    device = model_device(model)
    order = sorted(range(len(xs)), key=lambda i: xs[i].shape[-1])
    out = np.zeros((len(xs), model.n_classes), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        x, mask = pad_batch([xs[i] for i in idx])
        out[idx] = model(x.to(device), mask.to(device)).cpu().numpy()
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


def _pick_variant(item, gen: torch.Generator) -> np.ndarray:
    """An array as is, or one of a tuple of augmented variants, drawn at random."""
    if isinstance(item, (list, tuple)):
        return item[int(torch.randint(0, len(item), (1,), generator=gen))]
    return item


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for pid, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            out[f"optim.{pid}.{key}"] = torch.as_tensor(value).clone()
    return out


def _load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if not name.startswith("optim."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)
