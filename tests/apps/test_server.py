"""The REST API: every endpoint, every error, the limits, and no temporary file left behind."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import tone, write_tone

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from emovox.apps import server as server_mod
from emovox.apps.cli import main
from emovox.apps.server import WEB_DIR, create_app
from emovox.inference.recognizer import Recognizer

SR = 16000


@pytest.fixture(scope="module")
def rec(trained_bundle: Path) -> Recognizer:
    return Recognizer.load(trained_bundle)


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def client(rec, uploads):
    app = create_app(
        recognizer=rec, tmp_dir=uploads, max_upload_mb=1.0, max_duration_s=30.0, vad="energy"
    )
    with TestClient(app) as c:
        yield c
    assert list(uploads.iterdir()) == []


def wav_bytes(seconds: float = 1.0, freq: float = 220.0, gaps: bool = False) -> bytes:
    if gaps:  # three tones separated by silence
        quiet = np.zeros(round(0.5 * SR), np.float32)
        x = np.concatenate(
            [quiet, tone(1.0, SR, 220), quiet, tone(1.0, SR, 330), quiet, tone(1.0, SR, 440), quiet]
        )
    else:
        x = tone(seconds, SR, freq)
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def post(c: TestClient, data: bytes, name: str = "clip.wav", ctype: str = "audio/wav", **form):
    return c.post("/v1/predict", files={"audio": (name, data, ctype)}, data=form)


# -- endpoints ---------------------------------------------------------------------------------


def test_healthz_and_models(client, rec):
    assert client.get("/healthz").json() == {"status": "ok", "model": "model"}
    body = client.get("/v1/models").json()
    (m,) = body["models"]
    assert m["labels"] == rec.labels and m["sample_rate"] == rec.sample_rate
    assert m["architecture"] == "cnn"
    assert body["limits"]["max_upload_mb"] == 1.0


def test_predict(client, rec):
    r = post(client, wav_bytes(1.0))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] in rec.labels and body["labels"] == rec.labels
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert body["duration"] == pytest.approx(1.0) and body["filename"] == "clip.wav"
    assert body["segments"] is None  # short audio: no segments unless asked
    # the same answer as the Python API
    expected = rec.predict(tone(1.0, SR, 220), sr=SR)
    assert body["probabilities"] == pytest.approx(expected.probabilities, abs=1e-4)


def test_predict_other_formats(client, tmp_path):
    flac = write_tone(tmp_path / "a.flac", seconds=0.7, sr=44100, channels=2)
    r = post(client, flac.read_bytes(), "a.flac", "audio/flac")
    assert r.status_code == 200, r.text
    assert r.json()["duration"] == pytest.approx(0.7, abs=0.01)


def test_predict_labels_subset(client):
    r = post(client, wav_bytes(), labels="happy, sad")
    assert r.status_code == 200, r.text
    assert r.json()["labels"] == ["happy", "sad"]
    assert set(r.json()["probabilities"]) == {"happy", "sad"}


def test_predict_segments(client, rec):
    r = post(client, wav_bytes(gaps=True), segments="true")
    assert r.status_code == 200, r.text
    segs = r.json()["segments"]
    assert len(segs) == 3
    for s, (a, b) in zip(segs, [(0.5, 1.5), (2.0, 3.0), (3.5, 4.5)], strict=True):
        assert s["start"] == pytest.approx(a, abs=0.15) and s["end"] == pytest.approx(b, abs=0.15)
    assert all(s["label"] in rec.labels for s in segs)
    assert post(client, wav_bytes(gaps=True), segments="false").json()["segments"] is None


def test_long_audio_gets_segments_by_default(rec, uploads, monkeypatch):
    monkeypatch.setattr(server_mod, "LONG_AUDIO_S", 4.0)
    with TestClient(create_app(recognizer=rec, tmp_dir=uploads, vad="energy")) as c:
        assert len(post(c, wav_bytes(gaps=True)).json()["segments"]) == 3
    assert list(uploads.iterdir()) == []


def test_web_page_and_docs(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/static/app.js" in r.text
    for name, ctype in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and ctype in r.headers["content-type"]
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/models", "/healthz"} <= set(schema["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200
    # the API docs work offline: every script and style sheet comes from this server
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", docs.text)
    for asset in re.findall(r"/_docs/[\w.-]+", docs.text):
        assert client.get(asset).status_code == 200, asset


def test_web_page_loads_nothing_from_other_sites():
    for f in ("index.html", "app.js", "style.css"):
        text = (WEB_DIR / f).read_text()
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), f
        assert "import(" not in text and "@import" not in text, f
        assert not re.search(r"url\(\s*[\"']?(https?:)?//", text), f


# -- errors ------------------------------------------------------------------------------------


def test_not_audio_is_415(client):
    r = post(client, b"hello, this is plain text and no audio", "notes.txt", "text/plain")
    assert r.status_code == 415
    assert r.json()["detail"].startswith("notes.txt: not an audio file")


def test_corrupt_audio_is_422(client):
    good = wav_bytes()
    r = post(client, good[:60], "cut.wav")  # a header and almost no data
    assert r.status_code == 422
    r = post(client, b"RIFF\x24\x00\x00\x00WAVEfmt garbage garbage", "bad.wav")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("bad.wav: ") and "emovox-upload" not in detail


def test_empty_and_too_short_and_missing_are_422(client):
    r = post(client, b"", "empty.wav")
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    r = post(client, wav_bytes(0.05), "short.wav")
    assert r.status_code == 422 and "shorter than" in r.json()["detail"]
    assert client.post("/v1/predict").status_code == 422
    r = post(client, wav_bytes(), labels="happy,nonsense")
    assert r.status_code == 422 and "nonsense" in r.json()["detail"]


def test_upload_too_large_is_413(rec, uploads):
    app = create_app(recognizer=rec, tmp_dir=uploads, max_upload_mb=0.05)
    with TestClient(app) as c:
        # over the limit by far: refused on the Content-Length header
        r = post(c, wav_bytes(10.0))
        assert r.status_code == 413 and "0.05 MB" in r.json()["detail"]
        # just over the file limit (within the envelope allowance): refused while copying
        r = post(c, wav_bytes(1.7))
        assert r.status_code == 413 and r.json()["detail"].startswith("clip.wav: larger")
        # streamed without a length: refused once the body passes the limit
        data = wav_bytes(10.0)
        body = (
            b'--xyz\r\nContent-Disposition: form-data; name="audio"; filename="big.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + data + b"\r\n--xyz--\r\n"
        )
        r = c.post(
            "/v1/predict",
            content=(body[i : i + 16384] for i in range(0, len(body), 16384)),
            headers={"content-type": "multipart/form-data; boundary=xyz"},
        )
        assert r.status_code == 413
        assert post(c, wav_bytes(0.5)).status_code == 200
    assert list(uploads.iterdir()) == []


def test_audio_too_long_is_413(rec, uploads):
    with TestClient(create_app(recognizer=rec, tmp_dir=uploads, max_duration_s=2.0)) as c:
        r = post(c, wav_bytes(3.0))
        assert r.status_code == 413
        assert "3.0 s long; this server accepts at most 2 s" in r.json()["detail"]
    assert list(uploads.iterdir()) == []


def slow_decoding(monkeypatch, seconds: float) -> None:
    """Make the server's audio decoding take ``seconds`` longer."""
    real = server_mod.load_audio

    def slow(*a, **k):
        time.sleep(seconds)
        return real(*a, **k)

    monkeypatch.setattr(server_mod, "load_audio", slow)


def test_timeout_is_504_and_the_file_is_still_deleted(rec, uploads, monkeypatch):
    slow_decoding(monkeypatch, 0.6)
    with TestClient(create_app(recognizer=rec, tmp_dir=uploads, timeout_s=0.1)) as c:
        r = post(c, wav_bytes())
        assert r.status_code == 504 and "timeout of 0.1 s" in r.json()["detail"]
        deadline = time.time() + 5
        while list(uploads.iterdir()) and time.time() < deadline:  # the job finishes later
            time.sleep(0.05)
        assert list(uploads.iterdir()) == []
        assert c.get("/healthz").status_code == 200


def test_timeouts_while_queued_leave_no_files(rec, uploads, monkeypatch):
    slow_decoding(monkeypatch, 0.4)
    app = create_app(recognizer=rec, tmp_dir=uploads, timeout_s=0.15, max_concurrency=1)
    codes: list[int] = []
    with TestClient(app) as c:
        threads = [
            threading.Thread(target=lambda: codes.append(post(c, wav_bytes(0.5)).status_code))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [504] * 4
        deadline = time.time() + 5
        while list(uploads.iterdir()) and time.time() < deadline:
            time.sleep(0.05)
    assert list(uploads.iterdir()) == []


def test_internal_error_is_500_and_the_server_goes_on(rec, uploads, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("the model is broken")

    monkeypatch.setattr(server_mod, "load_audio", broken)
    with TestClient(create_app(recognizer=rec, tmp_dir=uploads)) as c:
        r = post(c, wav_bytes())
        assert r.status_code == 500 and "internal error" in r.json()["detail"]
        assert "the model is broken" not in r.text  # the detail is logged, not shown
        assert r.headers["x-request-id"] in r.json()["detail"]
        assert c.get("/healthz").status_code == 200
    assert list(uploads.iterdir()) == []


def test_concurrent_inferences_are_bounded(rec, uploads, monkeypatch):
    real = server_mod.load_audio
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def counting(*a, **k):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.1)
        try:
            return real(*a, **k)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(server_mod, "load_audio", counting)
    app = create_app(recognizer=rec, tmp_dir=uploads, max_concurrency=2)
    data = wav_bytes(0.5)
    codes: list[int] = []
    with TestClient(app) as c:
        threads = [
            threading.Thread(target=lambda: codes.append(post(c, data).status_code))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes == [200] * 6
    assert state["max"] == 2
    assert list(uploads.iterdir()) == []


def test_create_app_loads_the_model_once(trained_bundle, monkeypatch, uploads):
    calls = []
    real = Recognizer.load.__func__

    def counting(cls, *a, **k):
        calls.append(a)
        return real(cls, *a, **k)

    monkeypatch.setattr(Recognizer, "load", classmethod(counting))
    with TestClient(create_app(trained_bundle, tmp_dir=uploads)) as c:
        for _ in range(3):
            assert post(c, wav_bytes(0.5), labels="happy,sad").status_code == 200
    assert len(calls) == 1


def test_cli_serve_defaults_to_the_bundled_model(tmp_path, monkeypatch):
    import uvicorn

    from emovox.apps import http_guard
    from emovox.pretrained import DEFAULT_MODEL_DIR

    served = []

    def fake_run(self, sockets):
        served.append(sockets[0].getsockname()[1])
        for s in sockets:
            s.close()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    port = free_port()
    res = CliRunner().invoke(main, ["serve", "--port", str(port)])
    assert res.exit_code == 0, res.output
    assert "bundled default model" in res.output and str(DEFAULT_MODEL_DIR) in res.output
    assert served == [port]
    # a busy port: one line, before any "serving ..."
    busy = http_guard.bind("127.0.0.1", 0)
    try:
        res = CliRunner().invoke(main, ["serve", "--port", str(busy.getsockname()[1])])
    finally:
        busy.close()
    assert res.exit_code == 1 and "cannot listen" in res.output and "serving" not in res.output
    res = CliRunner().invoke(main, ["serve", "--model", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "no such model folder" in res.output


def test_cli_serve_declip_loads_the_model_with_it(tmp_path, monkeypatch):
    import uvicorn

    from emovox.apps.cli import serve as serve_cli

    loaded = []
    real = serve_cli.load_recognizer

    def spy(model_dir, labels=None, **cleanup):
        rec = real(model_dir, labels, **cleanup)
        loaded.append(rec)
        return rec

    monkeypatch.setattr(serve_cli, "load_recognizer", spy)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: [s.close() for s in sockets])
    fast = ["serve", "--model", "fast-7", "--port"]  # trained without either clean-up
    res = CliRunner().invoke(main, [*fast, str(free_port()), "--declip", "sparse"])
    assert res.exit_code == 0, res.output
    assert loaded[0].feature.declip and loaded[0].feature.declip_method == "sparse"
    assert not loaded[0].feature.denoise
    res = CliRunner().invoke(main, [*fast, str(free_port()), "--denoise", "wiener"])
    assert res.exit_code == 0, res.output
    assert loaded[1].feature.denoise == "wiener" and not loaded[1].feature.declip
    res = CliRunner().invoke(main, ["serve", "--declip", "magic"])
    assert res.exit_code == 2 and "magic" in res.output
    res = CliRunner().invoke(main, ["serve", "--denoise", "magic"])
    assert res.exit_code == 2 and "magic" in res.output


# -- hostile clients, against a real socket (issue 15) ------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(rec, tmp_path_factory):
    """The app served by :mod:`emovox.apps.http_guard` in a thread, with short limits."""
    import threading

    import uvicorn

    from emovox.apps import http_guard

    limits = http_guard.HttpLimits(header_timeout=1.0, body_timeout=1.0, max_header_bytes=8192)
    sock = http_guard.bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(
        recognizer=rec, tmp_dir=tmp_path_factory.mktemp("up"), allow_origins=["https://ok.example"]
    )
    config = uvicorn.Config(
        app,
        http=http_guard.guarded_protocol(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        log_level="error",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    import time

    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(5)


def raw(port: int, data: bytes, wait: float = 0.0, timeout: float = 5.0) -> tuple[bytes, float]:
    """Send ``data``, optionally wait, and read until the server closes: (reply, seconds)."""
    import socket
    import time

    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        time.sleep(wait)
        reply = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            reply += chunk
    return reply, time.monotonic() - t0


def test_a_slow_header_is_timed_out(live_server):
    reply, seconds = raw(live_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert reply.startswith(b"HTTP/1.1 408") and seconds < 4.5
    reply, seconds = raw(live_server, b"")  # connects and sends nothing
    assert reply.startswith(b"HTTP/1.1 408") and seconds < 4.5


def test_a_stalled_body_is_timed_out(live_server):
    head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
    head += b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
    reply, seconds = raw(live_server, head)
    assert reply.startswith(b"HTTP/1.1 408") and seconds < 4.5


def test_a_huge_header_gets_431(live_server):
    data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    reply, _ = raw(live_server, data)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:80]
    ok, _ = raw(live_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")  # the server goes on


def test_cross_origin_posts_are_refused_unless_allowed(live_server):
    import httpx

    url = f"http://127.0.0.1:{live_server}"
    files = {"audio": ("clip.wav", wav_bytes(), "audio/wav")}
    r = httpx.post(f"{url}/v1/predict", files=files, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "evil.example" in r.json()["detail"]
    r = httpx.post(f"{url}/v1/predict", files=files, headers={"Origin": url})
    assert r.status_code == 200  # the server's own page
    r = httpx.post(f"{url}/v1/predict", files=files, headers={"Origin": "https://ok.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://ok.example"
    assert httpx.post(f"{url}/v1/predict", files=files).status_code == 200  # curl: no Origin


def test_the_upload_field_may_be_called_file(client):
    r = client.post("/v1/predict", files={"file": ("clip.wav", wav_bytes(), "audio/wav")})
    assert r.status_code == 200 and r.json()["label"]
    r = client.post("/v1/predict", files={"other": ("clip.wav", wav_bytes(), "audio/wav")})
    assert r.status_code == 422 and "audio (or file)" in r.json()["detail"]
