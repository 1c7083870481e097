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


def scoring(m: dict) -> str:
    """How a result's headline ``ua`` was scored: ``per utterance``, or ``speaker-adapted`` for
    speaker-normalised recipes evaluated before emovox scored every utterance alone."""
    if m.get("training", {}).get("speaker_norm") and "scoring" not in m:
        return "speaker-adapted"
    return "per utterance"


def adapted_row(name: str, m: dict) -> tuple[float, str] | None:
    """The speaker-adapted scores of a result that has them beside its per-utterance ones."""
    a = m.get("speaker_adapted")
    if not a:
        return None
    return (
        a["ua"],
        f"| `{name}`, speaker-adapted (test speakers' other utterances) | {a['ua']:.2f} ± "
        f"{a['ua_std']:.2f} | {a['wa']:.2f} ± {a['wa_std']:.2f} | {a['macro_f1']:.2f} ± "
        f"{a['macro_f1_std']:.2f} | {a['folds']} | – | – | – | – | speaker-adapted |",
    )


def time_cell(t: dict) -> str:
    """The run's wall clock, or, for a run resumed or split across processes (its last wall
    clock only summarised finished folds), the training time summed over its folds."""
    if t["wall_seconds"] < 0.5 * t["training_seconds"]:
        return f"{t['training_seconds'] / 60:.1f} min training, folds summed"
    return f"{t['wall_seconds'] / 60:.1f} min"


def row(name: str, m: dict) -> str:
    t = m["timing"]
    n_folds = len(m["folds"])
    params = m.get("n_parameters")
    return (
        f"| `{name}` | {m['ua']:.2f} ± {m['ua_std']:.2f} | {m['wa']:.2f} ± {m['wa_std']:.2f} | "
        f"{m['macro_f1']:.2f} ± {m['macro_f1_std']:.2f} | {n_folds} | "
        f"{time_cell(t)} | {t['inference_ms_per_utterance']:.1f} | "
        f"{params if params is not None else '–'} | {m['machine']['cpu']}, "
        f"{m['machine']['torch_threads']} threads | {scoring(m)} |"
    )


def component_rows(name: str, m: dict) -> list[tuple[float, str]]:
    """One row per branch of a fusion model, scored alone with the same trained weights."""
    out = []
    for part, c in m.get("components", {}).items():
        out.append(
            (
                c["ua"],
                f"| `{name}`, its `{part}` branch alone (same weights) | {c['ua']:.2f} ± "
                f"{c['ua_std']:.2f} | {c['wa']:.2f} ± {c['wa_std']:.2f} | {c['macro_f1']:.2f} ± "
                f"{c['macro_f1_std']:.2f} | {c['folds']} | – | – | – | – | {scoring(m)} |",
            )
        )
    return out


def sweep_table() -> str:
    """The development sweep (``benchmarks/dev_sweep.py report --json-out``): validation UA."""
    rows = json.loads((HERE / "results" / "sweep" / "summary.json").read_text())
    lines = [
        "| recipe (validation actors of all 6 folds) | UA % (mean ± std over folds) | per fold |",
        "|---|---|---|",
    ]
    for r in rows:
        per = " / ".join(f"{u:.1f}" for u in r["per_fold"])
        lines.append(f"| `{r['tag']}` | {r['ua']:.2f} ± {r['std']:.2f} | {per} |")
    return "\n".join(lines)


def table() -> str:
    lines = [
        "| model | UA % | WA % | macro-F1 % | folds | wall clock (features + all folds) "
        "| inference ms/utt | parameters | machine | scoring |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    results = sorted(HERE.glob("results/*/metrics.json"))
    rows = []
    for path in results:
        m = json.loads(path.read_text())
        if m.get("protocol") != "emobox":  # cross-corpus runs have their own sections
            continue
        rows.append((m["ua"], row(path.parent.name, m)))
        rows += component_rows(path.parent.name, m)
        extra = adapted_row(path.parent.name, m)
        if extra:
            rows.append(extra)
    lines += [r for _, r in sorted(rows, reverse=True)]
    for name, ua, wa, f1 in PUBLISHED:
        lines.append(
            f"| {name} (published) | {ua:.2f} | {wa:.2f} | {f1:.2f} | 6 | – | – | – | – "
            "| per utterance |"
        )
    return "\n".join(lines)


def dev_table() -> str:
    """The development runs of ``benchmarks/dev_tune.py`` (validation actors only)."""
    path = HERE / "results" / "dev_runs.jsonl"
    lines = [
        "| run | model | change from the model's recipe | final-epoch val UA % "
        "| best val UA % (epoch) | val UA with 1/3/5/10 test crops | seconds | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for line in path.read_text().splitlines():
        r = json.loads(line)
        change = {**r.get("feature", {}), **r.get("params", {}), **r.get("train", {})}
        text = ", ".join(f"{k}={v}" for k, v in change.items()) or "–"
        crops = r.get("val_ua_by_test_crops")
        crops = " / ".join(f"{v:.1f}" for v in crops.values()) if crops else "–"
        lines.append(
            f"| {r['tag']} | `{r.get('model', 'cnn')}` | {text} | {r['final_val_ua']:.2f} "
            f"| {r['best_val_ua']:.2f} ({r['best_epoch']}) | {crops} | {r['seconds']:.0f} "
            f"| {r.get('note', '')} |"
        )
    return "\n".join(lines)


def conditions_table() -> str:
    """UA under the test conditions (noise, gain) of every run that measured them."""
    runs = []
    for path in sorted(HERE.glob("results/*/metrics.json")):
        m = json.loads(path.read_text())
        if m.get("conditions"):
            runs.append((path.parent.name, m))
    names = list(dict.fromkeys(c for _, m in runs for c in m["conditions"]))
    lines = [
        "| run | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for run, m in runs:
        cells = []
        for c in names:
            r = m["conditions"].get(c)
            if r is None:
                cells.append("–")
            elif c == "clean":
                cells.append(f"{r['ua']:.2f}")
            else:
                cells.append(f"{r['ua']:.2f} ({r['ua'] - m['conditions']['clean']['ua']:+.2f})")
        lines.append(f"| `{run}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_between(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"the markers {start} and {end} are missing from the README")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main() -> None:
    readme = HERE / "README.md"
    text = replace_between(readme.read_text(), START, END, table())
    text = replace_between(text, "<!-- dev -->", "<!-- /dev -->", dev_table())
    if "<!-- sweep -->" in text:
        text = replace_between(text, "<!-- sweep -->", "<!-- /sweep -->", sweep_table())
    if "<!-- conditions -->" in text:
        text = replace_between(
            text, "<!-- conditions -->", "<!-- /conditions -->", conditions_table()
        )
    readme.write_text(text)
    print(table())


if __name__ == "__main__":
    main()
