"""Many inputs at once: expanding files, folders and globs, and writing predictions out."""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from emovox.audio import AUDIO_EXTENSIONS
from emovox.recognizer import Prediction


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> tuple[list[str], list[str]]:
    """Files as given, folders searched recursively for audio, globs expanded.

    Returns ``(files, missing)``: the files found (sorted within each folder) and the inputs
    that matched nothing.
    """
    files: list[str] = []
    missing: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
            )
            files.extend(found)
        elif p.exists():
            files.append(str(p))
        elif glob.has_magic(str(item)):
            matched = sorted(glob.glob(str(item), recursive=True))
            files.extend(m for m in matched if Path(m).is_file())
            if not matched:
                missing.append(str(item))
        else:
            missing.append(str(item))
    return list(dict.fromkeys(files)), missing


def render_predictions(
    preds: Sequence[Prediction], labels: Sequence[str], fmt: str = "table", stream=None
) -> None:
    """Print predictions as a table, JSON or CSV (failed inputs included with their error)."""
    stream = stream or sys.stdout
    if fmt == "json":
        json.dump([p.to_dict() for p in preds], stream, indent=2)
        stream.write("\n")
    elif fmt == "csv":
        w = csv.writer(stream, lineterminator="\n")
        w.writerow(["file", "label", *labels, "error"])
        for p in preds:
            w.writerow(
                [
                    p.source,
                    p.label or "",
                    *[f"{p.probabilities[c]:.6f}" if p.ok else "" for c in labels],
                    p.error or "",
                ]
            )
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_lines=False)
        table.add_column("file", overflow="fold")
        table.add_column("emotion", style="bold")
        for c in labels:
            table.add_column(c, justify="right")
        for p in preds:
            if p.ok:
                best = p.label
                table.add_row(
                    p.source,
                    p.label,
                    *[
                        f"[bold]{p.probabilities[c]:.2f}[/bold]"
                        if c == best
                        else f"{p.probabilities[c]:.2f}"
                        for c in labels
                    ],
                )
            else:
                table.add_row(
                    p.source, "[red]error[/red]", f"[red]{p.error}[/red]", *[""] * (len(labels) - 1)
                )
        Console(file=stream, width=max(100, 20 + 10 * len(labels))).print(table)
