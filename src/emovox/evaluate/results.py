"""Typed evaluation results and their one writer: ``metrics.json``, ``predictions.csv``,
``confusion.png`` and ``report.md``.

:class:`FoldResult` is one fold's row; :class:`EvaluationResult` the whole run. An evaluation
result is also a read-only mapping of its ``metrics.json`` content (``result["ua"]``), so code
that reads the JSON file and code that holds the result read the same names.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from emovox._fs import atomic_write_text
from emovox.evaluate.conditions import condition_report_lines
from emovox.metrics import sign_ua

SCORES = ("ua", "wa", "macro_f1")


@dataclasses.dataclass
class FoldResult:
    """The scores and facts of one fold (a row of ``metrics.json``'s ``folds``)."""

    fold: int
    test_speakers: list[str]
    validation_speakers: list[str]
    ua: float | None
    """UA of the fold (``None`` for a ``dimensions_only`` fold, scored on arousal and valence
    alone: see ``dimensions``); likewise ``wa`` and ``macro_f1``."""
    wa: float | None
    macro_f1: float | None
    n_test: int
    n_train: int
    best_epoch: int
    best_val_ua: float | None
    epochs_run: int
    train_seconds: float
    inference_seconds: float
    n_parameters: int | None = None
    test_corpora: list[str] | None = None
    best_val_ua_by_corpus: dict[str, float] | None = None
    """Each validation corpus's UA (%) at the best epoch, when the validation speakers came
    from two or more corpora."""
    components: dict[str, dict] | None = None
    conditions: dict[str, dict] | None = None
    speaker_adapted: dict | None = None
    """UA, WA and macro-F1 adapted to each test speaker (:func:`~emovox.evaluate.runner.
    speaker_adapted`: feature statistics with ``speaker_norm``, balanced outputs otherwise), with
    ``guarded`` (:mod:`emovox.inference.adaptation`) and ``one_emotion_per_speaker`` (the
    guard's worst case: per utterance, adapted and guarded on each speaker's clips of one
    emotion)."""
    dimensions: dict[str, dict] | None = None
    """For a model with the dimensions head: each dimension's concordance, error and sign
    accuracy against the test utterances' circumplex targets
    (:func:`~emovox.metrics.dimension_metrics`)."""

    def to_dict(self) -> dict:
        row = dataclasses.asdict(self)
        kept = {"best_val_ua", *SCORES}
        return {k: v for k, v in row.items() if v is not None or k in kept}

    @classmethod
    def from_dict(cls, row: dict) -> FoldResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


class EvaluationResult(Mapping):
    """A finished evaluation: its folds, pooled scores and everything ``metrics.json`` holds.

    Args:
        folds: the fold results.
        content: the rest of ``metrics.json`` (built by the runner).
    """

    def __init__(self, folds: list[FoldResult], content: dict) -> None:
        self.folds = folds
        self._content = content

    # -- the scores ---------------------------------------------------------------------------
    @property
    def ua(self) -> float:
        return float(self._content["ua"])

    @property
    def ua_std(self) -> float:
        return float(self._content["ua_std"])

    @property
    def protocol(self) -> str:
        return str(self._content["protocol"])

    @property
    def model(self) -> str:
        return str(self._content["model"])

    def to_dict(self) -> dict:
        """The content of ``metrics.json``."""
        return dict(self._content)

    # -- mapping ------------------------------------------------------------------------------
    def __getitem__(self, key: str):
        return self._content[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._content)

    def __len__(self) -> int:
        return len(self._content)


def mean_scores(folds: list[FoldResult]) -> dict[str, float]:
    """Mean and standard deviation over the folds of UA, WA and macro-F1 (give the folds scored
    on classes: a ``dimensions_only`` fold has none)."""
    out: dict[str, float] = {}
    for k in SCORES:
        v = np.array([getattr(f, k) for f in folds])
        out[k], out[f"{k}_std"] = float(v.mean()), float(v.std())
    return out


def summarize_adapted(folds: list[FoldResult]) -> dict:
    """Mean and standard deviation over the folds of the speaker-adapted scores (and of the
    guarded ones and the one-emotion-per-speaker test, where the folds have them)."""
    rows = [f.speaker_adapted for f in folds if f.speaker_adapted]
    out: dict = {"folds": len(rows), **_mean_std(rows)}
    guarded = [r["guarded"] for r in rows if "guarded" in r]
    if guarded:
        out["guarded"] = _mean_std(guarded)
    one = [r.get("one_emotion_per_speaker") or {} for r in rows]
    one = [r for r in one if r.get("n")]
    if one:
        out["one_emotion_per_speaker"] = {
            "n": int(sum(r["n"] for r in one)),
            **{k: _mean_std([r[k] for r in one]) for k in ("per_utterance", "adapted", "guarded")},
        }
    return out


def _mean_std(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in SCORES:
        v = np.array([r[k] for r in rows])
        out[k], out[f"{k}_std"] = float(v.mean()), float(v.std())
    return out


def summarize_components(folds: list[FoldResult]) -> dict[str, dict]:
    """Mean and standard deviation over the folds of each component's UA, WA and macro-F1."""
    names = dict.fromkeys(n for f in folds for n in (f.components or {}))
    out = {}
    for name in names:
        rows = [f.components[name] for f in folds if f.components and name in f.components]
        out[name] = {"folds": len(rows)}
        for k in SCORES:
            vals = np.array([row[k] for row in rows])
            out[name][k] = float(vals.mean())
            out[name][f"{k}_std"] = float(vals.std())
    return out


# -- writing ---------------------------------------------------------------------------------
def write_results(
    out: Path, result: EvaluationResult, pred_rows: list[dict], title: str | None = None
) -> None:
    """Write ``metrics.json``, ``predictions.csv``, ``confusion.png`` and ``report.md``."""
    from emovox.plots import plot_confusion

    atomic_write_text(out / "metrics.json", json.dumps(result.to_dict(), indent=2) + "\n")
    write_csv(out / "predictions.csv", pred_rows)
    plot_confusion(
        result["confusion"]["matrix"],
        result["labels"],
        out / "confusion.png",
        title=title or f"{result.model} · {result.protocol} · UA {result.ua:.1f} %",
    )
    atomic_write_text(out / "report.md", render_report(result))


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV (an empty file for no rows), written atomically."""
    if not rows:
        atomic_write_text(path, "")
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def read_predictions(path: Path) -> list[dict]:
    """The rows of a fold's ``predictions.csv``."""
    with path.open(newline="") as f:
        return [dict(r, fold=int(r["fold"])) for r in csv.DictReader(f)]


# -- the report ------------------------------------------------------------------------------
def render_report(m: Mapping) -> str:
    """A Markdown summary of an evaluation (a result, or the content of ``metrics.json``)."""
    adapted = m.get("speaker_adapted")
    lines = [
        f"# {m['model']} — {m['protocol']} protocol",
        "",
        _headline(m),
        "",
        "Per utterance: every test utterance classified alone."
        + (
            f" Speaker-adapted (each test speaker normalised with that speaker's other "
            f"unlabelled utterances): UA {adapted['ua']:.2f} ± {adapted['ua_std']:.2f}."
            if adapted
            else ""
        ),
        "",
        f"{m['n_utterances']} utterances, {len(m['labels'])} classes: {', '.join(m['labels'])}.",
        "",
        *_corpora_lines(m),
        "| fold | test speakers | UA | WA | macro-F1 | best epoch | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in m["folds"]:
        scores = " | ".join(_cell(f.get(k)) for k in SCORES)
        lines.append(
            f"| {f['fold']} | {_fold_test_set(f)} | {scores} | {f['best_epoch']} | "
            f"{f['train_seconds']:.0f} |"
        )
    lines += _dimension_lines(m)
    lines += _nested_lines(m)
    lines += condition_report_lines(dict(m))
    lines += ["", "## Per class (pooled over folds)", ""]
    lines += ["| class | precision | recall | F1 | n |", "|---|---|---|---|---|"]
    for c, v in m["per_class"].items():
        lines.append(
            f"| {c} | {v['precision']:.1f} | {v['recall']:.1f} | {v['f1']:.1f} | {v['support']} |"
        )
    return "\n".join(lines + _timing_lines(m))


def _dimension_lines(m: Mapping) -> list[str]:
    """The arousal/valence head's scores per test corpus and pooled (models with the head)."""
    if "dimensions" not in m:
        return []
    per = m.get("per_test_corpus") or {}
    rows = {f"{c}*" if v.get("dimensions_only") else c: v.get("dimensions") for c, v in per.items()}
    rows = {c: d for c, d in rows.items() if d} | {"all (pooled)": m["dimensions"]}
    note = " Corpora marked * have no class: their fold is scored on the dimensions alone."
    lines = [
        "",
        "## Arousal and valence (the dimensions head, against the circumplex targets)",
        "",
        "Low/high UA: the sign of the score against the sign of the target (targets of 0 left "
        "out); CCC: concordance with the targets."
        + (note if any(v.get("dimensions_only") for v in per.values()) else ""),
        "",
        "| test corpus | arousal low/high UA | arousal CCC | valence low/high UA | valence CCC |",
        "|---|---|---|---|---|",
    ]
    for corpus, d in rows.items():
        cells = []
        for k in ("arousal", "valence"):
            cells += [sign_ua(d[k]), d[k]["ccc"] if d[k]["n"] else None]
        lines.append(f"| {corpus} | " + " | ".join(_cell(x) for x in cells) + " |")
    return lines


def _nested_lines(m: Mapping) -> list[str]:
    """The nested validation of a ``loco-pairs`` run: per corpus a ``loco`` fold leaves out,
    the 4-class UA on each partner of its pair folds and their mean."""
    nested = m.get("nested_validation")
    if not nested:
        return []
    lines = [
        "",
        "## Nested validation (leave two corpora out)",
        "",
        "For the corpus a leave-one-corpus-out fold leaves out: the UA of the pair folds that "
        "leave it out with a partner, scored on the partner alone (4 classes: angry, happy, "
        "neutral, sad). Neither the corpus's clips nor its labels take part in them. The "
        "per-corpus table above pools each corpus over every pair fold that tests it.",
        "",
        "| left-out corpus | UA 4 classes on each partner | mean 4 classes | mean own classes "
        "| mean arousal low/high UA |",
        "|---|---|---|---|---|",
    ]
    for corpus, e in nested["by_left_out"].items():
        partners = ", ".join(
            f"{j} {_cell(v.get('four_classes'))}" for j, v in e["partners"].items()
        )
        cells = " | ".join(_cell(e.get(k)) for k in ("four_classes", "own_classes", "arousal"))
        lines.append(f"| {corpus} | {partners} | {cells} |")
    mean = nested.get("mean", {})
    cells = " | ".join(_cell(mean.get(k)) for k in ("four_classes", "own_classes", "arousal"))
    lines.append(f"| **mean** | | {cells} |")
    return lines


def _headline(m: Mapping) -> str:
    if m["protocol"] == "cross-corpus":
        return (
            f"UA **{m['ua']:.2f}** · WA {m['wa']:.2f} · macro-F1 {m['macro_f1']:.2f} "
            f"(one model trained on the training corpora, scored on the test corpora)."
        )
    return (
        f"UA **{m['ua']:.2f} ± {m['ua_std']:.2f}** · WA {m['wa']:.2f} ± {m['wa_std']:.2f} · "
        f"macro-F1 {m['macro_f1']:.2f} ± {m['macro_f1_std']:.2f} "
        f"(mean ± std over {len(m['folds'])} folds; pooled UA {m['pooled']['ua']:.2f})."
    )


def _timing_lines(m: Mapping) -> list[str]:
    t = m["timing"]
    return [
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


def _fold_test_set(fold: Mapping) -> str:
    """What a fold tested on: the test corpora of a cross-corpus run, else the test speakers."""
    if fold.get("test_corpora"):
        return ", ".join(fold["test_corpora"])
    return ", ".join(fold["test_speakers"]) or "(random)"


def _corpora_lines(m: Mapping) -> list[str]:
    """Report lines on the corpora: train → test scores and the utterances dropped by labels."""
    lines = []
    per = m.get("per_test_corpus") or {}
    adapted = any("speaker_adapted" in v for v in per.values())
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
        head = "| test corpus | UA | WA | macro-F1 | n |" + (" UA speaker-adapted |" * adapted)
        lines += ["", head, _rule(head)]
        for c, v in per.items():
            row = f"| {c} | {v['ua']:.2f} | {v['wa']:.2f} | {v['macro_f1']:.2f} | {v['n']} |"
            if adapted:
                row += f" {_cell(v.get('speaker_adapted', {}).get('ua'))} |"
            lines.append(row)
        lines.append("")
    elif per:
        intro = (
            "Every test corpus scored on its own: on all classes, on the classes it has, and on "
            "angry, happy, neutral and sad"
        )
        head = "| test corpus | UA | WA | macro-F1 | UA own classes | UA 4 classes | n |"
        if adapted:
            intro += (
                "; the speaker-adapted columns adapt to each test speaker with that speaker's "
                "other unlabelled utterances (feature statistics for a speaker_norm model, its "
                "balanced output probabilities otherwise), in full and as far as the guard "
                "allows (guarded)"
            )
            head += " speaker-adapted: UA own classes | UA 4 classes | guarded: UA 4 classes |"
        lines += [intro + ".", "", head, _rule(head)]
        for c, v in per.items():
            if v.get("dimensions_only"):
                continue  # scored on arousal and valence alone (their table)
            cells = [v.get(k, {}).get("ua") for k in ("own_classes", "four_classes")]
            if adapted:
                a = v.get("speaker_adapted", {})
                cells += [a.get(k, {}).get("ua") for k in ("own_classes", "four_classes")]
                cells.append(v.get("speaker_adapted_guarded", {}).get("four_classes", {}).get("ua"))
            cells.insert(2, v["n"])
            lines.append(
                f"| {c} | {v['ua']:.2f} | {v['wa']:.2f} | {v['macro_f1']:.2f} | "
                + " | ".join(_cell(x) for x in cells)
                + " |"
            )
        lines.append("")
    if not m.get("train_corpora") and any(m.get("dropped_utterances", {}).values()):
        dropped = ", ".join(f"{c} {n}" for c, n in m["dropped_utterances"].items() if n)
        lines += [f"Utterances outside the labels, dropped: {dropped}.", ""]
    return lines


def _rule(head: str) -> str:
    """The separator line under a Markdown table header."""
    return "|---" * (head.count("|") - 1) + "|"


def _cell(x) -> str:
    """A table cell: a score with two decimals, a count as it is, or a dash for none."""
    if x is None:
        return "—"
    return str(x) if isinstance(x, int) else f"{x:.2f}"
