"""``emovox export``: a model folder to ONNX."""

from __future__ import annotations

from pathlib import Path

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
@click.option(
    "--quantize",
    type=click.Choice(["int8"]),
    help="Write the int8 model (onnxruntime static quantisation; default file "
    "MODEL_DIR/model.int8.onnx), for `predict --backend onnx-int8`.",
)
@click.option(
    "--calibrate",
    "calibrate",
    multiple=True,
    help="With --quantize: audio files, folders or globs whose features calibrate the int8 "
    "ranges (a few dozen of your own recordings; default: synthetic speech).",
)
def export(model_arg, model_dir, fmt, out, opset, quantize, calibrate) -> None:
    """Export a model folder to ONNX (features in, logits and probabilities out).

    Without MODEL_DIR the default model bundled with emovox is exported (give --out).

    \b
    emovox export models/cnn
    emovox export models/cnn --quantize int8 --calibrate my_recordings/
    """
    from emovox.apps.cli.options import check_target
    from emovox.inference.bundle import BundleError
    from emovox.inference.onnx_backend import OnnxUnavailable, export_onnx

    if model_arg and model_dir:
        raise click.UsageError("give the model folder once: as the argument or as --model")
    model_dir = model_dir or model_arg
    if calibrate and not quantize:
        raise click.UsageError("--calibrate goes with --quantize int8")
    check_target(out)
    files = None
    if calibrate:
        from emovox.inference.batch import expand_inputs

        files, missing = expand_inputs(list(calibrate))
        if missing and not files:
            raise click.UsageError(f"--calibrate: no audio file in {', '.join(missing)}")
    try:
        from emovox.pretrained import resolve_model

        given, model_dir = model_dir, resolve_model(model_dir or None)
        if (not given or Path(given) != model_dir) and not out:  # a shipped model, by name
            raise click.UsageError(
                "exporting a model shipped inside emovox (no MODEL_DIR, or a shipped name) "
                "needs --out FILE"
            )
        from emovox.inference.fusion import is_fusion

        if is_fusion(model_dir):
            raise click.ClickException(
                f"{model_dir} is a fused model: ONNX holds one model; export each member folder "
                "inside it instead"
            )
        click.echo(f"exporting {model_dir} to ONNX (checked against torch; ~15 s)...", err=True)
        path = export_onnx(model_dir, out, opset=opset, quantize=quantize, calibrate=files)
    except (BundleError, OnnxUnavailable, RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path}")


COMMAND = export
