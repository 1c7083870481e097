"""``emovox data``: inspect corpora."""

from __future__ import annotations

from pathlib import Path

import click

from emovox.apps.cli.options import load_specs


@click.group()
def data() -> None:
    """Inspect corpora."""


@data.command("summary")
@click.argument("paths", nargs=-1, required=True, metavar="PATH | CORPUS:PATH ...")
@click.option("--corpus", default="ravdess", show_default=True, help="Recipe of bare PATHs.")
@click.option("--save", type=click.Path(), help="Also save the manifest (.csv or .jsonl).")
@click.option("--no-duration", is_flag=True, help="Skip reading headers for the total duration.")
def data_summary(paths: tuple[str, ...], corpus: str, save: str | None, no_duration: bool) -> None:
    """Utterances per label, speaker, gender and corpus, and the total duration.

    Several corpora at once: ``emovox data summary ravdess:DIR emodb:DIR``.
    """
    from emovox.data.summary import print_summary

    specs = [p if ":" in p and not Path(p).exists() else f"{corpus}:{p}" for p in paths]
    for spec in specs:
        path = spec.partition(":")[2]
        if not Path(path).expanduser().exists():
            raise click.UsageError(f"no such file or folder: {path}")
    manifest = load_specs(specs)
    if save:
        manifest.save(save)
    print_summary(manifest, durations=not no_duration)


COMMAND = data
