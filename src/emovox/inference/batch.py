"""Many inputs at once: expanding files, folders and globs, and writing predictions out."""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from emovox.audio import AUDIO_EXTENSIONS
from emovox.inference.recognizer import Prediction


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


# -- batch scoring to a file ---------------------------------------------------------------------

OUTPUT_FORMATS = ("jsonl", "csv")


@dataclasses.dataclass
class ScoreSummary:
    """What :func:`score_files` did: lines written, files skipped by ``resume``, failures."""

    output: Path
    written: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def manifest_inputs(path: str | os.PathLike) -> list[str]:
    """The audio paths of a saved emovox manifest (CSV or JSONL), in its order.

    Raises:
        FileNotFoundError, ValueError: the manifest is missing or malformed (the message names it).
    """
    from emovox.data.manifest import Manifest

    return [u.path for u in Manifest.load(path)]


def output_format(output: str | os.PathLike, fmt: str | None = None) -> str:
    """``fmt``, or the format told by the output's extension (``.csv`` -> csv, else jsonl)."""
    if fmt is None:
        return "csv" if Path(output).suffix.lower() == ".csv" else "jsonl"
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"batch output format must be one of {OUTPUT_FORMATS}, not {fmt!r}")
    return fmt


def _truncate_partial_line(path: Path) -> None:
    """Cut a last line that was not finished (a run stopped mid-write)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def done_files(output: str | os.PathLike, fmt: str, labels: Sequence[str]) -> set[str]:
    """The files already in an output written by :func:`score_files` (for ``resume``).

    Raises:
        ValueError: the output is not such a file (wrong columns, or lines that are not JSON).
    """
    path = Path(output)
    if not path.is_file() or path.stat().st_size == 0:
        return set()
    _truncate_partial_line(path)
    done: set[str] = set()
    if fmt == "jsonl":
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                done.add(str(json.loads(line)["file"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a line of emovox predictions ({exc})") from exc
        return done
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != _csv_header(labels):
            raise ValueError(
                f"{path}: its columns {header} are not those of this model "
                f"{_csv_header(labels)}; give another --output or drop --resume"
            )
        done.update(row[0] for row in reader if row)
    return done


def _csv_header(labels: Sequence[str]) -> list[str]:
    return ["file", "label", *labels, "error"]


def _line(p: Prediction, fmt: str, labels: Sequence[str]) -> str:
    if fmt == "jsonl":
        row = {"file": p.source, "label": p.label, "probabilities": p.probabilities}
        return json.dumps({**row, "error": p.error}) + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [
            p.source,
            p.label or "",
            *[f"{p.probabilities[c]:.6f}" if p.ok else "" for c in labels],
            p.error or "",
        ]
    )
    return buf.getvalue()


def score_files(
    recognizer,
    files: Sequence[str],
    output: str | os.PathLike,
    fmt: str | None = None,
    resume: bool = False,
    workers: int = 2,
    batch_size: int = 16,
    progress: bool = True,
) -> ScoreSummary:
    """Predict many files into a JSONL or CSV file, one line per file, in the order given.

    Files are decoded by ``workers`` threads (a bounded number ahead of the model), predicted in
    batches of ``batch_size``, and each batch's lines are appended and flushed at once, so a
    stopped run loses at most one batch. An unreadable file gets a line with its ``error`` and the
    run goes on. With ``resume``, files already in ``output`` are skipped and new lines appended;
    without it, ``output`` is started afresh.

    Args:
        recognizer: a :class:`~emovox.inference.recognizer.Recognizer`.
        files: the audio files.
        output: the ``.jsonl`` or ``.csv`` to write.
        fmt: ``"jsonl"`` or ``"csv"`` (default: from the extension).
        resume: skip files already in ``output``.
        workers: decoding threads.
        batch_size: files predicted together.
        progress: show a progress bar on standard error.

    Returns:
        A :class:`ScoreSummary` (the failures with their reasons).
    """
    from concurrent.futures import ThreadPoolExecutor

    from emovox.audio import AudioError
    from emovox.progress import progress_bar

    out = Path(output)
    fmt = output_format(out, fmt)
    labels = recognizer.labels
    done = done_files(out, fmt, labels) if resume else set()
    todo = [f for f in dict.fromkeys(str(f) for f in files) if f not in done]
    summary = ScoreSummary(out, skipped=len(files) - len(todo))
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = not resume or not out.is_file() or out.stat().st_size == 0
    workers = max(1, int(workers))
    ahead = max(batch_size, 1) + 2 * workers

    def read(path: str):
        try:
            return recognizer.feature.load(path)
        except AudioError as exc:
            return exc
        except Exception as exc:  # a decoder's unexpected failure must not stop the run
            return AudioError(path, f"could not be read ({type(exc).__name__}: {exc})")

    with (
        open(out, "w" if fresh else "a", encoding="utf-8", newline="") as stream,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emovox-decode") as pool,
        progress_bar(len(todo), "scoring", enabled=progress) as bar,
    ):
        if fresh and fmt == "csv":
            stream.write(_line_header(labels))
            stream.flush()
        futures: dict[int, object] = {}
        batch: list[tuple[str, object]] = []
        for i in range(min(ahead, len(todo))):
            futures[i] = pool.submit(read, todo[i])
        for i, path in enumerate(todo):
            item = futures.pop(i).result()
            if i + ahead < len(todo):
                futures[i + ahead] = pool.submit(read, todo[i + ahead])
            batch.append((path, item))
            if len(batch) >= batch_size or i == len(todo) - 1:
                preds = _predict_batch(recognizer, batch, batch_size)
                stream.write("".join(_line(p, fmt, labels) for p in preds))
                stream.flush()
                for p in preds:
                    if not p.ok:
                        summary.failed.append((p.source, p.error or ""))
                summary.written += len(preds)
                bar.advance(len(preds))
                batch = []
    return summary


def _line_header(labels: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(_csv_header(labels))
    return buf.getvalue()


def _predict_batch(
    recognizer, batch: list[tuple[str, object]], batch_size: int
) -> list[Prediction]:
    """Predictions for decoded items (errors kept), in order; one failure does not sink the rest."""
    good = [(n, w) for n, w in batch if not isinstance(w, BaseException)]
    try:
        got = recognizer.predict_waveforms([w for _, w in good], [n for n, _ in good], batch_size)
    except Exception:
        got = []
        for n, w in good:  # find the item that fails, keep the others
            try:
                got += recognizer.predict_waveforms([w], [n], 1)
            except Exception as exc:
                got.append(Prediction(n, None, {}, f"prediction failed ({exc})"))
    by_name = dict(zip([n for n, _ in good], got, strict=True))
    return [
        Prediction(n, None, {}, getattr(w, "reason", str(w)))
        if isinstance(w, BaseException)
        else by_name[n]
        for n, w in batch
    ]


def render_segments(
    results: dict[str, list[dict]],
    errors: dict[str, str],
    labels: Sequence[str],
    fmt: str = "table",
    stream=None,
) -> None:
    """Print per-segment predictions (``predict --segments``) as a table, JSON, JSONL or CSV.

    ``results`` maps each file to its segments (``start``, ``end``, ``label``,
    ``probabilities``); ``errors`` maps unreadable files to the reason.
    """
    stream = stream or sys.stdout
    if fmt == "json":
        doc = [{"file": f, "segments": segs, "error": None} for f, segs in results.items()]
        doc += [{"file": f, "segments": [], "error": e} for f, e in errors.items()]
        json.dump(doc, stream, indent=2)
        stream.write("\n")
    elif fmt == "jsonl":
        for f, segs in results.items():
            for s in segs:
                stream.write(json.dumps({"file": f, **s, "error": None}) + "\n")
        for f, e in errors.items():
            stream.write(json.dumps({"file": f, "error": e}) + "\n")
    elif fmt == "csv":
        w = csv.writer(stream, lineterminator="\n")
        w.writerow(["file", "start", "end", "label", *labels, "error"])
        for f, segs in results.items():
            for s in segs:
                probs = [f"{s['probabilities'].get(c, 0.0):.6f}" for c in labels]
                w.writerow([f, f"{s['start']:.3f}", f"{s['end']:.3f}", s["label"], *probs, ""])
        for f, e in errors.items():
            w.writerow([f, "", "", "", *[""] * len(labels), e])
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=stream, width=max(100, 30 + 10 * len(labels)))
        for f, segs in results.items():
            table = Table(title=f"{f}: {len(segs)} segment(s)")
            for name in ("start", "end", "emotion"):
                table.add_column(name, justify="right" if name != "emotion" else "left")
            for c in labels:
                table.add_column(c, justify="right")
            for s in segs:
                table.add_row(
                    f"{s['start']:.2f}",
                    f"{s['end']:.2f}",
                    s["label"],
                    *[f"{s['probabilities'].get(c, 0.0):.2f}" for c in labels],
                )
            console.print(table)
        for f, e in errors.items():
            console.print(f"[red]{f}: {e}[/red]")
