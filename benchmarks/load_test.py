"""Load test of ``emovox serve`` on loopback: bounded, stops by itself, writes a JSON report.

Starts ``emovox serve`` on a free 127.0.0.1 port, sends ``--requests`` POST /v1/predict
(``--concurrency`` at a time, after a short warm-up), and records requests per second, latency
percentiles, errors, and the server's resident memory before and after.

    python benchmarks/load_test.py --model models/cnn          # or no --model: the tiny model
    python benchmarks/load_test.py --requests 500 --concurrency 16 \
        --out benchmarks/results/load_test.json
"""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _clip(seconds: float, sr: int = 16000) -> bytes:
    """A speech-like clip (emovox.data.synth's numpy voice), as WAV bytes."""
    from emovox.data.synth import PROSODY, numpy_voice

    x = numpy_voice("the quick brown fox jumps over the lazy dog", 1, PROSODY["happy"], sr)
    reps = int(np.ceil(seconds * sr / x.size))
    x = np.tile(x, reps)[: round(seconds * sr)]
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _percentile(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(xs), q)), 2) if xs else float("nan")


@click.command()
@click.option("--model", "model_dir", type=click.Path(), help="Model bundle (default: tiny).")
@click.option("--requests", "n_requests", default=500, show_default=True)
@click.option("--concurrency", default=16, show_default=True)
@click.option("--server-concurrency", default=2, show_default=True, help="--max-concurrency.")
@click.option("--seconds", default=3.0, show_default=True, help="Length of the audio sent.")
@click.option("--warmup", default=10, show_default=True)
@click.option("--out", default=str(HERE / "results" / "load_test.json"), show_default=True)
def main(model_dir, n_requests, concurrency, server_concurrency, seconds, warmup, out) -> None:
    import httpx

    from emovox.evaluate.runner import machine_info

    tmp = tempfile.TemporaryDirectory()
    model_note = "given"
    if model_dir is None:
        sys.path.insert(0, str(HERE))
        from tiny_model import TINY_RECIPE, train_tiny

        model_dir = str(train_tiny(Path(tmp.name) / "tiny"))
        model_note = f"tiny: {TINY_RECIPE}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "emovox", "serve", "--model", model_dir, "--port", str(port),
           "--max-concurrency", str(server_concurrency)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                err = server.stderr.read().decode() if server.poll() is not None else ""
                raise click.ClickException(f"the server did not start: {err}")
            time.sleep(0.2)
        data = _clip(seconds)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        with httpx.Client(base_url=url, timeout=60, limits=limits) as client:

            def one(_: int) -> tuple[float, int, str]:
                t0 = time.perf_counter()
                try:
                    r = client.post("/v1/predict", files={"audio": ("clip.wav", data, "audio/wav")})
                    code, detail = r.status_code, "" if r.status_code == 200 else r.text[:200]
                except httpx.HTTPError as exc:
                    code, detail = 0, f"{type(exc).__name__}: {exc}"
                return (time.perf_counter() - t0) * 1000, code, detail

            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(one, range(warmup)))
                rss_before = _rss_mb(server.pid)
                t0 = time.perf_counter()
                results = list(pool.map(one, range(n_requests)))
                wall = time.perf_counter() - t0
                rss_after = _rss_mb(server.pid)
                # a second, identical round: memory must not keep growing
                list(pool.map(one, range(n_requests // 5)))
                rss_after_more = _rss_mb(server.pid)
        lat = [ms for ms, code, _ in results if code == 200]
        errors = [f"{code} {detail}" for _, code, detail in results if code != 200]
        report = {
            "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
            "server_command": " ".join(shlex.quote(a) for a in cmd),
            "model": {"path": model_dir, "note": model_note},
            "audio_seconds": seconds,
            "requests": n_requests,
            "concurrency": concurrency,
            "server_max_concurrency": server_concurrency,
            "wall_s": round(wall, 3),
            "requests_per_s": round(n_requests / wall, 2),
            "audio_seconds_per_s": round(n_requests * seconds / wall, 1),
            "latency_ms": {
                "p50": _percentile(lat, 50),
                "p95": _percentile(lat, 95),
                "p99": _percentile(lat, 99),
                "mean": round(float(np.mean(lat)), 2) if lat else None,
                "max": round(max(lat), 2) if lat else None,
            },
            "errors": len(errors),
            "error_examples": errors[:5],
            "server_rss_mb": {
                "before": round(rss_before, 1),
                "after": round(rss_after, 1),
                "after_another_round": round(rss_after_more, 1),
                "growth": round(rss_after_more - rss_before, 1),
            },
            "machine": machine_info(),
        "load_average_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
        "process_nice": os.nice(0),
            "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        tmp.cleanup()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    lm = report["latency_ms"]
    click.echo(
        f"{n_requests} requests, {concurrency} at a time: {report['requests_per_s']} req/s, "
        f"p50 {lm['p50']} ms, p95 {lm['p95']} ms, p99 {lm['p99']} ms, errors {len(errors)}, "
        f"server RSS {rss_before:.0f} -> {rss_after:.0f} -> {rss_after_more:.0f} MB  -> {out}"
    )
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
