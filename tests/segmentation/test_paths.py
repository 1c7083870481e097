"""One recording, four ways in: `predict --segments`, the server, `live --input` and the Python
API give the same segments (within one 10-ms frame) and the same labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from emovox.apps.cli import main
from emovox.apps.live import LiveSession, file_blocks, run_live
from emovox.apps.server import create_app
from emovox.data.synth import make_demo_clip
from emovox.inference.recognizer import Recognizer
from emovox.segmentation import silero_available

VADS = ["energy", pytest.param("silero", marks=pytest.mark.skipif(
    not silero_available(), reason="silero-vad is not installed"))]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ~20-s demo clip: five synthetic sentences with pauses (espeak-ng when installed)."""
    return make_demo_clip(tmp_path_factory.mktemp("clip") / "clip.wav").path


def spans(rows: list[dict]) -> list[tuple[float, float, str]]:
    return [(r["start"], r["end"], r["label"]) for r in rows]


@pytest.mark.parametrize("vad", VADS)
def test_the_four_paths_agree(trained_bundle: Path, clip: Path, tmp_path: Path, vad: str) -> None:
    rec = Recognizer.load(trained_bundle)
    api = spans(rec.predict_segments(clip, vad=vad))
    assert len(api) >= 3, api  # the sentences are found

    r = CliRunner().invoke(
        main,
        ["predict", "--model", str(trained_bundle), str(clip), "--segments", "--vad", vad,
         "--format", "json"],
    )
    assert r.exit_code == 0, r.output
    cli = spans(json.loads(r.output)[0]["segments"])

    with TestClient(create_app(recognizer=rec, tmp_dir=tmp_path / "up", vad=vad)) as c:
        res = c.post(
            "/v1/predict",
            files={"audio": ("clip.wav", clip.read_bytes(), "audio/wav")},
            data={"segments": "true"},
        )
    assert res.status_code == 200, res.text
    server = spans(res.json()["segments"])

    live = spans(run_live(LiveSession(rec, vad=vad), file_blocks(clip, rec.sample_rate, speed=0))[
        "utterances"
    ])

    for name, other in (("cli", cli), ("server", server), ("live", live)):
        assert len(other) == len(api), (name, other, api)
        for (a0, a1, al), (b0, b1, bl) in zip(api, other, strict=True):
            assert abs(a0 - b0) <= 0.01 and abs(a1 - b1) <= 0.01, (name, other, api)
            assert al == bl, (name, other, api)
