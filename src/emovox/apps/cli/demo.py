"""``emovox demo`` and ``emovox demo-clip``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("-o", "--out", default="demo_out", show_default=True, type=click.Path())
@click.option("--quiet", is_flag=True)
def demo(out: str, quiet: bool) -> None:
    """Make a small synthetic corpus, train a model on it, evaluate it and predict with it."""
    from emovox.apps.cli.options import check_target
    from emovox.apps.demo import run_demo

    check_target(out, folder=True)
    run_demo(Path(out), progress=not quiet)


@click.command("demo-clip")
@click.argument("out", type=click.Path(dir_okay=False), default="clip.wav", required=False)
@click.option(
    "--engine",
    type=click.Choice(["auto", "espeak", "numpy"]),
    default="auto",
    show_default=True,
    help="Voice: espeak-ng, a numpy speech-like signal, or auto (espeak-ng when installed).",
)
@click.option("--pause", default=1.0, show_default=True, help="Seconds between sentences.")
def demo_clip(out: str, engine: str, pause: float) -> None:
    """Write a ~20 s WAV of five synthetic sentences with pauses, to try `emovox predict` on.

    \b
    emovox demo-clip clip.wav
    emovox predict clip.wav
    emovox predict clip.wav --segments --plot timeline.png
    """
    from emovox.apps.cli.options import check_target
    from emovox.data.synth import make_demo_clip

    check_target(out)
    try:
        clip = make_demo_clip(out, engine=engine, pause=pause)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(
        f"wrote {clip.path} ({clip.duration:.1f} s, {len(clip.sentences)} sentences, "
        f"voice: {clip.engine})"
    )


COMMANDS = [demo, demo_clip]
