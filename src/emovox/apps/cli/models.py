"""``emovox models``: the models that ship with emovox, and whether each can run here."""

from __future__ import annotations

import json

import click


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model, as a list.")
def models(as_json: bool) -> None:
    """List the models that ship with emovox (`--model NAME`): classes, size, what each reads
    from this machine, and whether it is ready. Nothing is loaded or downloaded.

    \b
    emovox models
    emovox predict --model fast-7 clip.wav   # a shipped model by its name
    """
    import dataclasses

    from emovox.pretrained import shipped_models

    found = shipped_models()
    if as_json:
        rows = [{**dataclasses.asdict(m), "ready": m.ready} for m in found]
        click.echo(json.dumps(rows, indent=2))
        return
    for m in found:
        state = "ready" if m.ready else "not ready"
        extra = "; arousal and valence" if m.dimensions else ""
        click.echo(f"{m.name}  [{state}]  {m.description}")
        click.echo(
            f"    {len(m.labels)} classes ({', '.join(m.labels)}){extra}; "
            f"{m.size_bytes / 1e6:.2f} MB in {m.path}"
        )
        if m.needs:
            click.echo(f"    reads {m.needs} from this machine")
        if m.problem:
            click.echo(f"    {m.problem}")


COMMAND = models
