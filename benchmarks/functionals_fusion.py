"""Does a regression on utterance functionals, fused with a run's CNN, carry emotion to voices and
corpora the training never heard? (Issue 14's lever "utterance functionals normalised per
utterance".)

For every finished fold of an ``emovox evaluate`` results folder (its saved ``fold_N/model``,
``fold_N/predictions.csv`` and ``fold_N/metrics.json``; any speaker-independent protocol:
``loco``, ``loco-pairs``, ``emobox``, ...), on the fold's training side and its validation
speakers:

1. the fast functionals (:mod:`emovox.features.functionals`: pitch, loudness, voice quality,
   spectral balance, rhythm, log-mel band statistics, every value computed on the waveform
   scaled to one RMS level) of every clip, cached like any feature; the recording's own level
   (``level_dbfs``) is left out, so nothing moves with the gain, and nothing is normalised
   with a speaker's or a corpus's statistics: each clip is read alone, as a user's clip is;
2. a logistic regression fitted on the training speakers' clips (neither the fold's test nor
   its validation speakers), standardised with the training side's weighted mean and spread,
   each clip weighted as the fold's CNN drew it (``corpus_balance`` and ``corpus_weights``
   from the fold model's training settings; otherwise classes balanced);
3. the regression's ``C`` and its share ``w`` of the fused probability
   ``(1 - w) * p_cnn + w * p_regression`` chosen on the fold's validation speakers alone (those
   of the model's ``val_corpus`` when it chose its epoch on one corpus), never on a test clip;
4. the test clips scored three ways (the CNN as recorded in ``predictions.csv``, the regression
   alone, the fusion): the fold's UA, and per test corpus on the four common classes and on its
   own; a ``loco-pairs`` run is summarised as ``emovox evaluate`` summarises it (each corpus
   judged by its partners, :func:`emovox.evaluate.runner.nested_validation`), other runs by the
   mean over folds and over test corpora.

``--views functionals,egemaps`` lets the regression read openSMILE's eGeMAPS too (computed on
the waveform scaled to -20 dBFS RMS), beside the fast functionals; ``--views encoder-l4
--encoder DIR`` reads layer 4 of a pretrained encoder instead (its pooled frames, cached as
``encoder-svm`` caches them), so a frozen encoder is fused with the run's CNN.

With ``--gains`` each test file is also scaled by each gain and clipped to [-1, 1] (as a
recording that hits full scale), and the share of files whose fused label equals its fused
label at the recorded level is reported beside the CNN's own share.

Results are written after every fold; a rerun skips the folds already in ``--out``.

    python benchmarks/functionals_fusion.py --run benchmarks/results/RUN \\
        --train ravdess:../shared/data/ravdess --train emodb:../corpora/emodb ... \\
        --labels calm=neutral,angry,happy,sad,fearful,disgust,surprised \\
        [--cache-dir DIR] [--gains=10,20] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion_results import result_name
from int8_folds import resumed_result, with_threads

from emovox._fs import atomic_write_text
from emovox.data.balance import corpus_balanced_draw
from emovox.data.corpora import scan_corpus
from emovox.data.labels import resolve_labels
from emovox.data.manifest import Manifest
from emovox.evaluate.runner import per_corpus_scores
from emovox.features import make_feature
from emovox.features.cache import FeatureCache, extract_files
from emovox.features.functionals import LEVEL_DB, functional_names
from emovox.inference.recognizer import Recognizer
from emovox.metrics import unweighted_accuracy

RESULTS = Path(__file__).resolve().parent / "results"
LEVEL_FUNCTIONAL = "level_dbfs"
"""The one functional that moves with the recording's gain: never used."""
DEFAULT_CS = (0.003, 0.01, 0.03, 0.1)
"""The regression's inverse L2 strengths tried on the validation speakers."""
DEFAULT_WEIGHTS = tuple(round(0.05 * k, 2) for k in range(15))
"""The regression's shares of the fused probability tried on the validation speakers (0-0.7)."""
KINDS = ("cnn", "regression", "fused")


def functional_columns() -> list[int]:
    """The columns of the functionals the regression reads (all but the recording's level)."""
    return [i for i, n in enumerate(functional_names()) if n != LEVEL_FUNCTIONAL]


VIEWS = ("functionals", "egemaps", "encoder-l<K>")
"""What the regression can read (``--views``): the fast functionals, openSMILE's 88 eGeMAPS
values of the waveform scaled to -20 dBFS RMS (so that they do not move with the gain), and
layer ``K`` of the pretrained encoder given by ``--encoder`` (``encoder-pooled``: its frames'
mean and standard deviation over the clip)."""
ENCODER_VIEW = "encoder-l"


def view_feature(view: str, encoder: str | None = None):
    """The utterance feature of a view (:data:`VIEWS`; ``encoder-l<K>`` reads ``encoder``)."""
    if view == "functionals":
        return make_feature("functionals")
    if view == "egemaps":
        return make_feature("egemaps", level_db=LEVEL_DB)
    if view.startswith(ENCODER_VIEW) and view[len(ENCODER_VIEW) :].isdigit():
        if not encoder:
            raise ValueError(f"the view {view} needs --encoder PATH")
        return make_feature("encoder-pooled", path=encoder, layer=int(view[len(ENCODER_VIEW) :]))
    raise ValueError(f"unknown view {view!r}; known: {', '.join(VIEWS)}")


def view_columns(view: str, values: np.ndarray) -> np.ndarray:
    """``[N, D]`` vectors of a view, reduced to the columns the regression reads."""
    return values[:, functional_columns()] if view == "functionals" else values


def training_weights(training: dict, corpora: Sequence[str], y: np.ndarray) -> np.ndarray:
    """Sample weights (mean 1) that follow the fold's draws: each corpus its share and each of a
    corpus's classes an equal share of it with ``corpus_balance`` (``corpus_weights`` as the
    shares), else each class an equal share."""
    by_corpus = corpora if training.get("corpus_balance") else None
    p = corpus_balanced_draw(y, by_corpus, training.get("corpus_weights") or None)
    return p * len(y)


@dataclass(frozen=True)
class Standardiser:
    """``(x - mean) / std`` with a weighted mean and spread of the training side."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, w: np.ndarray) -> Standardiser:
        mean = np.average(x, axis=0, weights=w)
        std = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
        return cls(mean, np.where(std > 1e-8, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def fit_regression(z: np.ndarray, y: np.ndarray, w: np.ndarray, C: float, n_classes: int):
    """A multinomial logistic regression fitted on ``z``, as a function giving ``[N, n_classes]``
    probabilities (0 for a class the training side lacks)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=C, max_iter=3000).fit(z, y, sample_weight=w)

    def proba(zz: np.ndarray) -> np.ndarray:
        p = np.zeros((len(zz), n_classes))
        p[:, lr.classes_] = lr.predict_proba(zz)
        return p

    return proba


def ua(y: np.ndarray, p: np.ndarray, n_classes: int) -> float:
    """UA (%) of the argmax of ``p`` over the classes present in ``y``."""
    return 100.0 * unweighted_accuracy(y, np.argmax(p, axis=1), n_classes)


def choose(
    y_val: np.ndarray, p_cnn: np.ndarray, p_reg: dict[float, np.ndarray], weights: Sequence[float]
) -> tuple[float, float, float]:
    """``(C, w, validation UA)`` of the best fusion on the validation speakers (ties: the
    smaller ``w``, then the smaller ``C``: the less the regression is trusted)."""
    n = p_cnn.shape[1]
    best: tuple[float, float, float] | None = None
    for C in sorted(p_reg):
        for w in sorted(weights):
            s = ua(y_val, (1 - w) * p_cnn + w * p_reg[C], n)
            if best is None or s > best[2] + 1e-9 or (abs(s - best[2]) <= 1e-9 and w < best[1]):
                best = (C, w, s)
    assert best is not None
    return best


@dataclass
class Data:
    """The labelled clips of the run's corpora and their functionals."""

    manifest: Manifest
    classes: list[str]
    x: np.ndarray
    y: np.ndarray
    index: dict[str, int]
    corpus_of: dict[str, str]
    views: tuple[str, ...] = ("functionals",)
    encoder: str | None = None

    @classmethod
    def load(
        cls,
        train: Sequence[str],
        labels: str,
        cache: FeatureCache | None,
        classes: list[str],
        views: Sequence[str] = ("functionals",),
        encoder: str | None = None,
    ) -> Data:
        manifest = Manifest()
        for spec in train:
            name, _, path = spec.partition(":")
            if not path:
                raise ValueError(f"--train wants CORPUS:PATH, not {spec!r}")
            manifest = manifest + scan_corpus(name, path)
        scheme = resolve_labels(labels, manifest.labels)
        if list(scheme.classes) != classes:
            raise ValueError(
                f"--labels gives the classes {list(scheme.classes)}, the run has {classes}"
            )
        manifest, _ = scheme.apply(manifest)
        manifest = manifest.filter(lambda u: bool(u.label))
        per_view, failed = [], set()
        for view in views:
            feature = view_feature(view, encoder)
            feats, errors = extract_files(feature, manifest.paths, cache, progress=False)
            for path, why in errors.items():
                print(f"{path}: skipped ({why})", file=sys.stderr)
            failed |= {i for i, f in enumerate(feats) if f is None}
            per_view.append((view, feats))
        keep = [i for i in range(len(manifest)) if i not in failed]
        manifest = manifest.take(keep)
        x = np.hstack([
            view_columns(view, np.stack([np.asarray(feats[i]).reshape(-1) for i in keep]))
            for view, feats in per_view
        ])  # fmt: skip
        y = np.array([classes.index(u.label) for u in manifest])
        index = {u.path: i for i, u in enumerate(manifest)}
        speakers = {u.speaker: u.corpus for u in manifest}
        return cls(manifest, classes, x, y, index, speakers, tuple(views), encoder)

    def rows_where(self, keep) -> np.ndarray:
        return np.array([i for i, u in enumerate(self.manifest) if keep(u)], dtype=int)


def fused_rows(rows: list[dict], p_cnn: np.ndarray, p_reg: np.ndarray, w: float, classes):
    """Prediction rows of ``(1 - w) * p_cnn + w * p_reg``."""
    out = []
    for r, p in zip(rows, (1 - w) * p_cnn + w * p_reg, strict=True):
        row = {k: r[k] for k in ("fold", "corpus", "path", "speaker", "label")}
        row.update({f"p_{c}": float(v) for c, v in zip(classes, p, strict=True)})
        row["predicted"] = classes[int(np.argmax(p))]
        out.append(row)
    return out


def cnn_proba(rows: list[dict], classes: list[str]) -> np.ndarray:
    return np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])


def measure_fold(
    run: Path,
    fold: int,
    rows: list[dict],
    data: Data,
    Cs: Sequence[float],
    weights: Sequence[float],
    gains: Sequence[float],
) -> dict:
    """One fold: the choice on its validation speakers and its test scores per corpus (and with
    ``gains`` the labels kept)."""
    facts = json.loads((run / f"fold_{fold}" / "metrics.json").read_text())
    test_speakers = set(facts.get("test_speakers") or [])
    model = Recognizer.load(run / f"fold_{fold}" / "model", guard=None)
    if list(model.labels) != data.classes:
        raise ValueError(f"{run}/fold_{fold}/model predicts {model.labels}, not {data.classes}")
    training = model.config.get("training", {})
    val_corpus = str(training.get("val_corpus") or "").lower()
    val_speakers = {
        s for s in facts.get("validation_speakers") or []
        if not val_corpus or data.corpus_of.get(s, "").lower() == val_corpus
    }  # fmt: skip
    if not test_speakers:
        raise ValueError(f"{run}/fold_{fold}: no test speakers recorded")
    if not val_speakers:
        where = f" of {val_corpus}" if val_corpus else ""
        raise ValueError(f"{run}/fold_{fold}: no validation speakers{where} to choose on")
    rows = [r for r in rows if r["label"] in data.classes and r["path"] in data.index]
    held = test_speakers | set(facts.get("validation_speakers") or [])
    tr = data.rows_where(lambda u: u.speaker not in held)
    va = data.rows_where(lambda u: u.speaker in val_speakers)
    te = np.array([data.index[r["path"]] for r in rows], dtype=int)
    n = len(data.classes)
    w_tr = training_weights(training, [data.manifest[i].corpus for i in tr], data.y[tr])
    scale = Standardiser.fit(data.x[tr], w_tr)
    models = {C: fit_regression(scale(data.x[tr]), data.y[tr], w_tr, C, n) for C in Cs}
    val_paths = [data.manifest[i].path for i in va]
    p_val = np.array(
        [[p.probabilities[c] for c in data.classes] for p in model.predict_batch(val_paths)]
    )
    reg_val = {C: f(scale(data.x[va])) for C, f in models.items()}
    C, w, val_fused = choose(data.y[va], p_val, reg_val, weights)
    p_test_cnn, p_test_reg = cnn_proba(rows, data.classes), models[C](scale(data.x[te]))
    kinds = {
        "cnn": fused_rows(rows, p_test_cnn, p_test_reg, 0.0, data.classes),
        "regression": fused_rows(rows, p_test_cnn, p_test_reg, 1.0, data.classes),
        "fused": fused_rows(rows, p_test_cnn, p_test_reg, w, data.classes),
    }
    result = {
        "fold": fold,
        "test_corpora": sorted({r["corpus"] for r in rows}),
        "validation_corpus": val_corpus or None,
        "train_clips": len(tr),
        "validation_clips": len(va),
        "test_clips": len(rows),
        "C": C,
        "weight": w,
        "validation_ua": {
            "cnn": round(ua(data.y[va], p_val, n), 2),
            "regression": round(ua(data.y[va], reg_val[C], n), 2),
            "fused": round(val_fused, 2),
        },
        "test": {k: _corpus_cells(v, data.classes) for k, v in kinds.items()},
        "test_ua": {k: round(_rows_ua(v, data.classes), 2) for k, v in kinds.items()},
    }
    if gains:
        result["gains"] = _gain_agreement(model, rows, data, scale, models[C], w, gains)
    return result


def _rows_ua(rows: list[dict], classes: list[str]) -> float:
    """UA (%) over the classes of ``rows`` (all of a fold's test clips together)."""
    y = np.array([classes.index(r["label"]) for r in rows])
    p = np.array([classes.index(r["predicted"]) for r in rows])
    return 100.0 * unweighted_accuracy(y, p, len(classes))


def _corpus_cells(rows: list[dict], classes: list[str]) -> dict[str, dict]:
    scores = per_corpus_scores(rows, classes)
    out = {}
    for corpus, s in scores.items():
        cell = {"own_classes": round(s["own_classes"]["ua"], 2)} if "own_classes" in s else {}
        if "four_classes" in s:
            cell["four_classes"] = round(s["four_classes"]["ua"], 2)
        out[corpus] = cell
    return out


def _gain_agreement(model, rows, data: Data, scale, reg, w: float, gains) -> dict:
    """Labels kept (%) per test corpus at each gain, for the CNN alone and for the fusion."""
    features = [(v, view_feature(v, data.encoder)) for v in data.views]
    names = [r["path"] for r in rows]
    waves = [model.feature.load(p) for p in names]
    corpora = np.array([r["corpus"] for r in rows])

    def labels(ws: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p_c = np.array(
            [[p.probabilities[c] for c in data.classes] for p in model.predict_waveforms(ws, names)]
        )
        x = np.hstack([view_columns(v, np.stack([f.vector(a) for a in ws])) for v, f in features])
        p_f = (1 - w) * p_c + w * reg(scale(x))
        return np.argmax(p_c, axis=1), np.argmax(p_f, axis=1)

    base = labels(waves)
    out: dict = {}
    for g in gains:
        factor = 10 ** (g / 20)
        got = labels([np.clip(v * factor, -1.0, 1.0).astype(np.float32) for v in waves])
        for corpus in sorted(set(corpora)):
            sel = corpora == corpus
            out.setdefault(corpus, {})[f"{g:+g}"] = {
                kind: round(100 * float(np.mean(got[k][sel] == base[k][sel])), 2)
                for k, kind in enumerate(("cnn", "fused"))
            }
    return out


def summarise(result: dict, protocol: str) -> None:
    """The mean over the left-out corpora of each kind (4 classes; ``loco-pairs``: each corpus
    judged by its partners), the validation UAs and, with gains, the labels kept."""
    folds = result["folds"]
    summary: dict = {}
    for kind in KINDS:
        cells = {}
        if protocol == "loco-pairs":
            by_left_out: dict[str, list[float]] = {}
            for f in folds:
                for k in f["test_corpora"]:
                    for j in f["test_corpora"]:
                        if j != k and "four_classes" in f["test"][kind].get(j, {}):
                            by_left_out.setdefault(k, []).append(f["test"][kind][j]["four_classes"])
            cells = {k: round(float(np.mean(v)), 2) for k, v in sorted(by_left_out.items())}
        else:
            per: dict[str, list[float]] = {}
            for f in folds:
                for corpus, cell in f["test"][kind].items():
                    if "four_classes" in cell:
                        per.setdefault(corpus, []).append(cell["four_classes"])
            cells = {k: round(float(np.mean(v)), 2) for k, v in sorted(per.items())}
        by_fold = [f["test_ua"][kind] for f in folds]
        summary[kind] = {
            "four_classes_by_corpus": dict(sorted(cells.items())),
            "four_classes": round(float(np.mean(list(cells.values()))), 2) if cells else None,
            "ua": round(float(np.mean(by_fold)), 2),
            "ua_std": round(float(np.std(by_fold)), 2),
            "ua_by_fold": by_fold,
            "validation_ua": round(float(np.mean([f["validation_ua"][kind] for f in folds])), 2),
        }
    if folds and all("gains" in f for f in folds):
        gains = sorted({g for f in folds for c in f["gains"].values() for g in c}, key=float)
        summary["labels_kept"] = {
            g: {
                kind: round(
                    float(np.mean([c[g][kind] for f in folds for c in f["gains"].values()])), 2
                )
                for kind in ("cnn", "fused")
            }
            for g in gains
        }
    result["protocol"] = protocol
    result["summary"] = summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="An `emovox evaluate --out` folder.")
    ap.add_argument("--train", action="append", required=True, help="CORPUS:PATH, as the run.")
    ap.add_argument("--labels", required=True, help="The run's --labels.")
    ap.add_argument("--cache-dir", help="Feature cache folder (default: no cache).")
    ap.add_argument(
        "--views",
        default="functionals",
        help=f"What the regression reads, comma list of {', '.join(VIEWS)} (default functionals).",
    )
    ap.add_argument("--encoder", help="The encoder folder of the encoder-l<K> views.")
    ap.add_argument("--gains", default="", help="dB above the recorded level, e.g. 10,20.")
    ap.add_argument("--out", help="JSON to write (default: results/functionals_fusion_<run>.json).")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1).")
    args = ap.parse_args(argv)
    return with_threads(args.threads, _main, args, argv)


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    run = Path(args.run)
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    out = Path(args.out or RESULTS / result_name(run.name, views))
    if not (run / "run.json").is_file():
        print(f"{run}: no run.json (not an `emovox evaluate --out` folder)", file=sys.stderr)
        return 2
    run_facts = json.loads((run / "run.json").read_text())
    protocol = run_facts.get("protocol", "")
    start = resumed_result("functionals_fusion.py", run, out, argv)
    if start is None:
        return 2
    rows, result, have = start
    result["views"] = views
    gains = [float(g) for g in args.gains.split(",") if g.strip()]
    cache = FeatureCache(args.cache_dir) if args.cache_dir else None
    try:
        data = Data.load(
            args.train, args.labels, cache, list(run_facts["labels"]), views, args.encoder
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for fold in sorted(rows):
        if fold in have or not any(r["label"] for r in rows[fold]):
            continue  # done, or a dimensions-only fold (no class to score)
        try:
            row = measure_fold(run, fold, rows[fold], data, DEFAULT_CS, DEFAULT_WEIGHTS, gains)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        result["folds"] = sorted([*result["folds"], row], key=lambda f: f["fold"])
        summarise(result, protocol)
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
        print(
            f"fold {fold}: C {row['C']}, weight {row['weight']}; validation UA cnn "
            f"{row['validation_ua']['cnn']:.1f}, fused {row['validation_ua']['fused']:.1f}",
            flush=True,
        )
    summarise(result, protocol)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    for kind in KINDS:
        print(
            f"{kind}: mean 4-class UA over the test corpora ({protocol}) "
            f"{s[kind]['four_classes']}; UA over the folds {s[kind]['ua']} ± {s[kind]['ua_std']}"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
