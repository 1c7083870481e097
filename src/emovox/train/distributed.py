"""Training on several processes with torch's DistributedDataParallel (``torchrun``).

``torchrun --nproc-per-node N -m emovox train ...`` (or ``emovox train --nproc N``, which
launches it) starts N processes; :func:`init_from_env` joins them into one process group (gloo on
CPU, NCCL on CUDA GPUs). The :class:`~emovox.train.trainer.Trainer` then

- wraps the network in ``DistributedDataParallel`` (gradients averaged across the processes),
- gives each process its share of every epoch's shuffled order, padded to equal length as
  torch's ``DistributedSampler`` does (each process draws its crops and masks from its own
  seed),
- makes every process validate the same weights (the batch-norm statistics of process 0 are
  broadcast first), so all stop at the same epoch,
- writes checkpoints on process 0 only; ``emovox train`` saves the bundle on process 0.

The bundle is the same format as from one process, and loads anywhere.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files (rank 0, or the only process)."""
    return world()[0] == 0


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE``,
    ``RANK``, ``MASTER_ADDR``...); gloo for CPU training, NCCL for CUDA. Whether a group of more
    than one process is in use."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        backend = "nccl" if cuda and dist.is_nccl_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return True


def local_device(device: torch.device) -> torch.device:
    """This process's GPU (``LOCAL_RANK``) when training on CUDA in a group; ``device`` else."""
    if device.type == "cuda" and world()[1] > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard(order: list[int], rank: int, size: int) -> list[int]:
    """This process's share of an epoch's order: every ``size``-th item from ``rank``, the
    order first padded by repeating its start so that every process gets as many items (and
    takes as many steps) as the others."""
    per = -(-len(order) // size)
    padded = order + order[: per * size - len(order)]
    return padded[rank::size]


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Process 0's buffers (batch-norm statistics) into every process's copy."""
    if world()[1] <= 1:
        return
    for b in module.buffers():
        dist.broadcast(b.data, src=0)


def finish() -> None:
    """Leave the process group (at the end of ``emovox train``)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
