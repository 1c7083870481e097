"""``emovox export``: a model folder to ONNX."""

from __future__ import annotations

import click


@click.command()
@click.argument("model_arg", metavar="[MODEL_DIR]", type=click.Path(), required=False)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(),
    help="Model folder to export (or give it as the argument; default: the bundled model).",
)
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option(
    "-o",
    "--out",
    type=click.Path(),
    help="File to write (default: MODEL_DIR/model.onnx; required without MODEL_DIR).",
)
@click.option("--opset", default=18, show_default=True, help="ONNX opset.")
def export(model_arg, model_dir, fmt, out, opset) -> None:
    """Export a model folder to ONNX (features in, logits and probabilities out).

    Without MODEL_DIR the default model bundled with emovox is exported (give --out).
    """
    from emovox.apps.cli.options import check_target
    from emovox.inference.bundle import BundleError
    from emovox.inference.onnx_backend import OnnxUnavailable, export_onnx

    if model_arg and model_dir:
        raise click.UsageError("give the model folder once: as the argument or as --model")
    model_dir = model_dir or model_arg
    check_target(out)
    try:
        if not model_dir:
            from emovox.pretrained import default_model_path

            if not out:
                raise click.UsageError(
                    "exporting the bundled default model (no MODEL_DIR) needs --out FILE"
                )
            model_dir = default_model_path()
        click.echo(f"exporting {model_dir} to ONNX (checked against torch; ~15 s)...", err=True)
        path = export_onnx(model_dir, out, opset=opset)
    except (BundleError, OnnxUnavailable, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path}")


COMMAND = export
