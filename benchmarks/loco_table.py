"""The leave-one-corpus-out comparison in benchmarks/README.md, from the committed results.

    python benchmarks/loco_table.py

For each recipe with a ``results/loco-<recipe>/metrics.json`` (categorical: seven classes) and,
where present, ``results/loco-arousal-<recipe>/metrics.json`` (arousal, low vs high), one row
per left-out corpus: UA on its own classes and on the four common ones (angry, happy, neutral,
sad), per utterance and, for speaker-normalised recipes, speaker-adapted; BAVED's row is its
arousal UA. The table goes between ``<!-- loco -->`` and ``<!-- /loco -->``.

The levers of issue 14 (``LEVERS``: each a ``results/loco-<name>`` run) get a second table
between ``<!-- loco-levers -->`` and ``<!-- /loco-levers -->``: the mean over the folds of the
best validation UA (7 classes, on validation speakers drawn from the training corpora: the
number a lever is chosen by), where run, the nested validation of ``results/loco-pairs-<name>``
(leave two corpora out: each left-out corpus judged by the 4-class UA on its partners, mean over
the left-out corpora; the number that sees corpus shift), then the 4-class UA of each left-out
corpus and their mean (the numbers it is reported by), and the training time summed over the
folds (a run resumed in several sessions or with folds in parallel has no one wall time). The
rest of the README is left as written.
"""

from __future__ import annotations

import json
from pathlib import Path

from emovox.metrics import sign_ua

HERE = Path(__file__).parent
RESULTS = HERE / "results"
START, END = "<!-- loco -->", "<!-- /loco -->"
RECIPES = ("cnn-augment-dims", "cnn", "cnn-functionals", "tutorial-cnn1d")
LEVERS = (
    ("cnn", "the `cnn` of issue 13 (utterance-normalised log-mel)"),
    ("cnn-cmvn", "+ log-mel normalised per bin over the utterance (`normalize=cmvn`)"),
    ("cnn-augment", "+ 2 augmented copies: noise, gain, reverb, telephone band, MP3"),
    (
        "cnn-augment-dims",
        "the augmentation + the arousal/valence head (cmvn left out: lower validation UA)",
    ),
    (
        "cnn-augment-dims-cb",
        "+ corpus-balanced draws (`corpus_balance=true`: each corpus 1/5 of an epoch)",
    ),
    (
        "cnn-augment-dims-cb-rows",
        "+ rows without a class teach the arousal/valence head (BAVED's levels, EmoDB's "
        "boredom); BAVED left out as a sixth fold, scored on arousal alone",
    ),
)
LEVER_START, LEVER_END = "<!-- loco-levers -->", "<!-- /loco-levers -->"
CORPORA = ("ased", "emodb", "nemo", "ravdess", "tess")
LANGUAGE = {"ased": "am", "baved": "ar", "emodb": "de", "nemo": "pl", "ravdess": "en", "tess": "en"}


def _cell(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def corpus_scores(m: dict) -> dict[str, dict]:
    """Per test corpus: UA own classes / 4 classes, per utterance and speaker-adapted."""
    out = {}
    for corpus, v in m.get("per_test_corpus", {}).items():
        a = v.get("speaker_adapted", {})
        out[corpus] = {
            "own": v.get("own_classes", {}).get("ua"),
            "four": v.get("four_classes", {}).get("ua"),
            "own_adapted": a.get("own_classes", {}).get("ua"),
            "four_adapted": a.get("four_classes", {}).get("ua"),
            "n_own": len(v.get("own_classes", {}).get("classes", [])),
        }
    return out


def load(name: str) -> dict | None:
    path = RESULTS / name / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def recipe_rows(recipe: str) -> list[str]:
    m, arousal = load(f"loco-{recipe}"), load(f"loco-arousal-{recipe}")
    if m is None and arousal is None:
        return []
    scores = corpus_scores(m) if m else {}
    rows = []
    for corpus in sorted(scores):
        s = scores[corpus]
        rows.append(
            f"| `{recipe}` | {corpus} ({LANGUAGE.get(corpus, '?')}) | {s['n_own']} | "
            f"{_cell(s['own'])} | **{_cell(s['four'])}** | {_cell(s['own_adapted'])} | "
            f"{_cell(s['four_adapted'])} |"
        )
    if scores:
        four = [s["four"] for s in scores.values() if s["four"] is not None]
        adapted = [s["four_adapted"] for s in scores.values() if s["four_adapted"] is not None]
        mean = sum(four) / len(four) if four else None
        mean_a = sum(adapted) / len(adapted) if adapted else None
        minutes = m["timing"]["wall_seconds"] / 60
        rows.append(
            f"| `{recipe}` | **mean of {len(four)}** (lowest {_cell(min(four))}) | | | "
            f"**{_cell(mean)}** | | {_cell(mean_a)} |"
        )
        n = len(m["folds"])
        rows.append(f"| `{recipe}` | wall time, {n} folds | | | {minutes:.0f} min | | |")
    if arousal:
        per = arousal.get("per_test_corpus", {})
        for corpus, v in sorted(per.items()):
            a = v.get("speaker_adapted", {}).get("ua")
            rows.append(
                f"| `{recipe}` | {corpus} ({LANGUAGE.get(corpus, '?')}): arousal low vs high | 2 | "
                f"**{_cell(v['ua'])}** | | {_cell(a)} | |"
            )
    return rows


def table() -> str:
    lines = [
        "| recipe | left-out corpus | its classes | UA own classes | UA 4 classes | "
        "speaker-adapted: UA own classes | UA 4 classes |",
        "|---|---|---|---|---|---|---|",
    ]
    for recipe in RECIPES:
        lines += recipe_rows(recipe)
    return "\n".join(lines)


def lever_table() -> str:
    """The levers, side by side (folds not yet run are left out of the means, and said)."""
    lines = [
        "| run | what it changes | folds | mean validation UA (7 classes) | "
        "nested validation: UA 4 classes (arousal low/high UA) | "
        + " | ".join(f"{c} 4 cl." for c in CORPORA)
        + " | mean 4 classes | arousal low/high UA, mean (corpora) | training, all folds |",
        "|---|---|---|---|---|" + "---|" * len(CORPORA) + "---|---|---|",
    ]
    for name, what in LEVERS:
        m = load(f"loco-{name}")
        folds = _folds(f"loco-{name}")
        if not folds:
            continue
        # the folds scored on classes (a dimensions-only fold's validation is the same kind,
        # but leaving it out keeps the mean comparable with the five-fold runs)
        classified = [f for f in folds if f.get("ua") is not None]
        val = [f["best_val_ua"] for f in classified if f.get("best_val_ua") is not None]
        per = (m if m else _partial(name)).get("per_test_corpus", {})
        scores = corpus_scores({"per_test_corpus": per})
        fours = [scores.get(c, {}).get("four") for c in CORPORA]
        known = [x for x in fours if x is not None]
        mean = _cell(sum(known) / len(known)) if len(known) == len(CORPORA) else "—"
        train = sum(f["train_seconds"] for f in folds)
        wall = f"{train / 60:.0f} min" + ("" if m else " (running)")
        lines.append(
            f"| `loco-{name}` | {what} | {len(folds)} | {_cell(sum(val) / len(val))} | "
            f"{nested_cell(name)} | "
            + " | ".join(_cell(x) for x in fours)
            + f" | **{mean}** | {arousal_cell(per)} | {wall} |"
        )
    return "\n".join(lines)


def nested_cell(name: str) -> str:
    """The nested validation of ``results/loco-pairs-<name>`` (its finished pair folds): the
    mean over the left-out corpora of the 4-class UA on their partners (and of the arousal
    head's low/high UA, where the model has one), and how many pair folds it rests on."""
    from emovox.data.protocols import Fold
    from emovox.evaluate.plans import Plan
    from emovox.evaluate.runner import nested_validation

    run = f"loco-pairs-{name}"
    folds = tuple(Fold(f["fold"], (), (), (), tuple(f["test_corpora"])) for f in _folds(run))
    rows, classes = _predictions(run)
    if not folds or not rows:
        return "—"
    nested = nested_validation(Plan("loco-pairs", folds, by_corpus=True), rows, classes)
    mean = nested["mean"]
    arousal = f"; arousal {_cell(mean['arousal'])}" if "arousal" in mean else ""
    return f"{_cell(mean.get('four_classes'))}{arousal} ({len(folds)} pairs)"


def arousal_cell(per: dict) -> str:
    """The mean over the left-out corpora of the arousal head's low/high UA, and how many
    corpora it covers (BAVED only where its arousal-only fold ran)."""
    signs = [sign_ua(v.get("dimensions", {}).get("arousal", {})) for v in per.values()]
    signs = [x for x in signs if x is not None]
    if not signs:
        return "—"
    baved = ", with BAVED" if per.get("baved", {}).get("dimensions") else ""
    return f"{sum(signs) / len(signs):.1f} ({len(signs)}{baved})"


def _folds(run: str) -> list[dict]:
    """The finished folds of ``results/<run>`` (from its ``fold_N/metrics.json``, so a run
    still going counts the folds it has)."""
    return [json.loads(p.read_text()) for p in sorted((RESULTS / run).glob("fold_*/metrics.json"))]


def _predictions(run: str) -> tuple[list[dict], list[str]]:
    """The prediction rows of the finished folds of ``results/<run>`` and the model's classes
    (from the rows' ``p_<class>`` columns)."""
    from emovox.evaluate.results import read_predictions

    rows = []
    for path in sorted((RESULTS / run).glob("fold_*/predictions.csv")):
        rows += read_predictions(path)
    classes = sorted({c[2:] for c in rows[0] if c.startswith("p_")}) if rows else []
    return rows, classes


def _partial(name: str) -> dict:
    """``per_test_corpus`` of a run still going, from its finished folds' predictions."""
    from emovox.evaluate.runner import per_corpus_scores

    rows, classes = _predictions(f"loco-{name}")
    return {"per_test_corpus": per_corpus_scores(rows, classes)} if rows else {}


def _replace(text: str, start: str, end: str, body: str, readme: Path) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{readme}: no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main() -> None:
    readme = HERE / "README.md"
    text = _replace(readme.read_text(), START, END, table(), readme)
    if LEVER_START in text:
        text = _replace(text, LEVER_START, LEVER_END, lever_table(), readme)
    readme.write_text(text)
    print(table())
    print(lever_table())


if __name__ == "__main__":
    main()
