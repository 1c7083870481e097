"""``emovox serve``: the REST API and the web page."""

from __future__ import annotations

import click

from emovox.apps.cli.options import (
    DECLIP_OPTION,
    DENOISE_OPTION,
    VAD_OPTION,
    load_recognizer,
)


@click.command()
@click.option(
    "--model",
    "model_dir",
    type=click.Path(),
    help="Model folder, or a shipped model's name: default (the default), ravdess-8.",
)
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
@click.option(
    "--allow-origin",
    "allow_origins",
    multiple=True,
    help="A web origin whose pages may call the API (CORS), e.g. https://app.example "
    "(repeatable; default: only this server's own page).",
)
@VAD_OPTION
@DECLIP_OPTION
@DENOISE_OPTION
def serve(model_dir, host, port, vad, allow_origins, declip, denoise, **limits) -> None:
    """Serve the REST API (/v1/predict, /v1/models, /healthz, /docs) and the web page at /.

    Slow clients are timed out (headers 10 s, 30 s idle in a body: 408), header blocks over
    32 KB get 431, and pages of other origins get 403 unless --allow-origin names them.
    """
    from emovox.apps import http_guard
    from emovox.apps.server import create_app

    try:
        sock = http_guard.bind(host, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    rec = load_recognizer(model_dir, declip=declip, denoise=denoise)
    # limits: ServerLimits' fields
    app = create_app(recognizer=rec, vad=vad, allow_origins=allow_origins, **limits)
    name = model_dir or f"the bundled default model ({rec.bundle.path})"
    http_guard.run(
        app,
        sock,
        on_start=lambda: click.echo(
            f"emovox: serving {name} on http://{host}:{port}/  (API docs: /docs)", err=True
        ),
    )


COMMAND = serve
