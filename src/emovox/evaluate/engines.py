"""Where the folds of an evaluation run: one after the other here, or as Ray tasks.

:func:`emovox.evaluate.runner.run` hands the folds still to do to an engine as one
:class:`FoldJob` (the data, the recipe, the plan and the test conditions, the same for every
fold) and writes each fold's files as the engine yields it, so a run stopped half-way keeps its
finished folds whichever engine ran them. A fold's numbers depend only on the fold and the
recipe's seed, so both engines give the same ``metrics.json`` (with the same number of torch
threads per fold: :class:`RayFolds` gives each task ``cpus_per_fold`` threads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from emovox.data.protocols import Fold


@dataclasses.dataclass
class FoldJob:
    """What every fold of a run shares; calling it with a fold trains and scores that fold with
    ``run_fold`` (:func:`emovox.evaluate.runner.run_fold`, given by the runner).

    The fold's trained model is saved in ``out/fold_N/<model_folder>`` (on a cluster, ``out``
    must be a folder every node can write, or the models stay on the nodes that trained them).
    """

    run_fold: Callable
    data: object
    recipe: object
    plan: object
    out: Path
    scorer: object | None = None
    progress: bool = True
    model_folder: str = "model"

    def __call__(self, fold: Fold):
        return self.run_fold(
            self.data,
            fold,
            self.recipe,
            self.plan,
            progress=self.progress,
            scorer=self.scorer,
            model_dir=self.out / f"fold_{fold.index}" / self.model_folder,
        )


class LocalFolds:
    """The folds one after the other, in this process."""

    name = "local"

    def run(self, job: FoldJob, folds: Sequence[Fold]) -> Iterator[tuple[Fold, object, list]]:
        for fold in folds:
            result, rows = job(fold)
            yield fold, result, rows


class RayFolds:
    """The folds as Ray tasks, in parallel across a cluster's CPUs (a local Ray when no
    ``address`` is given, started here and stopped at the end).

    Args:
        address: the Ray cluster to join.
        cpus_per_fold: CPUs (and torch threads) each fold's task takes.
        num_cpus: CPUs of a local Ray (default: all).
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, cpus_per_fold: int = 1, num_cpus: int | None = None
    ) -> None:
        if cpus_per_fold < 1:
            raise ValueError(f"cpus_per_fold must be >= 1, not {cpus_per_fold}")
        self.address, self.cpus_per_fold, self.num_cpus = address, cpus_per_fold, num_cpus

    def run(self, job: FoldJob, folds: Sequence[Fold]) -> Iterator[tuple[Fold, object, list]]:
        from emovox.inference.ray_scoring import _ray

        ray = _ray()
        started = not ray.is_initialized()
        if started:
            ray.init(
                address=self.address,
                num_cpus=self.num_cpus if self.address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
        try:
            task = ray.remote(num_cpus=self.cpus_per_fold)(_run_fold_task)
            shared = ray.put(job)  # the features once into the object store, not once per fold
            pending = {
                task.remote(shared, fold, self.cpus_per_fold): fold for fold in folds
            }
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                fold = pending.pop(ready[0])
                result, rows = ray.get(ready[0])
                yield fold, result, rows
        finally:
            if started:
                ray.shutdown()


def _run_fold_task(job: FoldJob, fold: Fold, threads: int):
    import torch

    torch.set_num_threads(threads)
    return job(fold)


ENGINES = ("local", "ray")
"""The names of ``emovox evaluate --engine``."""


def make_engine(name: str, address: str | None = None, cpus_per_fold: int = 1):
    """The engine called ``name`` (:data:`ENGINES`).

    Raises:
        ValueError: an unknown name, or ``address`` without ``ray``.
    """
    if name == "local":
        if address:
            raise ValueError("--address goes with --engine ray")
        return LocalFolds()
    if name == "ray":
        return RayFolds(address, cpus_per_fold)
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {name!r}")
