"""The live mode: LiveSession driven by files (and a fake microphone), the display, the CLI."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import tone

from emovox.apps import live as live_mod
from emovox.apps.cli import main
from emovox.apps.live import (
    LiveDisplay,
    LiveResult,
    LiveSession,
    MicrophoneSource,
    NoInputDevice,
    file_blocks,
    latency_summary,
    run_live,
)
from emovox.inference.recognizer import Recognizer
from emovox.segmentation import SegmentationConfig

SR = 16000
TRUTH = [(0.5, 1.6), (2.8, 3.9), (5.1, 6.6)]
"""Three tones of at least ``min_segment`` separated by more than ``merge_gap``: three
utterances, none merged."""
PAD = SegmentationConfig().pad
LENGTH = 7.5


@pytest.fixture(scope="module")
def rec(trained_bundle: Path) -> Recognizer:
    return Recognizer.load(trained_bundle)


def utterances_wav(path: Path, end_in_speech: bool = False) -> Path:
    """Three tones (the utterances of TRUTH) separated by silence, with a little noise."""
    x = np.zeros(round(LENGTH * SR), dtype=np.float32)
    for (a, b), f in zip(TRUTH, (220.0, 330.0, 440.0), strict=True):
        x[round(a * SR) : round(b * SR)] = tone(b - a, SR, f)
    if end_in_speech:
        x = x[: round(6.0 * SR)]
    x += np.random.default_rng(1).normal(0, 1e-3, x.size).astype(np.float32)
    sf.write(str(path), x, SR, subtype="PCM_16")
    return path


def test_one_prediction_per_utterance_with_latency_and_saved_audio(rec, tmp_path):
    wav = utterances_wav(tmp_path / "u.wav")
    session = LiveSession(rec, save_dir=tmp_path / "saved", vad="energy")
    out = run_live(session, file_blocks(wav, SR, speed=0))
    utts = out["utterances"]
    assert len(utts) == 3
    for u, (a, b) in zip(utts, TRUTH, strict=True):
        assert u["start"] == pytest.approx(a - PAD, abs=0.06)
        assert u["end"] == pytest.approx(b + PAD, abs=0.06)
        assert u["label"] in rec.labels
        assert sum(u["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert 0 < u["latency_ms"] < 5000
        saved = Path(u["saved"])
        assert sf.info(str(saved)).duration == pytest.approx(u["end"] - u["start"], abs=0.01)
    assert [p.name for p in sorted((tmp_path / "saved").iterdir())] == [
        "utterance_001.wav",
        "utterance_002.wav",
        "utterance_003.wav",
    ]
    assert out["latency"]["count"] == 3
    assert out["latency"]["max_ms"] >= out["latency"]["median_ms"] > 0


def test_rolling_predictions_during_long_speech(rec, tmp_path):
    wav = utterances_wav(tmp_path / "u.wav")
    session = LiveSession(rec, window=0.5, hop=0.25, vad="energy")
    seen: list[LiveResult] = []
    for block, t in file_blocks(wav, SR, speed=0):
        seen += session.feed(block, t)
    rolling = [r for r in seen if not r.final]
    finals = [r for r in seen if r.final]
    assert len(finals) == 3
    # the 1.5 s utterance gets rolling predictions of 0.5 s windows every 0.25 s
    third = [r for r in rolling if r.index == 3]
    assert len(third) >= 3
    assert all(r.end - r.start == pytest.approx(0.5) for r in rolling)
    steps = [b.end - a.end for a, b in itertools.pairwise(third)]
    assert steps == pytest.approx([0.25] * len(steps), abs=0.021)
    with pytest.raises(ValueError, match="window"):
        LiveSession(rec, hop=0.5)


def test_an_utterance_open_at_the_end_is_predicted(rec, tmp_path):
    wav = utterances_wav(tmp_path / "u.wav", end_in_speech=True)
    out = run_live(LiveSession(rec, vad="energy"), file_blocks(wav, SR, speed=0))
    assert len(out["utterances"]) == 3
    assert out["utterances"][-1]["end"] == pytest.approx(6.0, abs=0.03)


def test_a_short_piece_close_behind_is_merged_and_the_utterance_revised(rec, tmp_path):
    """As the offline segmentation does, a 0.6 s piece 0.5 s after an utterance joins it: the
    utterance is predicted when it ends, then predicted again (revised) with the piece."""
    x = np.zeros(round(5.0 * SR), dtype=np.float32)
    for (a, b), f in zip([(0.5, 2.0), (2.5, 3.1)], (220.0, 330.0), strict=True):
        x[round(a * SR) : round(b * SR)] = tone(b - a, SR, f)
    x += np.random.default_rng(1).normal(0, 1e-3, x.size).astype(np.float32)
    sf.write(str(tmp_path / "m.wav"), x, SR, subtype="PCM_16")
    session = LiveSession(rec, vad="energy")
    seen: list[LiveResult] = []
    for block, t in file_blocks(tmp_path / "m.wav", SR, speed=0):
        seen += session.feed(block, t)
    seen += session.close()
    assert [(r.index, r.revised) for r in seen] == [(1, False), (1, True)]
    assert seen[0].end == pytest.approx(2.0 + PAD, abs=0.06)
    assert seen[1].end == pytest.approx(3.1 + PAD, abs=0.06)
    assert list(session.utterances) == [1] and session.utterances[1] is seen[1]


def test_file_blocks_keep_real_time_pace(tmp_path):
    wav = tmp_path / "t.wav"
    sf.write(str(wav), tone(0.8, SR), SR)
    t0 = time.perf_counter()
    blocks = list(file_blocks(wav, SR, speed=4.0))
    elapsed = time.perf_counter() - t0
    assert 0.19 <= elapsed < 1.0
    assert sum(b.size for b, _ in blocks) == round(0.8 * SR)
    assert all(b.size == 320 for b, _ in blocks[:-1])
    arrivals = [t for _, t in blocks]
    assert arrivals == sorted(arrivals)


class FakeStream:
    """Stands in for sounddevice.InputStream: plays an array through the callback."""

    audio: np.ndarray = np.zeros(0, np.float32)

    def __init__(self, samplerate, channels, dtype, blocksize, device, callback):
        self.blocksize, self.callback = blocksize, callback
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop = threading.Event()

    def _run(self):
        status = types.SimpleNamespace(input_overflow=False)
        for i in range(0, self.audio.size, self.blocksize):
            if self._stop.is_set():
                return
            block = self.audio[i : i + self.blocksize]
            self.callback(block[:, None], block.size, None, status)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()

    def close(self):
        pass


class PortAudioError(Exception):
    pass


def fake_sounddevice(audio: np.ndarray, has_input: bool = True, only_rate: int | None = None):
    """A sounddevice stand-in; with ``only_rate`` the device records at that rate only."""

    def query_devices(device=None, kind=None):
        if not has_input:
            raise PortAudioError("Error querying device -1")
        return {"name": "fake mic", "max_input_channels": 1, "default_samplerate": only_rate}

    def input_stream(samplerate, **kw):
        if only_rate is not None and samplerate != only_rate:
            raise PortAudioError("Invalid sample rate")
        return FakeStream(samplerate, **kw)

    FakeStream.audio = audio
    return types.SimpleNamespace(
        InputStream=input_stream, query_devices=query_devices, PortAudioError=PortAudioError
    )


def microphone_results(rec) -> list[LiveResult]:
    """What a live session predicts from the (fake) microphone, the whole recording long."""
    session = LiveSession(rec, vad="energy")
    results = []
    with MicrophoneSource(SR) as mic:
        for block, t in mic:
            results += session.feed(block, t)
            if session.stream.time >= LENGTH - 0.1:
                mic.stop()
    return results


def test_microphone_path_with_a_fake_sounddevice(rec, tmp_path, monkeypatch):
    x, _ = sf.read(str(utterances_wav(tmp_path / "u.wav")), dtype="float32")
    monkeypatch.setattr(live_mod, "_sounddevice", lambda: fake_sounddevice(x))
    results = microphone_results(rec)
    assert [r.final for r in results] == [True, True, True]


def test_microphone_at_another_rate_is_resampled(rec, tmp_path, monkeypatch):
    import soxr

    x, _ = sf.read(str(utterances_wav(tmp_path / "u.wav")), dtype="float32")
    x48 = soxr.resample(x, SR, 48000).astype(np.float32)
    monkeypatch.setattr(live_mod, "_sounddevice", lambda: fake_sounddevice(x48, only_rate=48000))
    results = microphone_results(rec)
    assert [r.final for r in results] == [True, True, True]
    assert results[0].start == pytest.approx(TRUTH[0][0] - PAD, abs=0.06)


def test_no_input_device_is_said_plainly(monkeypatch):
    monkeypatch.setattr(live_mod, "_sounddevice", lambda: fake_sounddevice(np.zeros(1), False))
    with pytest.raises(NoInputDevice, match="no audio input device found"):
        live_mod.check_input_device()


def test_display_on_a_terminal_and_in_plain_text(rec):
    from rich.console import Console

    res = LiveResult(2, True, 1.0, 2.5, "sad", {c: 0.25 for c in rec.labels}, 0.0, 12.0)
    for terminal in (True, False):
        buf = io.StringIO()
        console = Console(file=buf, force_terminal=terminal, width=100)
        with LiveDisplay(rec.labels, console=console) as display:
            display.status("speech 1.0 s")
            display.show(res)
        text = buf.getvalue()
        assert "utterance 2" in text and "sad" in text and "latency 12 ms" in text
        assert all(c in text for c in rec.labels)


def test_latency_summary():
    s = latency_summary([10.0, 20.0, 200.0])
    assert s["count"] == 3 and s["median_ms"] == 20.0 and s["max_ms"] == 200.0
    assert s["meets_target"] is False
    assert latency_summary([]) == {"count": 0}


# -- the command -----------------------------------------------------------------------------


def test_cli_live_with_input_file(trained_bundle, tmp_path):
    wav = utterances_wav(tmp_path / "u.wav")
    res = CliRunner().invoke(
        main,
        [
            "live",
            "--model",
            str(trained_bundle),
            "--input",
            str(wav),
            "--speed",
            "0",
            "--vad",
            "energy",
            "--save",
            str(tmp_path / "saved"),
            "--json",
            str(tmp_path / "live.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "utterance 3" in res.output
    assert "3 utterance(s); latency from the end of an utterance to its prediction" in res.output
    data = json.loads((tmp_path / "live.json").read_text())
    assert len(data["utterances"]) == 3 and data["latency"]["count"] == 3
    assert len(list((tmp_path / "saved").glob("*.wav"))) == 3


def test_cli_live_declip_predicts_audio_that_does_not_clip_as_without_it(trained_bundle, tmp_path):
    from emovox.audio import load_audio
    from emovox.features.declip import clipped_mask

    wav = utterances_wav(tmp_path / "u.wav")
    assert not clipped_mask(load_audio(wav)).any()
    runs = {}
    for extra in ((), ("--declip", "sparse")):
        out = tmp_path / f"live{len(extra)}.json"
        args = ["live", "--model", str(trained_bundle), "--input", str(wav), "--speed", "0"]
        res = CliRunner().invoke(main, [*args, "--vad", "energy", "--json", str(out), *extra])
        assert res.exit_code == 0, res.output
        runs[extra] = [u["label"] for u in json.loads(out.read_text())["utterances"]]
    assert len(runs[()]) == 3 and runs[()] == runs[("--declip", "sparse")]


def test_cli_live_without_a_device_exits_with_a_plain_message(trained_bundle, monkeypatch):
    monkeypatch.setattr(live_mod, "_sounddevice", lambda: fake_sounddevice(np.zeros(1), False))
    res = CliRunner().invoke(main, ["live", "--model", str(trained_bundle)])
    assert res.exit_code == 2
    assert "no audio input device found" in res.output
    assert "--input FILE" in res.output
    assert "Traceback" not in res.output


def test_cli_live_errors(trained_bundle, tmp_path):
    # without --model the bundled default model is loaded; the missing file is then the error
    res = CliRunner().invoke(main, ["live", "--input", str(tmp_path / "x.wav")])
    assert res.exit_code == 1 and "x.wav: no such file" in res.output
    res = CliRunner().invoke(
        main, ["live", "--model", str(trained_bundle), "--input", str(tmp_path / "missing.wav")]
    )
    assert res.exit_code == 1 and "missing.wav: no such file" in res.output


def test_printed_latencies_are_the_summarys(tmp_path):
    """Issue 15: each utterance's printed latency is the one in the JSON and the summary; a
    revision prints none (the summary counts an utterance's first prediction)."""
    import io
    import re
    import time

    from rich.console import Console

    from emovox.apps.live import LiveDisplay

    def result(index: int, revised: bool = False) -> LiveResult:
        time.sleep(0.002 * index)
        return LiveResult(
            index=index, final=True, start=float(index), end=index + 0.5, label="happy",
            probabilities={"happy": 0.9, "sad": 0.1}, decided_at=time.perf_counter() - 0.01 * index,
            revised=revised,
        )  # fmt: skip

    class Scripted:
        utterance_seconds = 0.0

        def __init__(self) -> None:
            self.utterances: dict[int, LiveResult] = {}

        def feed(self, block, arrived):
            out = [result(int(block[0]), revised=int(block[0]) in self.utterances)]
            self.utterances.update({r.index: r for r in out})
            return out

        def close(self):
            return []

    buf = io.StringIO()
    display = LiveDisplay(["happy", "sad"], console=Console(file=buf, width=120))
    blocks = [(np.array([i], dtype=np.float32), 0.0) for i in (1, 2, 2, 3)]
    out = run_live(Scripted(), blocks, display)
    printed = [int(m) for m in re.findall(r"latency (\d+) ms", buf.getvalue())]
    per_utterance = [u["latency_ms"] for u in out["utterances"]]
    assert len(printed) == 3 and "(revised)" in buf.getvalue()
    assert printed == [round(x) for x in per_utterance]
    assert out["latency"]["max_ms"] == max(per_utterance)
