"""Development sweep over recipes, scored on validation actors of every EmoBox fold.

A more robust version of ``dev_tune.py``: instead of one fold's four validation actors, every
recipe is trained on the training side of each of the six EmoBox folds *minus* four validation
actors (drawn by :func:`emovox.data.protocols.validation_split` from that side, seed 0, the same for
every recipe), then scored on those validation actors only. The 24 validation actors together give
a choice that does not hang on four people; the test actors of a fold are never read for it. The
validation probabilities of each run are kept, so ensembles of any runs can be scored afterwards
without training again (``report``).

Features are extracted once (``export``) into one safetensors file, so the runs can go to another
machine (a GPU one: ``--train-param device=cuda`` in a recipe, ``--workers`` processes at once)
that has no copy of the corpus:

    python benchmarks/dev_sweep.py export --data ../shared/data/ravdess \\
        --out .sweep/logmel.safetensors
    python benchmarks/dev_sweep.py run --features .sweep/logmel.safetensors \\
        --grid benchmarks/sweep_grid.json --out results.jsonl --workers 8 --device cuda
    python benchmarks/dev_sweep.py report results.jsonl --ensemble base,base-s1,base-s2

``functionals`` scores the logistic regression of ``cnn-egemaps`` (or, with ``--model
cnn-functionals``, of ``cnn-functionals``) alone (it trains in seconds, on the CPU) from an
export of that model's feature (``export --model cnn-egemaps``); its rows fuse with the networks'
in ``report --ensemble cnn-e120:0.5,egemaps-lr-C0.1:0.5``.

Each grid entry is ``{"tag": ..., "model": ..., "params": {...}, "train": {...}}``; ``train``
overrides the model's training recipe. Runs already in ``--out`` are skipped (resumable).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import click
import numpy as np

FOLDS = 6
VAL_SEED = 0
VAL_FRACTION = 0.2


# -- export (needs the corpus) -----------------------------------------------------------------
def export_features(data: str, out: str, model: str, feature_params: dict) -> None:
    """Write the model's feature of every RAVDESS speech file, with the manifest, to ``out``."""
    from safetensors.numpy import save_file

    from emovox.data.corpora import scan_corpus
    from emovox.data.labels import resolve_labels
    from emovox.features import FeatureCache
    from emovox.train.dataset import load_dataset
    from emovox.train.recipe import default_feature

    feature = default_feature(model, **feature_params)
    ds = load_dataset(
        scan_corpus("ravdess", data),
        resolve_labels("emotion"),
        feature,
        FeatureCache(),
        progress=True,
    )
    lengths = np.array([f.shape[-1] for f in ds.features], dtype=np.int64)
    flat = np.concatenate([f for f in ds.features], axis=-1).astype(np.float16)
    rows = [dataclasses.asdict(u) | {"path": Path(u.path).name} for u in ds.manifest]
    meta = {
        "feature": json.dumps(feature.to_dict()),
        "classes": json.dumps(ds.classes),
        "manifest": json.dumps(rows),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {"features": flat, "lengths": lengths, "y": ds.y.astype(np.int64)}, out, metadata=meta
    )
    print(
        f"{out}: {len(lengths)} utterances, {flat.shape} float16, "
        f"{os.path.getsize(out) / 2**20:.1f} MiB"
    )


def load_export(path: str):
    """The :class:`emovox.train.pipeline.Dataset` stored by :func:`export_features`."""
    from safetensors import safe_open

    from emovox.data.manifest import Manifest, Utterance
    from emovox.features import make_feature
    from emovox.train.dataset import Dataset

    with safe_open(path, "np") as f:
        meta = f.metadata()
        flat = f.get_tensor("features").astype(np.float32)
        lengths = f.get_tensor("lengths")
        y = f.get_tensor("y")
    params = json.loads(meta["feature"])
    feature = make_feature(params.pop("name"), **params)
    edges = np.concatenate([[0], np.cumsum(lengths)])
    feats = [np.ascontiguousarray(flat[..., a:b]) for a, b in itertools.pairwise(edges)]
    manifest = Manifest([Utterance(**r) for r in json.loads(meta["manifest"])])
    return Dataset(manifest, feats, y, json.loads(meta["classes"]), feature, {})


# -- runs --------------------------------------------------------------------------------------
def dev_split(ds, fold_index: int, protocol: str = "emobox") -> tuple[list[int], list[int]]:
    """Fold ``fold_index``'s training side split into (train, validation) by actor."""
    from emovox.data.protocols import make_folds, validation_split

    fold = make_folds(ds.manifest, protocol)[fold_index - 1]
    return validation_split(ds.manifest, list(fold.train), VAL_FRACTION, VAL_SEED)


def run_one(ds, entry: dict, fold_index: int, device: str, protocol: str = "emobox") -> dict:
    """Train ``entry``'s recipe on the fold's training actors (validation actors held out) for
    its fixed number of epochs, and score the last weights on the validation actors."""
    from emovox.metrics import classification_metrics
    from emovox.models import model_class
    from emovox.train.config import TrainConfig
    from emovox.train.pipeline import fit, predict_subset
    from emovox.train.recipe import Recipe

    train_idx, val_idx = dev_split(ds, fold_index, protocol)
    from emovox.apps.cli.options import training_settings

    train = {"device": device, **entry.get("train", {}), "val_fraction": 0}
    config = TrainConfig.for_model(model_class(entry["model"]), **training_settings(train))
    if config.augment_copies or config.speed_perturb:
        raise ValueError("waveform variants need the corpus; the sweep runs on stored features")
    t0 = time.time()
    recipe = Recipe(entry["model"], ds.feature, config, entry.get("params") or {})
    net, _, _ = fit(ds, train_idx, recipe, progress=False)
    seconds = time.time() - t0
    proba = predict_subset(net, ds, val_idx, config)
    m = classification_metrics(ds.y[val_idx], proba.argmax(1), ds.classes)
    return {
        "tag": entry["tag"],
        "fold": fold_index,
        "model": entry["model"],
        "params": entry.get("params", {}),
        "train": entry.get("train", {}),
        "val_speakers": sorted({ds.manifest[i].speaker for i in val_idx}),
        "val_indices": [int(i) for i in val_idx],
        "ua": round(m["ua"], 3),
        "wa": round(m["wa"], 3),
        "f1": round(m["macro_f1"], 3),
        "seconds": round(seconds, 1),
        "device": device,
        "proba": np.round(proba, 5).tolist(),
    }


_DS = None


def _worker_init(features: str, threads: int) -> None:
    import torch

    global _DS
    torch.set_num_threads(threads)
    _DS = load_export(features)


def _worker(job: tuple[dict, int, str, str]) -> dict:
    entry, fold, device, protocol = job
    try:
        return run_one(_DS, entry, fold, device, protocol)
    except Exception as exc:  # one broken recipe must not stop the sweep
        return {"tag": entry["tag"], "fold": fold, "error": f"{type(exc).__name__}: {exc}"}


def done_runs(out: Path) -> set[tuple[str, int]]:
    """(tag, fold) pairs already written to ``out`` without error."""
    done = set()
    if out.is_file():
        for line in out.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a half-written last line
            if "error" not in row:
                done.add((row["tag"], row["fold"]))
    return done


def functional_runs(
    ds,
    c_values: list[float],
    folds: list[int],
    protocol: str = "emobox",
    model_name: str = "cnn-egemaps",
):
    """A late-fusion model's regression branch alone (``cnn-egemaps``, ``cnn-functionals``) on
    each fold's validation actors, for each ``C``: per-speaker normalised functionals (each side
    with its own speakers' statistics, as ``speaker_norm`` does), fitted by
    :meth:`CNNEGeMAPS.fit_regression`. One row per run, in the format of :func:`run_one` (tag
    ``<regression name>-C<C>``, e.g. ``egemaps-lr-C0.1``)."""
    import torch

    from emovox.features.normalization import normalize_by_speaker
    from emovox.metrics import classification_metrics
    from emovox.models import build_model

    in_shape = tuple(ds.features[0].shape[:2])
    for c in c_values:
        for f in folds:
            t0 = time.time()
            tr, va = dev_split(ds, f, protocol)
            model = build_model(model_name, len(ds.classes), in_shape, C=c)

            def functionals(idx, model=model):
                xs = normalize_by_speaker(
                    [ds.features[i] for i in idx], [ds.manifest[i].speaker for i in idx]
                )
                return model.functionals_of(xs)

            model.fit_regression(functionals(tr), ds.y[tr])
            with torch.no_grad():
                logits = model.regression_logits(torch.from_numpy(functionals(va)).float())
            proba = torch.softmax(logits, 1).numpy()
            m = classification_metrics(ds.y[va], proba.argmax(1), ds.classes)
            yield {
                "tag": f"{model.regression_name}-C{c:g}",
                "fold": f,
                "model": f"{model_name} (regression branch)",
                "params": {"C": c},
                "train": {"speaker_norm": True},
                "val_speakers": sorted({ds.manifest[i].speaker for i in va}),
                "val_indices": [int(i) for i in va],
                "ua": round(m["ua"], 3),
                "wa": round(m["wa"], 3),
                "f1": round(m["macro_f1"], 3),
                "seconds": round(time.time() - t0, 2),
                "device": "cpu",
                "proba": np.round(proba, 5).tolist(),
                "y": ds.y[va].tolist(),
            }


# -- report ------------------------------------------------------------------------------------
def read_runs(paths: list[str]) -> dict[str, dict[int, dict]]:
    """tag -> fold -> run, from one or more result files (the first of duplicates kept)."""
    runs: dict[str, dict[int, dict]] = {}
    for p in paths:
        for line in Path(p).read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "error" in row:
                print(f"{row['tag']} fold {row['fold']}: {row['error']}")
                continue
            runs.setdefault(row["tag"], {}).setdefault(row["fold"], row)
    return runs


def parse_members(spec: str) -> tuple[list[str], list[float]]:
    """``"a,b"`` (equal weights) or ``"a:0.3,b:0.7"`` -> tags and weights summing to 1."""
    tags, weights = [], []
    for part in spec.split(","):
        tag, _, w = part.partition(":")
        tags.append(tag)
        weights.append(float(w) if w else 1.0)
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"{spec!r}: the weights must add up to more than 0")
    return tags, [w / total for w in weights]


def ensemble_ua(
    runs: dict[str, dict[int, dict]], tags: list[str], weights: list[float] | None = None
) -> dict[int, float]:
    """Per-fold validation UA of the (weighted) mean probabilities of ``tags`` (on the folds
    all of them ran)."""
    from emovox.metrics import unweighted_accuracy

    missing = [t for t in tags if t not in runs]
    if missing:
        raise ValueError(f"no runs of {missing}")
    weights = weights or [1.0 / len(tags)] * len(tags)
    folds = sorted(set.intersection(*(set(runs[t]) for t in tags)))
    out = {}
    for f in folds:
        rows = [runs[t][f] for t in tags]
        if len({tuple(r["val_indices"]) for r in rows}) != 1:
            raise ValueError(f"fold {f}: the runs were scored on different validation actors")
        proba = sum(w * np.asarray(r["proba"]) for w, r in zip(weights, rows, strict=True))
        out[f] = 100 * unweighted_accuracy(rows[0]["y"], proba.argmax(1), proba.shape[1])
    return out


@click.group()
def main() -> None:
    """Development sweeps on validation actors of the EmoBox folds."""


@main.command()
@click.option("--data", required=True, help="The RAVDESS folder.")
@click.option("--out", required=True)
@click.option("--model", default="cnn", help="Whose default feature to export.")
@click.option("--feature-param", multiple=True, metavar="KEY=VALUE")
def export(data: str, out: str, model: str, feature_param: tuple[str, ...]) -> None:
    """Extract features once into a safetensors file (the sweep's only input)."""
    from emovox.apps.cli.options import parse_assignments

    export_features(data, out, model, parse_assignments(feature_param))


@main.command()
@click.option("--features", required=True)
@click.option("--grid", required=True, help="JSON list of recipes.")
@click.option("--out", required=True, help="JSONL results (appended; done runs are skipped).")
@click.option("--workers", type=int, default=1)
@click.option("--threads", type=int, default=1, help="torch threads per worker")
@click.option("--device", default="cpu")
@click.option("--only", default="", help="comma list of tags to run (default: all)")
@click.option("--folds", default="1,2,3,4,5,6")
@click.option("--protocol", default="emobox", help="whose folds' training sides to use")
def run(features, grid, out, workers, threads, device, only, folds, protocol) -> None:
    """Train every recipe of the grid on every fold; write one JSON line per run."""
    entries = json.loads(Path(grid).read_text())
    if only:
        keep = set(only.split(","))
        entries = [e for e in entries if e["tag"] in keep]
    out_path = Path(out)
    done = done_runs(out_path)
    fold_list = [int(f) for f in folds.split(",")]
    jobs = [
        (e, f, device, protocol) for e in entries for f in fold_list if (e["tag"], f) not in done
    ]
    print(f"{len(jobs)} runs ({len(done)} already done), {workers} workers on {device}", flush=True)
    ds = load_export(features)
    ys = {f: ds.y[dev_split(ds, f, protocol)[1]].tolist() for f in fold_list}
    t0 = time.time()
    with contextlib.ExitStack() as stack:
        if workers > 1:  # separate processes (spawned: CUDA cannot be forked)
            pool = stack.enter_context(
                mp.get_context("spawn").Pool(workers, _worker_init, (features, threads))
            )
            rows = pool.imap_unordered(_worker, jobs)
        else:  # in this process, in order (its torch thread count restored afterwards)
            import torch

            stack.callback(torch.set_num_threads, torch.get_num_threads())
            _worker_init(features, threads)
            rows = map(_worker, jobs)
        fh = stack.enter_context(out_path.open("a"))
        for row in rows:
            if "error" not in row:
                row["y"] = ys[row["fold"]]
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            status = row.get("error") or f"val UA {row['ua']:.1f} in {row['seconds']:.0f} s"
            print(
                f"[{time.time() - t0:6.0f} s] {row['tag']} fold {row['fold']}: {status}", flush=True
            )


@main.command()
@click.option(
    "--features", required=True, help="an export of the model's feature (e.g. logmel-egemaps)"
)
@click.option("--out", required=True, help="JSONL results (replaced)")
@click.option("--C", "c_values", default="0.01,0.03,0.1,0.3,1", show_default=True)
@click.option("--folds", default="1,2,3,4,5,6")
@click.option("--protocol", default="emobox")
@click.option(
    "--model",
    "model_name",
    default="cnn-egemaps",
    show_default=True,
    help="the late-fusion model whose regression to score (cnn-egemaps, cnn-functionals)",
)
def functionals(
    features: str, out: str, c_values: str, folds: str, protocol: str, model_name: str
) -> None:
    """Score a fusion model's regression branch alone on the validation actors, for each C."""
    ds = load_export(features)
    rows = functional_runs(
        ds,
        [float(c) for c in c_values.split(",")],
        [int(f) for f in folds.split(",")],
        protocol,
        model_name,
    )
    text = "".join(json.dumps(r) + "\n" for r in rows)
    Path(out).write_text(text)
    print(f"{out}: {text.count(chr(10))} runs")


@main.command()
@click.argument("results", nargs=-1, required=True)
@click.option(
    "--ensemble",
    "ensembles",
    multiple=True,
    help="comma list of tags whose probabilities to average, each optionally with a weight "
    "(a:0.3,b:0.7); repeatable",
)
@click.option("--json-out", default=None, help="also write the table as JSON")
@click.option("--markdown", is_flag=True, help="print a Markdown table")
def report(
    results: tuple[str, ...], ensembles: tuple[str, ...], json_out: str | None, markdown: bool
) -> None:
    """Mean validation UA per recipe (and per ensemble) over the folds it ran."""
    runs = read_runs(list(results))
    rows = []
    for tag, by_fold in runs.items():
        uas = [by_fold[f]["ua"] for f in sorted(by_fold)]
        secs = [by_fold[f]["seconds"] for f in sorted(by_fold)]
        rows.append(
            {
                "tag": tag,
                "folds": len(uas),
                "ua": float(np.mean(uas)),
                "std": float(np.std(uas)),
                "per_fold": uas,
                "seconds": float(np.mean(secs)),
            }
        )
    for spec in ensembles:
        tags, weights = parse_members(spec)
        per = ensemble_ua(runs, tags, weights)
        uas = [per[f] for f in sorted(per)]
        rows.append(
            {
                "tag": spec.replace(",", " + "),
                "folds": len(uas),
                "ua": float(np.mean(uas)),
                "std": float(np.std(uas)),
                "per_fold": [round(u, 2) for u in uas],
                "seconds": None,
            }
        )
    rows.sort(key=lambda r: -r["ua"])
    if markdown:
        print("| recipe | folds | validation UA % (mean ± std) | per fold | s per run |")
        print("|---|---|---|---|---|")
    for r in rows:
        per = " ".join(f"{u:5.1f}" for u in r["per_fold"])
        if markdown:
            secs = "ensemble" if r["seconds"] is None else f"{r['seconds']:.0f}"
            print(
                f"| `{r['tag']}` | {r['folds']} | {r['ua']:.2f} ± {r['std']:.2f} "
                f"| {per.replace('  ', ' ')} | {secs} |"
            )
        else:
            print(
                f"{r['tag']:48s} {r['folds']} folds  UA {r['ua']:5.2f} ± {r['std']:4.2f}  [{per}]"
            )
    if json_out:
        Path(json_out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
