"""The leave-one-corpus-out comparison in benchmarks/README.md, from the committed results.

    python benchmarks/loco_table.py

For each recipe with a ``results/loco-<recipe>/metrics.json`` (categorical: seven classes) and,
where present, ``results/loco-arousal-<recipe>/metrics.json`` (arousal, low vs high), one row
per left-out corpus: UA on its own classes and on the four common ones (angry, happy, neutral,
sad), per utterance and, for speaker-normalised recipes, speaker-adapted; BAVED's row is its
arousal UA. The table goes between ``<!-- loco -->`` and ``<!-- /loco -->``; the rest of the
README is left as written.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
START, END = "<!-- loco -->", "<!-- /loco -->"
RECIPES = ("cnn", "cnn-functionals", "tutorial-cnn1d")
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


def main() -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}")
    print(table())


if __name__ == "__main__":
    main()
