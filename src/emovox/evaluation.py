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
from pathlib import Path

import numpy as np
import torch

from emovox import __version__
from emovox._fs import atomic_write_text
from emovox.features import Feature, FeatureCache
from emovox.labels import LabelScheme
from emovox.manifest import Manifest
from emovox.metrics import classification_metrics
from emovox.models import build_model, model_class
from emovox.pipeline import default_feature, fit, load_dataset
from emovox.progress import console
from emovox.protocols import make_folds
from emovox.training import TrainConfig, predict_proba


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
) -> dict:
    """Run ``protocol`` over ``manifest`` and write the results into ``out_dir``.

    Args:
        folds: 1-based fold numbers to run (default: all).
        resume: reuse the results of folds already finished in ``out_dir``.
        command: the command line to record in ``metrics.json``.

    Returns:
        The content of ``metrics.json``.
    """
    t_start = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    feature = feature or default_feature(model)
    config = config or TrainConfig.for_model(model_class(model))
    data = load_dataset(manifest, scheme, feature, cache, progress, speeds=config.speed_perturb)
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
            tx, ty = data.subset(fold.test)
            t0 = time.time()
            proba = predict_proba(net, tx)
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
            }
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
        "feature": feature.to_dict(),
        "training": config.to_dict(),
        "model_params": model_params or {},
        "n_parameters": build_model(
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
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_csv(out / "predictions.csv", pred_rows)
    from emovox.plots import plot_confusion

    plot_confusion(
        pooled["confusion"]["matrix"],
        data.classes,
        out / "confusion.png",
        title=f"{model} · {metrics['protocol']} · UA {metrics['ua']:.1f} %",
    )
    atomic_write_text(out / "report.md", render_report(metrics))
    return metrics


def render_report(m: dict) -> str:
    """A Markdown summary of ``metrics.json``."""
    lines = [
        f"# {m['model']} — {m['protocol']} protocol",
        "",
        f"UA **{m['ua']:.2f} ± {m['ua_std']:.2f}** · WA {m['wa']:.2f} ± {m['wa_std']:.2f} · "
        f"macro-F1 {m['macro_f1']:.2f} ± {m['macro_f1_std']:.2f} "
        f"(mean ± std over {len(m['folds'])} folds; pooled UA {m['pooled']['ua']:.2f}).",
        "",
        f"{m['n_utterances']} utterances, {len(m['labels'])} classes: {', '.join(m['labels'])}.",
        "",
        "| fold | test speakers | UA | WA | macro-F1 | best epoch | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in m["folds"]:
        lines.append(
            f"| {f['fold']} | {', '.join(f['test_speakers']) or '(random)'} | {f['ua']:.2f} | "
            f"{f['wa']:.2f} | {f['macro_f1']:.2f} | {f['best_epoch']} | {f['train_seconds']:.0f} |"
        )
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
