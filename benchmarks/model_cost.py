"""Cost of the registered models: parameters, inference latency and training-step time.

For each model (untrained, at its default feature's shape):

- ``params``: the parameter count;
- ``infer_ms``: median latency of one 3-second utterance (300 frames), the recognizer's call
  (``model(x, mask)`` in eval mode, no gradients) on ONE thread;
- ``feature_ms``: median time of the model's default feature for that utterance (3 s of a
  speech-like waveform at 16 kHz) on one thread, so ``feature_ms + infer_ms`` is the cost of one
  prediction after decoding;
- ``e2e_ms``: median time of the whole prediction of that waveform by a saved bundle of the model
  (:meth:`emovox.inference.recognizer.Recognizer.predict_batch`: feature, model, softmax), one
  thread;
- ``train_ms``: median time of one training step (forward, backward, AdamW step) on a batch of 32
  crops of 1.5 s (150 frames), and ``train_vs_cnn``, its ratio to ``cnn``'s.

Each measurement is repeated ``--rounds`` times and the minimum of the medians is kept, which is
the least disturbed by other work on a shared machine. Prints a Markdown table; ``--json`` writes
the numbers too.

    nice -n 19 python benchmarks/model_cost.py [--models resnet,crnn] [--threads 1] [--json out]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from emovox.features import make_feature
from emovox.inference.bundle import save_bundle
from emovox.inference.recognizer import Recognizer
from emovox.models import build_model, model_class


def default_feature(name: str):
    params = dict(model_class(name).default_feature)
    return make_feature(params.pop("name"), **params)


def speech_like(seconds: float, sr: int) -> np.ndarray:
    """A voiced-like waveform with a gliding pitch and syllable-rate loudness, float32."""
    t = np.arange(round(seconds * sr)) / sr
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(h * phase) / h for h in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    noise = 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return (0.2 * voiced * envelope + noise).astype(np.float32)


def in_shape(name: str) -> tuple[int, int]:
    """The (streams, bins) of the model's default feature."""
    feature = default_feature(name)
    x = feature.extract(speech_like(1.0, feature.sample_rate))
    return int(x.shape[0]), int(x.shape[1])


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times)


class Probe:
    """One model with its inputs: :meth:`infer` (one utterance) and :meth:`step` (a batch)."""

    def __init__(self, name: str) -> None:
        torch.manual_seed(0)
        shape = in_shape(name)
        self.name = name
        self.model = build_model(name, 8, shape)
        self.x1 = torch.randn(1, *shape, 300)
        self.m1 = torch.ones(1, 300, dtype=torch.bool)
        self.xb = torch.randn(32, *shape, 150)
        self.mb = torch.ones(32, 150, dtype=torch.bool)
        self.yb = torch.randint(0, 8, (32,))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.feature = default_feature(name)
        self.wave = speech_like(3.0, self.feature.sample_rate)
        with tempfile.TemporaryDirectory() as tmp:
            labels = [f"class{i}" for i in range(8)]
            self.recognizer = Recognizer.load(save_bundle(tmp, self.model, self.feature, labels))

    def featurize(self) -> None:
        self.feature([self.wave])

    def predict(self) -> None:
        self.recognizer.predict_batch([self.wave], sr=self.feature.sample_rate)

    def infer(self) -> None:
        with torch.no_grad():
            self.model(self.x1, self.m1)

    def step(self) -> None:
        loss = self.loss_fn(self.model(self.xb, self.mb), self.yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def measure(names: list[str], rounds: int, threads: int) -> list[dict]:
    """Parameters, inference ms per utterance (1 thread) and training-step ms of each model.

    The models take turns within every round, so that they all see the same background load.
    """
    probes = [Probe(n) for n in names]
    infer = {n: float("inf") for n in names}
    feat = {n: float("inf") for n in names}
    e2e = {n: float("inf") for n in names}
    train = {n: float("inf") for n in names}
    for _ in range(rounds):
        for p in probes:
            torch.set_num_threads(1)
            p.model.eval()
            p.infer()
            infer[p.name] = min(infer[p.name], median_ms(p.infer, 30))
            p.featurize()
            feat[p.name] = min(feat[p.name], median_ms(p.featurize, 10))
            p.predict()
            e2e[p.name] = min(e2e[p.name], median_ms(p.predict, 10))
            torch.set_num_threads(threads)
            p.model.train()
            p.step()
            train[p.name] = min(train[p.name], median_ms(p.step, 5))
    return [
        {
            "model": p.name,
            "params": p.model.n_parameters,
            "infer_ms": round(infer[p.name], 2),
            "feature_ms": round(feat[p.name], 2),
            "e2e_ms": round(e2e[p.name], 2),
            "train_ms": round(train[p.name], 1),
        }
        for p in probes
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default="resnet,crnn,conformer,timnet", help="comma-separated; cnn is added"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="threads of the training step")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if "cnn" not in names:
        names.insert(0, "cnn")
    rows = measure(names, args.rounds, args.threads)
    base = next(r["train_ms"] for r in rows if r["model"] == "cnn")
    print(
        f"| model | parameters | network ms/utt (300 frames, 1 thread) | feature ms (3 s, 1 "
        f"thread) | end-to-end ms (3-s waveform, 1 thread) | train step ms ({args.threads} "
        f"thread(s), 32 x 150 frames) | train cost vs cnn |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        r["train_vs_cnn"] = round(r["train_ms"] / base, 2)
        print(
            f"| `{r['model']}` | {r['params']} | {r['infer_ms']:.2f} | {r['feature_ms']:.2f} "
            f"| {r['e2e_ms']:.2f} | {r['train_ms']:.0f} "
            f"| {r['train_vs_cnn']:.2f} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
