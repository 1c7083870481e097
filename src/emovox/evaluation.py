"""Cross-validated, speaker-independent evaluation: ``emovox evaluate``.

For every fold a fresh model is trained on the training speakers (validation speakers for early
stopping are drawn from them), then scored on the test speakers. Results per fold are written as
they finish, so an interrupted run resumes where it stopped. The summary goes to ``metrics.json``,
``confusion.png``, ``report.md`` and ``predictions.csv``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from emovox import __version__
from emovox._fs import atomic_write_text
from emovox.features import Feature, FeatureCache
from emovox.labels import LabelScheme
from emovox.manifest import Manifest
from emovox.metrics import classification_metrics
from emovox.models import build_model
from emovox.pipeline import fit, load_dataset, predict_subset, resolve_recipe, variant_options
from emovox.progress import console
from emovox.protocols import SpeakerLeakWarning, make_folds
from emovox.robustness import (
    ConditionScorer,
    condition_report_lines,
    parse_conditions,
    summarize_conditions,
)
from emovox.taxonomy import dropped_by_corpus
from emovox.training import TrainConfig


def machine_info() -> dict:
    """Where a measurement was taken."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def evaluate(
    manifest: Manifest,
    scheme: LabelScheme,
    model: str,
    out_dir: str | os.PathLike,
    *,
    protocol: str = "emobox",
    k: int | None = None,
    folds: list[int] | None = None,
    feature: Feature | None = None,
    config: TrainConfig | None = None,
    model_params: dict | None = None,
    cache: FeatureCache | None = None,
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    conditions: Sequence[str] = (),
) -> dict:
    """Run ``protocol`` over ``manifest`` and write the results into ``out_dir``.

    Args:
        folds: 1-based fold numbers to run (default: all).
        resume: reuse the results of folds already finished in ``out_dir``.
        command: the command line to record in ``metrics.json``.
        conditions: test conditions, e.g. ``["white:20", "gain:-20"]``
            (:func:`emovox.augment.parse_condition`): each fold's model is also scored on its
            test files under each (``conditions`` in the fold rows and in ``metrics.json``).

    Returns:
        The content of ``metrics.json``.
    """
    t_start = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    feature, config = resolve_recipe(model, feature, config)
    _log_dropped(dropped_by_corpus(manifest, scheme), scheme)
    conds = parse_conditions(conditions)  # a typo fails here, before any training
    data = load_dataset(manifest, scheme, feature, cache, progress, **variant_options(config))
    scorer = ConditionScorer(data, conds, cache, progress) if conditions else None
    all_folds = make_folds(data.manifest, protocol, k=k, seed=config.seed)
    if folds:
        unknown = sorted(set(folds) - {f.index for f in all_folds})
        if unknown:
            raise ValueError(f"fold(s) {unknown} do not exist; {protocol} has {len(all_folds)}")
        chosen = [f for f in all_folds if f.index in set(folds)]
    else:
        chosen = all_folds

    fold_rows, pred_rows = [], []
    train_seconds = infer_seconds = 0.0
    n_infer = 0
    for fold in chosen:
        fold_dir = out / f"fold_{fold.index}"
        done = fold_dir / "metrics.json"
        if resume and done.is_file():
            row = json.loads(done.read_text())
            preds = _read_predictions(fold_dir / "predictions.csv")
            console.log(f"fold {fold.index}: reusing finished result (UA {row['ua']:.1f})")
        else:
            console.log(
                f"fold {fold.index}/{len(all_folds)}: test speakers {', '.join(fold.test_speakers)}"
                if fold.test_speakers
                else f"fold {fold.index}/{len(all_folds)}"
            )
            net, result, val_speakers = fit(
                data,
                fold.train,
                model,
                config,
                model_params,
                checkpoint_dir=None,
                progress=progress,
            )
            ty = data.y[list(fold.test)]
            t0 = time.time()
            proba = predict_subset(net, data, fold.test, config)
            dt = time.time() - t0
            m = classification_metrics(ty, proba.argmax(1), data.classes)
            row = {
                "fold": fold.index,
                "test_speakers": list(fold.test_speakers),
                "validation_speakers": val_speakers,
                "ua": m["ua"],
                "wa": m["wa"],
                "macro_f1": m["macro_f1"],
                "n_test": m["n"],
                "n_train": len(fold.train),
                "best_epoch": result.best_epoch,
                "best_val_ua": result.best_val_ua,
                "epochs_run": len(result.history),
                "train_seconds": round(result.seconds, 2),
                "inference_seconds": round(dt, 4),
                "n_parameters": net.n_parameters,
            }
            parts = component_scores(net, data, fold.test, config)
            if parts:
                row["components"] = parts
            if scorer is not None:
                row["conditions"] = scorer.score(net, fold.test, config)
            preds = [
                {
                    "fold": fold.index,
                    "path": data.manifest[i].path,
                    "speaker": data.manifest[i].speaker,
                    "label": data.classes[data.y[i]],
                    "predicted": data.classes[int(p.argmax())],
                    **{f"p_{c}": round(float(v), 6) for c, v in zip(data.classes, p, strict=True)},
                }
                for i, p in zip(fold.test, proba, strict=True)
            ]
            _write_csv(fold_dir / "predictions.csv", preds)
            atomic_write_text(done, json.dumps(row, indent=2))
            console.log(
                f"fold {fold.index}: UA {row['ua']:.1f}  WA {row['wa']:.1f}  "
                f"F1 {row['macro_f1']:.1f}  (best epoch {result.best_epoch}, "
                f"{result.seconds:.0f} s)"
            )
        fold_rows.append(row)
        pred_rows.extend(preds)
        train_seconds += row["train_seconds"]
        infer_seconds += row["inference_seconds"]
        n_infer += row["n_test"]

    index = {c: i for i, c in enumerate(data.classes)}
    y_true = [index[r["label"]] for r in pred_rows]
    y_pred = [index[r["predicted"]] for r in pred_rows]
    pooled = classification_metrics(y_true, y_pred, data.classes)
    arr = {k: np.array([r[k] for r in fold_rows]) for k in ("ua", "wa", "macro_f1")}
    metrics = {
        "protocol": protocol if k is None else f"{protocol}-{k}",
        "model": model,
        "labels": data.classes,
        "ua": float(arr["ua"].mean()),
        "wa": float(arr["wa"].mean()),
        "macro_f1": float(arr["macro_f1"].mean()),
        "ua_std": float(arr["ua"].std()),
        "wa_std": float(arr["wa"].std()),
        "macro_f1_std": float(arr["macro_f1"].std()),
        "pooled": {k: pooled[k] for k in ("ua", "wa", "macro_f1")},
        "folds": fold_rows,
        "per_class": pooled["per_class"],
        "confusion": pooled["confusion"],
        "n_utterances": len(data.manifest),
        "n_test_predictions": len(pred_rows),
        "skipped_files": len(data.errors),
        "dropped_utterances": dropped_by_corpus(manifest, scheme),
        "feature": feature.to_dict(),
        "training": config.to_dict(),
        "model_params": model_params or {},
        "n_parameters": max((r.get("n_parameters", 0) for r in fold_rows), default=0)
        or build_model(
            model, len(data.classes), tuple(data.features[0].shape[:2]), **(model_params or {})
        ).n_parameters,
        "timing": {
            "feature_extraction_seconds": round(data.extract_seconds, 2),
            "training_seconds": round(train_seconds, 2),
            "inference_ms_per_utterance": round(1000 * infer_seconds / max(n_infer, 1), 3),
            "wall_seconds": round(time.time() - t_start, 2),
        },
        "command": command or [],
        "machine": machine_info(),
        "emovox_version": __version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if scorer is not None:
        metrics["conditions"] = summarize_conditions(fold_rows, scorer.names)
    if any("components" in r for r in fold_rows):
        metrics["components"] = summarize_components(fold_rows)
    write_results(out, metrics, pred_rows)
    return metrics


def component_scores(net, data, indices, config: TrainConfig) -> dict[str, dict]:
    """UA, WA and macro-F1 on ``data[indices]`` of each part of a fusion model on its own (for
    models with a ``components()`` method returning name -> module), from the same trained
    weights: the ablation of a fusion costs no extra training."""
    parts = getattr(net, "components", None)
    if not callable(parts):
        return {}
    y = data.y[list(indices)]
    out = {}
    for name, part in parts().items():
        m = classification_metrics(
            y, predict_subset(part, data, indices, config).argmax(1), data.classes
        )
        out[name] = {k: m[k] for k in ("ua", "wa", "macro_f1")}
    return out


def summarize_components(fold_rows: list[dict]) -> dict[str, dict]:
    """Mean and standard deviation over the folds of each component's UA, WA and macro-F1."""
    names = dict.fromkeys(n for r in fold_rows for n in r.get("components", {}))
    out = {}
    for name in names:
        rows = [r["components"][name] for r in fold_rows if name in r.get("components", {})]
        out[name] = {"folds": len(rows)}
        for k in ("ua", "wa", "macro_f1"):
            vals = np.array([row[k] for row in rows])
            out[name][k] = float(vals.mean())
            out[name][f"{k}_std"] = float(vals.std())
    return out


def write_results(
    out: Path, metrics: dict, pred_rows: list[dict], title: str | None = None
) -> None:
    """Write ``metrics.json``, ``predictions.csv``, ``confusion.png`` and ``report.md``."""
    from emovox.plots import plot_confusion

    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_csv(out / "predictions.csv", pred_rows)
    plot_confusion(
        metrics["confusion"]["matrix"],
        metrics["labels"],
        out / "confusion.png",
        title=title or f"{metrics['model']} · {metrics['protocol']} · UA {metrics['ua']:.1f} %",
    )
    atomic_write_text(out / "report.md", render_report(metrics))


def evaluate_cross_corpus(
    train: Manifest,
    test: Manifest,
    scheme: LabelScheme,
    model: str,
    out_dir: str | os.PathLike,
    *,
    feature: Feature | None = None,
    config: TrainConfig | None = None,
    model_params: dict | None = None,
    cache: FeatureCache | None = None,
    progress: bool = True,
    command: list[str] | None = None,
    sources: dict[str, list[str]] | None = None,
) -> dict:
    """Train on ``train`` (the union of the training corpora), test on ``test`` (other corpora).

    Utterances whose labels are outside ``scheme`` are dropped and counted per corpus (logged, and
    in ``metrics.json`` as ``dropped_utterances``). Validation speakers for early stopping come
    from the training corpora. Writes the same ``metrics.json`` (protocol ``cross-corpus``, one
    fold: the test set, plus ``per_test_corpus`` scores), ``confusion.png``, ``report.md`` and
    ``predictions.csv`` as :func:`evaluate`.

    Args:
        sources: what to record as the corpora, e.g. ``{"train": ["ravdess:DIR"], "test": [...]}``.

    Returns:
        The content of ``metrics.json``.
    """
    t_start = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    feature, config = resolve_recipe(model, feature, config)
    leaked = sorted(set(train.speakers) & set(test.speakers))
    if leaked:
        warnings.warn(
            f"{len(leaked)} speaker(s) are in both the training and the test corpora "
            f"({', '.join(leaked[:10])}{' ...' if len(leaked) > 10 else ''}): the test is not "
            f"speaker-independent",
            SpeakerLeakWarning,
            stacklevel=2,
        )
    dropped = {"train": dropped_by_corpus(train, scheme), "test": dropped_by_corpus(test, scheme)}
    for side, counts in dropped.items():
        _log_dropped(counts, scheme, f"{side} corpus ")
    train_data = load_dataset(train, scheme, feature, cache, progress, **variant_options(config))
    absent = [c for c in scheme.classes if c not in set(train_data.manifest.labels)]
    if absent:
        raise ValueError(
            f"the training corpora have no utterance of {absent}; choose --labels among "
            f"{train_data.manifest.labels}"
        )
    test_data = load_dataset(test, scheme, feature, cache, progress)
    classes = train_data.classes
    console.log(
        f"cross-corpus: training on {len(train_data.manifest)} utterances of "
        f"{', '.join(sorted({u.corpus for u in train}))}, testing on {len(test_data.manifest)} "
        f"of {', '.join(sorted({u.corpus for u in test}))}"
    )
    net, result, val_speakers = fit(
        train_data,
        range(len(train_data.manifest)),
        model,
        config,
        model_params,
        checkpoint_dir=None,
        progress=progress,
    )
    test_idx = range(len(test_data.manifest))
    ty = test_data.y[list(test_idx)]
    t0 = time.time()
    proba = predict_subset(net, test_data, test_idx, config)
    infer_seconds = time.time() - t0
    pred = proba.argmax(1)
    m = classification_metrics(ty, pred, classes)
    test_corpora = sorted({u.corpus for u in test_data.manifest})
    per_corpus = {}
    for corpus in test_corpora:
        idx = [i for i, u in enumerate(test_data.manifest) if u.corpus == corpus]
        mc = classification_metrics(ty[idx], pred[idx], classes)
        per_corpus[corpus] = {k: mc[k] for k in ("ua", "wa", "macro_f1", "n", "per_class")}
        per_corpus[corpus]["confusion"] = mc["confusion"]
    row = {
        "fold": 1,
        "test_corpora": test_corpora,
        "test_speakers": test_data.manifest.speakers,
        "validation_speakers": val_speakers,
        "ua": m["ua"],
        "wa": m["wa"],
        "macro_f1": m["macro_f1"],
        "n_test": m["n"],
        "n_train": len(train_data.manifest),
        "best_epoch": result.best_epoch,
        "best_val_ua": result.best_val_ua,
        "epochs_run": len(result.history),
        "train_seconds": round(result.seconds, 2),
        "inference_seconds": round(infer_seconds, 4),
    }
    pred_rows = [
        {
            "fold": 1,
            "corpus": u.corpus,
            "path": u.path,
            "speaker": u.speaker,
            "label": classes[int(ty[i])],
            "predicted": classes[int(pred[i])],
            **{f"p_{c}": round(float(v), 6) for c, v in zip(classes, proba[i], strict=True)},
        }
        for i, u in enumerate(test_data.manifest)
    ]

    def corpora(side: str, manifest: Manifest, data) -> dict:
        used = data.manifest.counts("corpus")
        return {
            c: {
                "utterances": n,
                "used": used.get(c, 0),
                "dropped_utterances": dropped[side].get(c, 0),
                "speakers": len({u.speaker for u in manifest if u.corpus == c}),
            }
            for c, n in sorted(manifest.counts("corpus").items())
        }

    total_dropped: dict[str, int] = {}
    for counts in dropped.values():
        for c, n in counts.items():
            total_dropped[c] = total_dropped.get(c, 0) + n
    metrics = {
        "protocol": "cross-corpus",
        "model": model,
        "labels": classes,
        "train_corpora": corpora("train", train, train_data),
        "test_corpora": corpora("test", test, test_data),
        "sources": sources or {},
        "ua": m["ua"],
        "wa": m["wa"],
        "macro_f1": m["macro_f1"],
        "ua_std": 0.0,
        "wa_std": 0.0,
        "macro_f1_std": 0.0,
        "pooled": {k: m[k] for k in ("ua", "wa", "macro_f1")},
        "folds": [row],
        "per_class": m["per_class"],
        "confusion": m["confusion"],
        "per_test_corpus": per_corpus,
        "n_utterances": len(train_data.manifest) + len(test_data.manifest),
        "n_train_utterances": len(train_data.manifest),
        "n_test_predictions": len(pred_rows),
        "skipped_files": len(train_data.errors) + len(test_data.errors),
        "dropped_utterances": dict(sorted(total_dropped.items())),
        "feature": feature.to_dict(),
        "training": config.to_dict(),
        "model_params": model_params or {},
        "n_parameters": net.n_parameters,
        "timing": {
            "feature_extraction_seconds": round(
                train_data.extract_seconds + test_data.extract_seconds, 2
            ),
            "training_seconds": round(result.seconds, 2),
            "inference_ms_per_utterance": round(1000 * infer_seconds / max(len(pred_rows), 1), 3),
            "wall_seconds": round(time.time() - t_start, 2),
        },
        "command": command or [],
        "machine": machine_info(),
        "emovox_version": __version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    arrow = f"{'+'.join(metrics['train_corpora'])} → {'+'.join(test_corpora)}"
    write_results(out, metrics, pred_rows, title=f"{model} · {arrow} · UA {m['ua']:.1f} %")
    return metrics


def render_report(m: dict) -> str:
    """A Markdown summary of ``metrics.json``."""
    headline = (
        f"UA **{m['ua']:.2f} ± {m['ua_std']:.2f}** · WA {m['wa']:.2f} ± {m['wa_std']:.2f} · "
        f"macro-F1 {m['macro_f1']:.2f} ± {m['macro_f1_std']:.2f} "
        f"(mean ± std over {len(m['folds'])} folds; pooled UA {m['pooled']['ua']:.2f})."
    )
    if m["protocol"] == "cross-corpus":
        headline = (
            f"UA **{m['ua']:.2f}** · WA {m['wa']:.2f} · macro-F1 {m['macro_f1']:.2f} "
            f"(one model trained on the training corpora, scored on the test corpora)."
        )
    lines = [
        f"# {m['model']} — {m['protocol']} protocol",
        "",
        headline,
        "",
        f"{m['n_utterances']} utterances, {len(m['labels'])} classes: {', '.join(m['labels'])}.",
        "",
        *_corpora_lines(m),
        "| fold | test speakers | UA | WA | macro-F1 | best epoch | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in m["folds"]:
        lines.append(
            f"| {f['fold']} | {_fold_test_set(f)} | {f['ua']:.2f} | "
            f"{f['wa']:.2f} | {f['macro_f1']:.2f} | {f['best_epoch']} | {f['train_seconds']:.0f} |"
        )
    lines += condition_report_lines(m)
    lines += [
        "",
        "## Per class (pooled over folds)",
        "",
        "| class | precision | recall | F1 | n |",
        "|---|---|---|---|---|",
    ]
    for c, v in m["per_class"].items():
        lines.append(
            f"| {c} | {v['precision']:.1f} | {v['recall']:.1f} | {v['f1']:.1f} | {v['support']} |"
        )
    t = m["timing"]
    lines += [
        "",
        "![confusion matrix](confusion.png)",
        "",
        "## Timing",
        "",
        f"- feature extraction: {t['feature_extraction_seconds']:.1f} s",
        f"- training (all folds): {t['training_seconds']:.1f} s",
        f"- inference: {t['inference_ms_per_utterance']:.2f} ms per utterance",
        f"- wall clock: {t['wall_seconds']:.1f} s on {m['machine']['cpu']} "
        f"({m['machine']['cores']} cores)",
        "",
        "## Reproduce",
        "",
        "```",
        " ".join(m["command"]) if m["command"] else "(not recorded)",
        "```",
        "",
    ]
    return "\n".join(lines)


def _fold_test_set(fold: dict) -> str:
    """What a fold tested on: the test corpora of a cross-corpus run, else the test speakers."""
    if fold.get("test_corpora"):
        return ", ".join(fold["test_corpora"])
    return ", ".join(fold["test_speakers"]) or "(random)"


def _corpora_lines(m: dict) -> list[str]:
    """Report lines on the corpora: train → test scores and the utterances dropped by labels."""
    lines = []
    if m.get("train_corpora"):
        lines += [
            f"Trained on {', '.join(m['train_corpora'])}; tested on "
            f"{', '.join(m['test_corpora'])}.",
            "",
            "| side | corpus | utterances | used | dropped (labels) | speakers |",
            "|---|---|---|---|---|---|",
        ]
        for side in ("train", "test"):
            for c, v in m[f"{side}_corpora"].items():
                lines.append(
                    f"| {side} | {c} | {v['utterances']} | {v['used']} | "
                    f"{v['dropped_utterances']} | {v['speakers']} |"
                )
        lines += ["", "| test corpus | UA | WA | macro-F1 | n |", "|---|---|---|---|---|"]
        for c, v in m.get("per_test_corpus", {}).items():
            lines.append(
                f"| {c} | {v['ua']:.2f} | {v['wa']:.2f} | {v['macro_f1']:.2f} | {v['n']} |"
            )
        lines.append("")
    elif any(m.get("dropped_utterances", {}).values()):
        dropped = ", ".join(f"{c} {n}" for c, n in m["dropped_utterances"].items() if n)
        lines += [f"Utterances outside the labels, dropped: {dropped}.", ""]
    return lines


def _log_dropped(counts: dict[str, int], scheme: LabelScheme, prefix: str = "") -> None:
    for corpus, n in counts.items():
        if n:
            console.log(
                f"{prefix}{corpus}: dropped {n} utterance(s) whose labels are outside "
                f"{', '.join(scheme.classes)}"
            )


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        atomic_write_text(path, "")
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _read_predictions(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return [dict(r, fold=int(r["fold"])) for r in csv.DictReader(f)]
