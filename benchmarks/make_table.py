"""Rebuild the results table in benchmarks/README.md from benchmarks/results/*/metrics.json.

    python benchmarks/make_table.py

The table sits between the ``<!-- results -->`` and ``<!-- /results -->`` markers; everything
else in the README is left as written.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
START, END = "<!-- results -->", "<!-- /results -->"

PUBLISHED = [
    ("Whisper large v3 (frozen, EmoBox)", 75.32, 75.87, 75.19),
    ("WavLM large (frozen, EmoBox)", 72.00, 72.22, 71.42),
    ("HuBERT large (frozen, EmoBox)", 70.00, 70.29, 69.54),
    ("WavLM base (frozen, EmoBox)", 61.56, 62.10, 61.18),
    ("wav2vec 2.0 base (frozen, EmoBox)", 54.33, 55.40, 53.99),
]


def row(name: str, m: dict) -> str:
    t = m["timing"]
    n_folds = len(m["folds"])
    params = m.get("n_parameters")
    return (
        f"| `{name}` | {m['ua']:.2f} ± {m['ua_std']:.2f} | {m['wa']:.2f} ± {m['wa_std']:.2f} | "
        f"{m['macro_f1']:.2f} ± {m['macro_f1_std']:.2f} | {n_folds} | "
        f"{t['wall_seconds'] / 60:.1f} min | {t['inference_ms_per_utterance']:.1f} | "
        f"{params if params is not None else '–'} | {m['machine']['cpu']}, "
        f"{m['machine']['torch_threads']} threads |"
    )


def table() -> str:
    lines = [
        "| model | UA % | WA % | macro-F1 % | folds | wall clock (features + all folds) "
        "| inference ms/utt | parameters | machine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    results = sorted(HERE.glob("results/*/metrics.json"))
    rows = []
    for path in results:
        m = json.loads(path.read_text())
        rows.append((m["ua"], row(path.parent.name, m)))
    lines += [r for _, r in sorted(rows, reverse=True)]
    for name, ua, wa, f1 in PUBLISHED:
        lines.append(f"| {name} (published) | {ua:.2f} | {wa:.2f} | {f1:.2f} | 6 | – | – | – | – |")
    return "\n".join(lines)


def main() -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: the markers {START} and {END} are missing")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}")
    print(table())


if __name__ == "__main__":
    main()
