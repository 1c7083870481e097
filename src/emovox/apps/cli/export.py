"""``emovox export``: a model folder to ONNX."""

from __future__ import annotations

import click


@click.command()
@click.argument("model_dir", type=click.Path(), required=False)
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option(
    "--out",
    type=click.Path(),
    help="File to write (default: MODEL_DIR/model.onnx; required without MODEL_DIR).",
)
@click.option("--opset", default=18, show_default=True, help="ONNX opset.")
def export(model_dir, fmt, out, opset) -> None:
    """Export a model folder to ONNX (features in, logits and probabilities out).

    Without MODEL_DIR the default model bundled with emovox is exported (give --out).
    """
    from emovox.apps.cli.options import check_target
    from emovox.inference.bundle import BundleError
    from emovox.inference.onnx_backend import OnnxUnavailable, export_onnx

    check_target(out)
    try:
        if not model_dir:
            from emovox.pretrained import default_model_path

            if not out:
                raise click.UsageError(
                    "exporting the bundled default model (no MODEL_DIR) needs --out FILE"
                )
            model_dir = default_model_path()
        path = export_onnx(model_dir, out, opset=opset)
    except (BundleError, OnnxUnavailable, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path}")


COMMAND = export
