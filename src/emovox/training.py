"""Training: batching, augmentation, early stopping on validation UA, checkpoints, resume.

Randomness comes from per-epoch seeds (``seed``, epoch), so a run is deterministic on CPU and a
resumed run continues exactly as an uninterrupted one would. Checkpoints are safetensors + JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
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
    balance: bool = True
    val_fraction: float = 0.2
    seed: int = 0

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

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["speed_perturb"] = list(self.speed_perturb)
        return d

    @classmethod
    def for_model(cls, model_cls: type[SERModel], **overrides) -> TrainConfig:
        """The model's recommended settings, with ``overrides`` (``None`` values ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        params = {k: v for k, v in model_cls.default_training.items() if k in fields}
        params.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**params)


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

    # -- public ---------------------------------------------------------------------------------
    def fit(
        self,
        train_x: Sequence[np.ndarray],
        train_y: Sequence[int],
        val_x: Sequence[np.ndarray] | None = None,
        val_y: Sequence[int] | None = None,
        resume: bool = False,
    ) -> TrainResult:
        cfg, model = self.config, self.model
        n_classes = model.n_classes
        train_y = np.asarray(train_y, dtype=int)
        has_val = val_x is not None and len(val_x) > 0
        opt = self._optimizer()
        steps_per_epoch = math.ceil(len(train_x) / cfg.batch_size)
        total_steps = steps_per_epoch * cfg.epochs
        weight = None
        if cfg.balance:
            counts = np.bincount(train_y, minlength=n_classes).astype(float)
            w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)
            weight = torch.tensor(w, dtype=torch.float32)
        loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
        crop = (
            None if cfg.crop_seconds is None else max(1, round(cfg.crop_seconds / self.hop_seconds))
        )

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
                    if has_val:
                        val_loss, val_ua = self.evaluate(val_x, val_y, loss_fn)
                        row.update(val_loss=val_loss, val_ua=100.0 * val_ua)
                        improved = val_ua > best_ua
                    else:
                        improved = True
                    row["seconds"] = time.time() - t_epoch
                    history.append(row)
                    if improved:
                        best_ua = val_ua if has_val else -1.0
                        best_epoch, stale = epoch, 0
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
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
        """Class probabilities ``[N, n_classes]`` for full-length feature arrays."""
        return predict_proba(self.model, xs, batch_size)

    @torch.no_grad()
    def evaluate(self, xs, ys, loss_fn) -> tuple[float, float]:
        """Validation loss and UA (a fraction) on full-length utterances."""
        logits = torch.from_numpy(predict_logits(self.model, xs))
        ys_t = torch.as_tensor(np.asarray(ys), dtype=torch.long)
        loss = float(loss_fn(logits, ys_t))
        pred = logits.argmax(1).numpy()
        return loss, unweighted_accuracy(ys_t.numpy(), pred, self.model.n_classes)

    # -- internals -----------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "adam":
            return torch.optim.Adam(
                self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
            )
        return torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _epoch(self, xs, ys, opt, loss_fn, crop, epoch, steps_per_epoch, total_steps) -> float:
        cfg, model = self.config, self.model
        seed = cfg.seed * 100_003 + epoch
        torch.manual_seed(seed)  # dropout
        gen = torch.Generator().manual_seed(seed)  # order, crops, masks, mixup
        model.train()
        order = torch.randperm(len(xs), generator=gen).tolist()
        total, count = 0.0, 0
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
            step = (epoch - 1) * steps_per_epoch + b
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, cfg.lr, cfg.schedule)
            if cfg.mixup > 0 and len(idx) > 1:
                lam = float(torch.distributions.Beta(cfg.mixup, cfg.mixup).sample())
                perm = torch.randperm(len(idx), generator=gen)
                x = lam * x + (1 - lam) * x[perm]
                mask = mask | mask[perm]
                logits = model(x, mask)
                loss = lam * loss_fn(logits, y) + (1 - lam) * loss_fn(logits, y[perm])
            else:
                loss = loss_fn(model(x, mask), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
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
        _save_tensors(tensors, d / "last.safetensors")
        state = {
            "epoch": epoch,
            "best_epoch": best_epoch,
            "best_val_ua": best_ua,
            "history": history,
            "config": self.config.to_dict(),
        }
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


@torch.no_grad()
def predict_logits(model: SERModel, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """Logits for full-length feature arrays, batched by similar length."""
    model.eval()
    order = sorted(range(len(xs)), key=lambda i: xs[i].shape[-1])
    out = np.zeros((len(xs), model.n_classes), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        x, mask = pad_batch([xs[i] for i in idx])
        out[idx] = model(x, mask).numpy()
    return out


def predict_proba(model: SERModel, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """Softmax probabilities for full-length feature arrays."""
    logits = torch.from_numpy(predict_logits(model, xs, batch_size))
    return torch.softmax(logits, dim=1).numpy()


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
