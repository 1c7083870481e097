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
        f"{model.width}, {n / 1e6:.1f} M weights "
        f"(--feature-param layer=0..{len(model.layers)})"
    )


@encoder.command("shrink")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.argument("target", type=click.Path())
@click.option(
    "--layers",
    "keep_layers",
    type=click.IntRange(min=0),
    required=True,
    help="Keep the first N layers (a feature reading layers up to N needs no more).",
)
@click.option(
    "--int8",
    default="fc1,fc2",
    show_default=True,
    help="Linear layers whose weights are stored as int8 (comma list; empty: none).",
)
def shrink(source: str, target: str, keep_layers: int, int8: str) -> None:
    """Write a Whisper folder's first layers, its feed-forward weights as int8, as a smaller
    Whisper folder (e.g. to ship inside a model bundle).

    \b
    emovox encoder shrink ~/models/whisper-base-encoder ~/models/whisper-base-l3 --layers 3
    """
    from emovox.apps.cli.options import check_target
    from emovox.features.encoder import encoder_fingerprint
    from emovox.features.whisper import WEIGHTS, shrink_encoder

    check_target(target, folder=True)
    names = tuple(n.strip() for n in int8.split(",") if n.strip())
    try:
        folder = shrink_encoder(
            source, target, keep_layers, int8=names, source_fingerprint=encoder_fingerprint(source)
        )
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    size = (folder / WEIGHTS).stat().st_size
    click.echo(
        f"{folder}: the first {keep_layers} layers, {size / 1e6:.1f} MB, fingerprint "
        f"{encoder_fingerprint(folder)} (--feature-param layers=...{keep_layers} read the same "
        "states, up to the int8 rounding)"
    )


COMMAND = encoder
