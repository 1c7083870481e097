"""``emovox train``: train a model on one corpus or the union of several."""

from __future__ import annotations

import json
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
def train(corpus, data, out, resume, train_specs, **options) -> None:
    """Train a model; validation speakers are held out of the training speakers."""
    from emovox.train.pipeline import train as train_model
    from emovox.train.trainer import TrainingInterrupted

    if data is not None and train_specs:
        raise click.UsageError("use either --data or --train, not both")
    check_target(out, folder=True)
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
        )
    except TrainingInterrupted as exc:
        click.echo(
            f"\ninterrupted in epoch {exc.epoch}: the best model so far is saved in {out}; "
            f"continue with the same command and --resume",
            err=True,
        )
        sys.exit(130)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    cfg = json.loads((Path(path) / "config.json").read_text())
    res = cfg["training_result"]
    val = f", validation UA {res['best_val_ua']:.1f} %" if res["best_val_ua"] is not None else ""
    click.echo(f"saved {path} (best epoch {res['best_epoch']}{val})")


COMMAND = train
