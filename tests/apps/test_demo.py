"""The README's main job, ``emovox demo``, end to end (shortened)."""

from __future__ import annotations

import json
from pathlib import Path

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
    # step 4: the bundled default model on the demo clip, one segment per sentence
    assert result["clip"]["segments"] == len(DEMO_SCRIPT)
    assert Path(result["clip"]["timeline"]).stat().st_size > 0
