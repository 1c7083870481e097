"""``emovox encoder``: pretrained speech encoders on this machine (converting one)."""

from __future__ import annotations

import click


@click.group()
def encoder() -> None:
    """Pretrained speech encoders for the `encoder` features (`--feature-param path=DIR`)."""


@encoder.command("convert")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.argument("target", type=click.Path())
def convert(source: str, target: str) -> None:
    """Write the encoder of a CTranslate2 Whisper model (faster-whisper's folders: model.bin,
    config.json) as a Whisper folder that emovox reads (config.json + model.safetensors).

    \b
    emovox encoder convert ~/models/faster-whisper-base ~/models/whisper-base-encoder
    emovox evaluate ... --arch encoder-svm --feature-param path=~/models/whisper-base-encoder
    """
    from emovox.apps.cli.options import check_target
    from emovox.features.whisper import convert_ctranslate2, load_whisper_encoder

    check_target(target, folder=True)
    try:
        folder = convert_ctranslate2(source, target)
        model = load_whisper_encoder(folder)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    n = sum(p.numel() for p in model.parameters())
    click.echo(
        f"{folder}: Whisper encoder, {len(model.layers)} layers, width "
        f"{model.layer_norm.normalized_shape[0]}, {n / 1e6:.1f} M weights "
        f"(--feature-param layer=0..{len(model.layers)})"
    )


COMMAND = encoder
