"""``emovox data``: inspect corpora."""

from __future__ import annotations

import json
from pathlib import Path

import click

from emovox.apps.cli.options import command_line, load_specs


@click.group()
def data() -> None:
    """Inspect corpora."""


@data.command("summary")
@click.argument("paths", nargs=-1, required=True, metavar="PATH | CORPUS:PATH ...")
@click.option("--corpus", default="ravdess", show_default=True, help="Recipe of bare PATHs.")
@click.option("--save", type=click.Path(), help="Also save the manifest (.csv or .jsonl).")
@click.option("--no-duration", is_flag=True, help="Skip reading headers for the total duration.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write it as JSON.")
def data_summary(
    paths: tuple[str, ...], corpus: str, save: str | None, no_duration: bool, json_out: str | None
) -> None:
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
    summary = print_summary(manifest, durations=not no_duration)
    if json_out:
        from emovox._fs import atomic_write_text

        doc = {"command": command_line(), **summary}
        atomic_write_text(json_out, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        click.echo(f"wrote {json_out}", err=True)


COMMAND = data
