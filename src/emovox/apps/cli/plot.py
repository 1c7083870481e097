"""``emovox plot``: waveform, spectrogram or MFCC of a recording."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("kind", type=click.Choice(["waveform", "spectrogram", "mfcc"]))
@click.argument("file", type=click.Path())
@click.option("-o", "--out", required=True, type=click.Path(), help="PNG to write.")
def plot(kind: str, file: str, out: str) -> None:
    """A first look at a recording: waveform, log-mel spectrogram or MFCC."""
    from emovox import plots
    from emovox.apps.cli.options import check_target
    from emovox.audio import AudioError, load_audio

    check_target(out)
    try:
        audio = load_audio(file, sr=None)
        from emovox.audio import audio_info

        sr = audio_info(file).samplerate
    except AudioError as exc:
        raise click.ClickException(str(exc)) from exc
    fn = {
        "waveform": plots.plot_waveform,
        "spectrogram": plots.plot_spectrogram,
        "mfcc": plots.plot_mfcc,
    }[kind]
    path = fn(audio, sr, out, title=Path(file).name)
    click.echo(f"wrote {path}")


COMMAND = plot
