"""The README's main job, ``emovox demo``, end to end (shortened)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emovox.apps.demo import DEMO_EMOTIONS, run_demo
from emovox.data.synth import DEMO_SCRIPT


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", progress=False, epochs=2, n_speakers=3)
    # the held-out speaker: every emotion x 2 sentences x 2 repetitions
    assert result["total"] == len(DEMO_EMOTIONS) * 2 * 2
    assert 0 <= result["correct"] <= result["total"]
    config = json.loads((Path(result["model"]) / "config.json").read_text())
    assert config["labels"] == list(DEMO_EMOTIONS)
    assert "Actor_03" not in config["data"]["speakers"]  # never trained on the held-out speaker
    assert (Path(result["model"]) / "training_curves.png").is_file()
    # early stopping on validation speakers, not a fixed run of every epoch
    assert config["training"]["patience"] < 60 and config["training"]["val_fraction"] > 0
    assert config["training_result"]["validation_speakers"]
    # step 4: the bundled default model on the demo clip, one segment per sentence
    assert result["clip"]["segments"] == len(DEMO_SCRIPT)
    assert Path(result["clip"]["timeline"]).stat().st_size > 0


def test_make_demo_installs_no_browser() -> None:
    """Issue 15: chromium is for the web-page tests only, not for ``make demo``."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if shutil.which("make") is None:
        pytest.skip("no make")
    demo = subprocess.run(["make", "-n", "demo"], cwd=root, capture_output=True, text=True)
    test = subprocess.run(["make", "-n", "test"], cwd=root, capture_output=True, text=True)
    assert "espeak-ng" in demo.stdout and "chromium" not in demo.stdout
    assert "chromium" in test.stdout
