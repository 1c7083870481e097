"""``emovox train``: train a model on one corpus or the union of several."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from emovox.apps.cli.options import (
    TrainingSetup,
    check_target,
    command_line,
    manifest_of,
    training_command,
)


@training_command(
    out_help="Model folder to write.",
    resume_help="Continue an interrupted run in --out.",
    train_help="Training corpus (repeatable), instead of --data: trains on the union of the "
    "corpora.",
)
@click.option(
    "--nproc",
    type=int,
    default=1,
    show_default=True,
    help="Train on N processes with DistributedDataParallel (launches torchrun; gloo on CPU, "
    "NCCL on GPUs). `torchrun --nproc-per-node N -m emovox train ...` does the same.",
)
def train(corpus, data, out, resume, overwrite, train_specs, nproc, **options) -> None:
    """Train a model; validation speakers are held out of the training speakers."""
    from emovox.train.checkpoint import check_unclaimed
    from emovox.train.distributed import finish, init_from_env, is_main
    from emovox.train.pipeline import TRAINING_MARKS
    from emovox.train.pipeline import train as train_model
    from emovox.train.trainer import TrainingInterrupted

    if data is not None and train_specs:
        raise click.UsageError("use either --data or --train, not both")
    if nproc < 1:
        raise click.UsageError("--nproc must be at least 1")
    if nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        try:  # refused here, before the processes start
            check_unclaimed(out, TRAINING_MARKS, resume=resume, overwrite=overwrite)
        except FileExistsError as exc:
            raise click.ClickException(str(exc)) from exc
        _launch(nproc)
        return
    check_target(out, folder=True)
    device = next((v.split("=", 1)[1] for v in options.get("train_params") or ()
                   if v.startswith("device=")), "cpu")
    init_from_env(device)
    manifest = manifest_of(corpus, data, train_specs)
    setup = TrainingSetup.from_options(options, manifest)
    try:
        path = train_model(
            manifest,
            setup.scheme,
            setup.recipe,
            out,
            cache=setup.cache,
            resume=resume,
            progress=setup.progress,
            metadata={"command": command_line()},
            overwrite=overwrite,
        )
    except TrainingInterrupted as exc:
        click.echo(
            f"\ninterrupted in epoch {exc.epoch}: the best model so far is saved in {out}; "
            f"continue with the same command and --resume",
            err=True,
        )
        sys.exit(130)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc
    main_process = is_main()
    finish()
    if not main_process:
        return
    cfg = json.loads((Path(path) / "config.json").read_text())
    res = cfg["training_result"]
    val = f", validation UA {res['best_val_ua']:.1f} %" if res["best_val_ua"] is not None else ""
    by_corpus = res.get("best_val_ua_by_corpus") or {}
    if by_corpus:
        val += " (" + ", ".join(f"{c} {ua:.1f}" for c, ua in by_corpus.items()) + ")"
    click.echo(f"saved {path} (best epoch {res['best_epoch']}{val})")


def _launch(nproc: int) -> None:
    """Run this same command on ``nproc`` processes through torchrun (``--nproc`` dropped)."""
    from torch.distributed.run import main as torchrun

    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    click.echo(f"training on {nproc} processes (torchrun)", err=True)
    torchrun(["--standalone", "--nproc-per-node", str(nproc), "-m", "emovox", *args])


COMMAND = train
