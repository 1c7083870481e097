"""``emovox fuse``: several model folders averaged into one fused model."""

from __future__ import annotations

import click


@click.command()
@click.argument("models", nargs=-1, required=True)
@click.option(
    "-w",
    "--weight",
    "weights",
    type=float,
    multiple=True,
    help="Each model's share of the fused probability, in the order of MODELS (default: equal).",
)
@click.option("-o", "--out", required=True, type=click.Path(), help="The new fused model's folder.")
def fuse(models: tuple[str, ...], weights: tuple[float, ...], out: str) -> None:
    """Fuse MODELS (two or more model folders, or shipped models by name, e.g. `default`,
    answering the same classes) into one model whose
    probabilities are their weighted mean; it is used like any model folder (predict, serve,
    live, the Python API). Each member keeps its own features, e.g. a CNN on the log-mel and an
    SVM on a pretrained encoder. The members are copied into OUT.

    \b
    emovox fuse models/cnn models/whisper-svm -o models/cnn+whisper
    emovox fuse default models/whisper-svm -o models/default+whisper
    emovox predict clip.wav --model models/cnn+whisper
    """
    from emovox.apps.cli.options import check_target
    from emovox.inference.bundle import BundleError
    from emovox.inference.fusion import save_fusion
    from emovox.inference.recognizer import FusedRecognizer, Recognizer

    check_target(out, folder=True)
    if weights and len(weights) != len(models):
        raise click.UsageError(f"give one --weight per model ({len(models)}), or none")
    from emovox.pretrained import resolve_model

    folders = [resolve_model(m) for m in models]
    for given, folder in zip(models, folders, strict=True):
        if not folder.is_dir():
            raise click.ClickException(f"{given}: no such model folder (nor a shipped model)")
    try:
        recs = [Recognizer.load(m) for m in folders]
        fused = FusedRecognizer(recs, list(weights) or [1.0] * len(recs))  # checked before writing
        folder = save_fusion(out, folders, weights or None)
    except (BundleError, FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    shares = ", ".join(
        f"{m.bundle.path.name} {w:.2f}" for m, w in zip(fused.members, fused.weights, strict=True)
    )
    click.echo(f"wrote {folder}: {', '.join(fused.labels)}; shares {shares}")

COMMAND = fuse
