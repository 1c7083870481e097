"""The REST API and web page: ``emovox serve`` (FastAPI), a thin shell over the Recognizer.

Endpoints: ``POST /v1/predict`` (multipart ``audio`` or ``file``, optional ``labels`` and
``segments``), ``GET /v1/models``, ``GET /healthz``, the OpenAPI schema at ``/openapi.json``
(docs at ``/docs``) and the web page at ``/`` (static files from ``emovox/web``, nothing
loaded from elsewhere).

The model is loaded once. Every upload goes to a temporary file that is deleted whatever
happens (success, error, timeout); inference runs in a pool of ``max_concurrency`` threads.
Limits: ``max_upload_mb`` (413), ``max_duration_s`` (413), ``timeout_s`` (504). Uploads that are
not audio get 415, audio that cannot be decoded 422; any other failure is a 500 saying "internal
error" with a request id (the detail goes to the log under that id), never a crash. Pages of
other origins may not call the API (403) unless allowed (``allow_origins``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated

import numpy as np
import soundfile as sf
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from emovox.audio import MIN_DURATION, AudioError, load_audio
from emovox.colours import label_colours
from emovox.inference.recognizer import LONG_RECORDING_SECONDS, Recognizer
from emovox.segmentation import predict_segments

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
"""The static files of the web page."""

LONG_AUDIO_S = 15.0
"""With ``segments`` left unset, audio longer than this also gets per-segment predictions."""

_LABELS_HELP = "Restrict to these classes, comma-separated, e.g. angry,happy,neutral,sad."
_SEGMENTS_HELP = (
    f"Also predict each speech segment (default: only for audio longer than {LONG_AUDIO_S:g} s)."
)

_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM", b"ID3", b"caff", b".snd", b"wvpk")


def _too_large(max_bytes: int) -> str:
    return f"the upload is larger than this server's limit of {max_bytes / 1e6:g} MB"


class BodyLimit:
    """ASGI middleware: answer 413 to request bodies over ``max_bytes``.

    A ``Content-Length`` over the limit is refused before anything is read; a body that grows
    past it while streaming (chunked uploads) stops the request with an HTTP 413 error.
    """

    def __init__(self, app, max_bytes: int, slack: int = 64 * 1024) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.limit = max_bytes + slack  # the multipart envelope around the file

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_json(send, 413, _too_large(self.max_bytes))
            return
        from starlette.exceptions import HTTPException

        seen = 0

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, _too_large(self.max_bytes))
            return message

        await self.app(scope, counted_receive, send)


async def _send_json(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclasses.dataclass(frozen=True)
class ServerLimits:
    """What one request may ask of the server."""

    max_upload_mb: float = 25.0
    max_duration_s: float = 600.0
    timeout_s: float = 60.0
    max_concurrency: int = 2

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1e6)


class _Service:
    """The loaded model, its worker pool and what a request needs from them."""

    def __init__(self, rec: Recognizer, limits: ServerLimits, tmp: Path, vad: str) -> None:
        self.rec, self.limits, self.tmp, self.vad = rec, limits, tmp, vad
        self.pool = concurrent.futures.ThreadPoolExecutor(
            limits.max_concurrency, thread_name_prefix="emovox-infer"
        )
        bundle_path = rec.bundle.path
        self.model_name = Path(bundle_path).name if bundle_path else "model"

    def model_info(self) -> dict:
        cfg = self.rec.config
        model = cfg.get("model")
        return {
            "name": self.model_name,
            "labels": self.rec.labels,
            "sample_rate": self.rec.sample_rate,
            "architecture": model.get("name") if isinstance(model, dict) else model,
            "emovox_version": cfg.get("emovox_version"),
            "default": True,
        }

    def infer(self, path: Path, labels: list[str] | None, segments: bool | None) -> dict:
        """Runs in the pool; owns ``path`` and deletes it."""
        try:
            t0 = time.perf_counter()
            r = self.rec.restricted(labels) if labels else self.rec
            sr = r.sample_rate
            limit = self.limits.max_duration_s
            try:
                info = sf.info(str(path))
            except Exception:  # load_audio below says what is wrong
                info = None
            if info is not None and info.frames > 0 and info.duration > limit:
                raise _Http(413, _too_long(info.duration, limit))
            audio = load_audio(path, sr=sr, min_duration=MIN_DURATION)
            duration = audio.size / sr
            if duration > limit:
                raise _Http(413, _too_long(duration, limit))
            long = duration > LONG_RECORDING_SECONDS
            want = segments if segments is not None else duration > LONG_AUDIO_S
            # the upload itself, streamed: the same path and segments as `predict --segments`
            segs = predict_segments(r, path, vad=self.vad) if want or long else None
            if long:  # the label of a long recording agrees with its segments
                pred = r.predict_long(path, vad=self.vad, segments=segs)
                if not pred.ok:
                    raise _Http(422, pred.error)
            else:
                pred = r.predict(audio, sr=sr)
            return {
                "model": self.model_name,
                "duration": round(duration, 3),
                "label": pred.label,
                "labels": r.labels,
                "colours": label_colours(r.labels),
                "probabilities": pred.probabilities,
                "arousal": pred.arousal,
                "valence": pred.valence,
                "basis": pred.basis,
                "segments": segs if want else None,
                "time_ms": round((time.perf_counter() - t0) * 1000, 2),
            }
        finally:
            path.unlink(missing_ok=True)

    async def save_upload(self, audio: UploadFile, name: str) -> Path:
        """Stream the upload into a temporary file (deleted on any refusal).

        Raises:
            HTTPException: too large (413), empty (422) or not audio (415).
        """
        fd, tmp_name = tempfile.mkstemp(prefix="emovox-upload-", suffix=".audio", dir=self.tmp)
        path = Path(tmp_name)
        try:
            size, head = 0, b""
            with os.fdopen(fd, "wb") as f:
                while chunk := await audio.read(1 << 20):
                    size += len(chunk)
                    if size > self.limits.max_bytes:
                        raise HTTPException(
                            413,
                            f"{name}: larger than this server's limit of "
                            f"{self.limits.max_upload_mb:g} MB",
                        )
                    if len(head) < 16:
                        head += chunk[:16]
                    f.write(chunk)
            if size == 0:
                raise HTTPException(422, f"{name}: the upload is empty (0 bytes)")
            if not _looks_like_audio(head):
                raise HTTPException(
                    415,
                    f"{name}: not an audio file (expected wav, flac, ogg, mp3 or aiff; "
                    f"got {audio.content_type or 'unknown type'})",
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    async def predict(
        self, path: Path, name: str, labels: list[str] | None, segments: bool | None
    ) -> dict:
        """The prediction of a saved upload, within the timeout; every failure becomes an HTTP
        error naming the upload (never the temporary path)."""
        future = self.pool.submit(self.infer, path, labels, segments)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.limits.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(
                504,
                f"{name}: no prediction within this server's timeout of "
                f"{self.limits.timeout_s:g} s",
            ) from None
        except _Http as exc:
            raise HTTPException(exc.status, f"{name}: {exc.detail}") from None
        except AudioError as exc:
            reason = exc.reason.replace(str(path), name)  # never show the temp path
            raise HTTPException(422, f"{name}: {reason}") from None
        except Exception as exc:  # a bug or a broken model: answer, do not crash
            request_id = log_internal_error(exc, f"prediction of {name}")
            raise HTTPException(
                500,
                f"{name}: internal error (request id {request_id})",
                headers={"x-request-id": request_id},
            ) from None
        finally:
            # the job deletes the file once it has started; before that (or when it never
            # will: timeout, shutdown) the file is ours to delete
            if future.cancel() or future.cancelled():
                path.unlink(missing_ok=True)


def create_app(
    model_path: str | os.PathLike | None = None,
    *,
    recognizer: Recognizer | None = None,
    max_upload_mb: float = 25.0,
    max_duration_s: float = 600.0,
    timeout_s: float = 60.0,
    max_concurrency: int = 2,
    tmp_dir: str | os.PathLike | None = None,
    vad: str = "auto",
    allow_origins: tuple[str, ...] | list[str] = (),
):
    """Build the FastAPI application.

    Args:
        model_path: the model bundle folder (loaded once, here).
        recognizer: an already loaded model instead of ``model_path``.
        max_upload_mb: larger uploads get 413.
        max_duration_s: longer audio gets 413.
        timeout_s: a request waiting longer than this for its prediction gets 504.
        max_concurrency: predictions that run at the same time (others wait their turn).
        tmp_dir: where uploads are written while they are read (the system's temp dir when
            ``None``); every file is deleted after its request.
        vad: the voice-activity detector of per-segment predictions (``auto``: silero when
            installed), as in ``emovox predict --segments``.
        allow_origins: web origins (``https://app.example``) whose pages may call the API
            (CORS); by default only the server's own page may (same origin), others get 403.

    Raises:
        BundleError: the model cannot be loaded.
    """
    if recognizer is None:
        if model_path is None:
            raise ValueError("a model is needed: create_app(model_path) or recognizer=")
        recognizer = Recognizer.load(model_path)
    # the first prediction pays for lazy initialisation: pay it now, not in the first request
    recognizer.predict_batch(
        [np.zeros(recognizer.sample_rate, dtype=np.float32)], sr=recognizer.sample_rate
    )
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    limits = ServerLimits(max_upload_mb, max_duration_s, timeout_s, max_concurrency)
    tmp = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.gettempdir())
    tmp.mkdir(parents=True, exist_ok=True)
    service = _Service(recognizer, limits, tmp, vad)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        service.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="emovox",
        version=_version(),
        summary="Speech emotion recognition: upload audio, get the emotion.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files, so the docs work offline too
    )
    _mount_offline_docs(app)
    app.state.recognizer = recognizer
    app.state.limits = dataclasses.asdict(limits)
    app.state.tmp_dir = tmp

    _add_routes(app, service)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    _add_guards(app, limits, allow_origins)
    return app


def _add_guards(app: FastAPI, limits: ServerLimits, allow_origins) -> None:
    """The 500 handler, the body limit, CORS for ``allow_origins`` and the same-origin guard."""

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        request_id = log_internal_error(exc, f"{request.method} {request.url.path}")
        return JSONResponse(
            {"detail": "internal error", "request_id": request_id},
            status_code=500,
            headers={"x-request-id": request_id},
        )

    app.add_middleware(BodyLimit, max_bytes=limits.max_bytes)
    if allow_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(allow_origins), allow_methods=["GET", "POST"]
        )
    app.add_middleware(SameOrigin, allowed=tuple(allow_origins))


class SameOrigin:
    """ASGI middleware: refuse (403) a request whose ``Origin`` is neither this server's nor
    one of ``allowed`` (``emovox serve --allow-origin``), so that no other web page can make a
    visitor's browser post to this server. Requests without ``Origin`` (curl, scripts) pass."""

    def __init__(self, app, allowed: tuple[str, ...] = ()) -> None:
        self.app, self.allowed = app, {o.rstrip("/") for o in allowed}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/")
            host = headers.get(b"host", b"").decode("latin-1")
            own = {f"{scope.get('scheme', 'http')}://{host}"}
            if origin and origin not in own | self.allowed and "*" not in self.allowed:
                response = JSONResponse(
                    {"detail": f"cross-origin request from {origin} refused"}, status_code=403
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _add_routes(app: FastAPI, service: _Service) -> None:
    @app.get("/healthz", summary="Liveness: the model is loaded and the server answers")
    def healthz() -> dict:
        return {"status": "ok", "model": service.model_name}

    @app.get("/v1/models", summary="The model this server predicts with")
    def models() -> dict:
        return {"models": [service.model_info()], "limits": app.state.limits}

    @app.post(
        "/v1/predict",
        summary="Predict the emotion of an uploaded recording",
        responses={
            413: {"description": "upload too large or audio too long"},
            415: {"description": "the upload is not audio"},
            422: {"description": "the audio cannot be decoded, or a bad parameter"},
            504: {"description": "the prediction took longer than the server's timeout"},
        },
    )
    async def predict(
        audio: Annotated[
            UploadFile | None, File(description="The recording (wav, flac, ogg, mp3...).")
        ] = None,
        file: Annotated[UploadFile | None, File(description="The recording, as `audio`.")] = None,
        labels: Annotated[str | None, Form(description=_LABELS_HELP)] = None,
        segments: Annotated[bool | None, Form(description=_SEGMENTS_HELP)] = None,
    ) -> dict:
        if (audio is None) == (file is None):
            raise HTTPException(
                422, "send the recording as one multipart field named audio (or file)"
            )
        audio = audio or file
        subset = [c.strip() for c in labels.split(",") if c.strip()] if labels else None
        if subset:
            try:
                service.rec.restricted(subset)
            except ValueError as exc:
                raise HTTPException(422, f"labels: {exc}") from None
        name = audio.filename or "upload"
        try:
            path = await service.save_upload(audio, name)
            result = await service.predict(path, name, subset, segments)
        finally:
            await audio.close()
        result["filename"] = name
        return result

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")


def log_internal_error(exc: BaseException, what: str) -> str:
    """Log an unexpected failure with its traceback under a new request id, and return the id:
    the client is told the id, never the detail."""
    request_id = uuid.uuid4().hex[:12]
    log.error("request %s: %s failed", request_id, what, exc_info=exc)
    return request_id


class _Http(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _too_long(duration: float, limit: float) -> str:
    return f"the audio is {duration:.1f} s long; this server accepts at most {limit:g} s"


def _looks_like_audio(head: bytes) -> bool:
    """Whether the first bytes are those of an audio container libsndfile may read."""
    if head.startswith(_MAGIC):
        return True
    # MPEG audio frame sync (mp3 without an ID3 tag)
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


def _version() -> str:
    from emovox._version import __version__

    return __version__


def serve(
    model_path: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    **limits,
) -> None:
    """Load the model and serve it until Ctrl-C (``limits``: see create_app), guarded against
    slow and hostile clients (:mod:`emovox.apps.http_guard`).

    Raises:
        OSError: ``host:port`` cannot be bound (checked before the model is loaded).
    """
    from emovox.apps import http_guard

    sock = http_guard.bind(host, port)
    app = create_app(model_path, **limits)
    http_guard.run(app, sock, log_level=log_level)




def _mount_offline_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the ``swagger-ui-bundle`` package: nothing from a CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/_docs", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="emovox API",
            swagger_js_url="/_docs/swagger-ui-bundle.js",
            swagger_css_url="/_docs/swagger-ui.css",
            swagger_favicon_url="/_docs/favicon-32x32.png",
        )
