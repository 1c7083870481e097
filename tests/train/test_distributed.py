"""Training with DistributedDataParallel: 2 gloo processes (``emovox train --nproc 2``, which
launches torchrun) train a bundle that loads; the epoch is shared out as DistributedSampler
would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from emovox.inference.recognizer import Recognizer
from emovox.train.distributed import is_main, shard, world


def test_shard_gives_every_process_as_many_items_and_covers_the_epoch() -> None:
    order = list(range(10))
    parts = [shard(order, r, 3) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    assert set().union(*parts) == set(order)
    assert shard(order, 0, 1) == order
    assert world() == (0, 1) and is_main()  # no process group here


def test_two_gloo_processes_train_a_bundle_that_loads(synth_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "emovox",
        "train",
        "--data",
        str(synth_corpus),
        "--labels",
        "neutral,happy,sad,angry",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--param",
        "channels=[4,8,8,8]",
        "--no-cache",
        "--quiet",
        "--out",
        str(out),
        "--nproc",
        "2",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["training_result"]["processes"] == 2
    assert config["training_result"]["epochs_run"] == 2
    rec = Recognizer.load(out)
    pred = rec.predict(next(synth_corpus.rglob("*.wav")))
    assert pred.label in rec.labels
    assert (out / "checkpoint" / "last.safetensors").is_file()
    assert "saved" in done.stdout and done.stdout.count("saved") == 1  # process 0 reports
