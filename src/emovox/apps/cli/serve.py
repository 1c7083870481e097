"""``emovox serve``: the REST API and the web page."""

from __future__ import annotations

import click

from emovox.apps.cli.options import VAD_OPTION, load_recognizer


@click.command()
@click.option("--model", "model_dir", type=click.Path(), help="Model folder (default: bundled).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--max-upload-mb", default=25.0, show_default=True, help="Larger uploads get 413.")
@click.option(
    "--max-duration", "max_duration_s", default=600.0, show_default=True,
    help="Longer audio gets 413 (s).",
)
@click.option(
    "--timeout", "timeout_s", default=60.0, show_default=True,
    help="Per-request limit (s), then 504.",
)
@click.option("--max-concurrency", default=2, show_default=True, help="Predictions at once.")
@VAD_OPTION
def serve(model_dir, host, port, vad, **limits) -> None:
    """Serve the REST API (/v1/predict, /v1/models, /healthz, /docs) and the web page at /."""
    import uvicorn

    from emovox.apps.server import create_app

    rec = load_recognizer(model_dir)
    app = create_app(recognizer=rec, vad=vad, **limits)  # limits: ServerLimits' fields
    name = model_dir or f"the bundled default model ({rec.bundle.path})"
    click.echo(f"emovox: serving {name} on http://{host}:{port}/  (API docs: /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


COMMAND = serve
