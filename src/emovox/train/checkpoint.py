"""Training checkpoints: tensors (model, optimiser, EMA, auxiliary heads) as safetensors."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file

from emovox._fs import atomic_write_text

RUN_FILE = "run.json"
"""What a resumable folder was started with (model, feature, labels, data, ...)."""

_NAMES = {"model_params": "model parameters", "data": "data (files, speakers or labels)"}


def check_unclaimed(
    folder: str | os.PathLike, marks: Sequence[str], *, resume: bool, overwrite: bool
) -> None:
    """Refuse to start a new run in ``folder`` over an earlier run's results (any of ``marks``,
    paths inside it) unless told to continue it (``resume``) or to replace it (``overwrite``).

    Raises:
        FileExistsError: naming the folder, what marks the earlier run and the two ways on.
    """
    if resume or overwrite:
        return
    found = [m for m in marks if (Path(folder) / m).exists()]
    if found:
        raise FileExistsError(
            f"{folder}: holds an earlier run ({found[0]}); continue it with --resume "
            "(resume=True) or replace it with --overwrite (overwrite=True)"
        )


def check_resumable(folder: Path, run: dict, resume: bool) -> None:
    """Record what this run is (``folder/run.json``); with ``resume``, refuse a folder that was
    started with another model, feature, label set, data or protocol.

    Raises:
        ValueError: resuming would continue another run (the message says what differs).
    """
    path = Path(folder) / RUN_FILE
    if resume and path.is_file():
        saved = json.loads(path.read_text())
        differ = [_NAMES.get(k, k) for k in run if k in saved and saved[k] != run[k]]
        if differ:
            raise ValueError(
                f"{folder}: it was started with other {', '.join(differ)}; resume with the "
                "command that started it, or write into a new --out"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(run, indent=1))


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for pid, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            out[f"optim.{pid}.{key}"] = torch.as_tensor(value).clone()
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if not name.startswith("optim."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)
