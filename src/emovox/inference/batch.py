"""Many inputs at once: expanding files, folders and globs, and writing predictions out."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import io
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from emovox.audio import AUDIO_EXTENSIONS
from emovox.data.taxonomy import DIMENSIONS
from emovox.inference.recognizer import CLIP_BASIS, NO_SPEECH, Prediction


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
    """Print predictions as a table, JSON, JSONL or CSV (failed inputs included with their
    error). The table follows the terminal's width, names files relative to their common
    folder and lists errors on lines of their own below it. Predictions of a model with
    arousal and valence get a column for each (after the classes' in the table and CSV)."""
    stream = stream or sys.stdout
    dims = dimensions_of(preds)
    if fmt == "json":
        json.dump([p.to_dict() for p in preds], stream, indent=2)
        stream.write("\n")
    elif fmt in OUTPUT_FORMATS:
        if fmt == "csv":
            stream.write(_line_header(labels, dims))
        stream.write("".join(_line(p, fmt, labels, dims) for p in preds))
    elif fmt == "table":
        _prediction_table(preds, labels, stream, dims)
    else:
        raise ValueError(f"format must be table, json, jsonl or csv, not {fmt!r}")


def dimensions_of(preds: Sequence[Prediction]) -> list[str]:
    """The dimension scores that the predictions carry (``arousal``, ``valence``, or none)."""
    ok = [p for p in preds if p.ok]
    return [d for d in DIMENSIONS if ok and all(getattr(p, d) is not None for p in ok)]


def _prediction_table(
    preds: Sequence[Prediction], labels: Sequence[str], stream, dims: Sequence[str] = ()
) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    names, folder = short_names([p.file for p in preds])
    table = Table(show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("emotion", style="bold")
    for c in labels:
        table.add_column(c, justify="right")
    for d in dims:
        table.add_column(d, justify="right", style="cyan")
    for p, name in zip(preds, names, strict=True):
        if p.ok:
            cells = [
                f"[bold]{p.probabilities[c]:.2f}[/bold]"
                if c == p.label
                else f"{p.probabilities[c]:.2f}"
                for c in labels
            ]
            cells += [f"{getattr(p, d):+.2f}" for d in dims]
            table.add_row(escape(name), p.label, *cells)
        else:
            table.add_row(escape(name), "[red]error[/red]", *[""] * (len(labels) + len(dims)))
    console = Console(file=stream, soft_wrap=False)
    console.print(table)
    if folder:
        console.print(f"files in {escape(folder)}", soft_wrap=True, style="dim")
    for p, name in zip(preds, names, strict=True):
        if p.ok and p.basis != CLIP_BASIS:
            console.print(f"{escape(name)}: the label of {p.basis}", soft_wrap=True, style="dim")
    for p, name in zip(preds, names, strict=True):
        if not p.ok:
            console.print(f"[red]{escape(name)}: {escape(p.error or '')}[/red]", soft_wrap=True)


def short_names(files: Sequence[str]) -> tuple[list[str], str | None]:
    """File names relative to their common folder (and that folder), for tables: the folder
    when there is a common one with more than one file in it, else the names as given."""
    real = [f for f in files if not f.startswith("<")]
    if len(real) < 2:
        return list(files), None
    try:
        common = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in real])
    except ValueError:  # different drives
        return list(files), None
    if common in ("", os.sep):
        return list(files), None
    names = [f if f.startswith("<") else os.path.relpath(os.path.abspath(f), common) for f in files]
    return names, common


CSV_RISKY = ("=", "+", "-", "@", "\t", "\r", "'")
"""First characters a spreadsheet may read as a formula (and the quote that escapes them)."""


def csv_text(value: str) -> str:
    """A text cell that no spreadsheet runs as a formula: one starting with ``= + - @``, a tab,
    a carriage return or a quote gets a leading ``'`` (:func:`csv_plain` takes it off)."""
    return f"'{value}" if value.startswith(CSV_RISKY) else value


def csv_plain(value: str) -> str:
    """The text of a :func:`csv_text` cell."""
    return value[1:] if value.startswith("'") else value


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
    return list(manifest_speakers(path))


def manifest_speakers(path: str | os.PathLike) -> dict[str, str]:
    """The audio paths of a saved emovox manifest, in its order, with each one's speaker.

    Raises:
        FileNotFoundError, ValueError: the manifest is missing or malformed (the message names it).
    """
    from emovox.data.manifest import Manifest

    return {u.path: u.speaker for u in Manifest.load(path)}


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


def done_files(
    output: str | os.PathLike, fmt: str, labels: Sequence[str], dims: Sequence[str] = ()
) -> set[str]:
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
        if header != _csv_header(labels, dims):
            raise ValueError(
                f"{path}: its columns {header} are not those of this model "
                f"{_csv_header(labels, dims)}; give another --output or drop --resume"
            )
        done.update(csv_plain(row[0]) for row in reader if row)
    return done


def _csv_header(labels: Sequence[str], dims: Sequence[str] = ()) -> list[str]:
    return ["file", "label", *labels, *dims, "basis", "error"]


def _line(p: Prediction, fmt: str, labels: Sequence[str], dims: Sequence[str] = ()) -> str:
    if fmt == "jsonl":
        return json.dumps(p.to_dict()) + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [
            csv_text(p.file),
            p.label or "",
            *[f"{p.probabilities[c]:.6f}" if p.ok else "" for c in labels],
            *[f"{getattr(p, d):.6f}" if p.ok and getattr(p, d) is not None else "" for d in dims],
            p.basis if p.ok else "",
            csv_text(p.error or ""),
        ]
    )
    return buf.getvalue()


def speaker_statistics(
    recognizer, groups: Mapping[str, Sequence[str]], progress: bool = False
) -> dict[str, object]:
    """Each file's speaker statistics (:class:`~emovox.features.normalization.SpeakerStats`)
    over the readable files of its group (one speaker, or one recording session), for a model
    trained with ``speaker_norm``, with the guard's weight for the group's clips
    (:meth:`~emovox.inference.recognizer.Recognizer.stats_of_features`); unreadable files are
    left out of the statistics (and get their error when scored)."""
    from emovox.audio import AudioError
    from emovox.progress import progress_bar

    out: dict[str, object] = {}
    total = sum(len(v) for v in groups.values())
    with progress_bar(total, "speaker statistics", enabled=progress) as bar:
        for files in groups.values():
            feats = []
            for f in files:
                with contextlib.suppress(AudioError):
                    feats.append(recognizer.feature.extract(recognizer.feature.load(f)))
                bar.advance(1)
            if feats:
                stats = recognizer.stats_of_features(feats)
                out.update({str(f): stats for f in files})
    return out


def score_files(
    recognizer,
    files: Sequence[str],
    output: str | os.PathLike,
    fmt: str | None = None,
    resume: bool = False,
    workers: int = 2,
    batch_size: int = 16,
    progress: bool = True,
    speaker_stats: Mapping[str, object] | None = None,
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
        speaker_stats: for a model trained with ``speaker_norm``, each file's speaker
            statistics (:func:`speaker_statistics`); files not in it are normalised alone.

    Returns:
        A :class:`ScoreSummary` (the failures with their reasons).
    """
    from concurrent.futures import ThreadPoolExecutor

    from emovox.progress import progress_bar

    out = Path(output)
    fmt = output_format(out, fmt)
    labels = recognizer.labels
    dims = recognizer.dimensions
    done = done_files(out, fmt, labels, dims) if resume else set()
    todo = [f for f in dict.fromkeys(str(f) for f in files) if f not in done]
    summary = ScoreSummary(out, skipped=len(files) - len(todo))
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = not resume or not out.is_file() or out.stat().st_size == 0
    workers = max(1, int(workers))
    ahead = max(batch_size, 1) + 2 * workers

    read = _reader(recognizer)

    with (
        open(out, "w" if fresh else "a", encoding="utf-8", newline="") as stream,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emovox-decode") as pool,
        progress_bar(len(todo), "scoring", enabled=progress) as bar,
    ):
        if fresh and fmt == "csv":
            stream.write(_line_header(labels, dims))
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
                preds = _predict_batch(recognizer, batch, batch_size, speaker_stats or {})
                stream.write("".join(_line(p, fmt, labels, dims) for p in preds))
                stream.flush()
                for p in preds:
                    if not p.ok:
                        summary.failed.append((p.file, p.error or ""))
                summary.written += len(preds)
                bar.advance(len(preds))
                batch = []
    return summary


def _reader(recognizer):
    """What the decoding threads of :func:`score_files` run: a file's waveform, a
    :class:`LongRecording` for a long one, or the error (never raised)."""
    from emovox.audio import AudioError, LongAudio
    from emovox.inference.recognizer import LONG_RECORDING_SECONDS

    def read(path: str):
        try:
            return recognizer.feature.load(path, max_duration=LONG_RECORDING_SECONDS)
        except LongAudio:
            return LongRecording(path)
        except AudioError as exc:
            return exc
        except Exception as exc:  # a decoder's unexpected failure must not stop the run
            return AudioError(path, f"could not be read ({type(exc).__name__}: {exc})")

    return read


def _line_header(labels: Sequence[str], dims: Sequence[str] = ()) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(_csv_header(labels, dims))
    return buf.getvalue()


@dataclasses.dataclass(frozen=True)
class LongRecording:
    """A file longer than :data:`~emovox.inference.recognizer.LONG_RECORDING_SECONDS`: not
    decoded ahead, but predicted on its own, segment by segment, read in blocks."""

    path: str


def _predict_batch(
    recognizer, batch: list[tuple[str, object]], batch_size: int, stats: Mapping[str, object]
) -> list[Prediction]:
    """Predictions for decoded items (errors kept), in order; one failure does not sink the
    rest. Items are predicted together by speaker statistics (none, or their speaker's); long
    recordings one by one, by their segments."""
    from emovox.audio import AudioError

    by_name: dict[str, Prediction] = {}
    for n, w in batch:
        if isinstance(w, LongRecording):
            try:
                by_name[n] = recognizer.predict_long(w.path, batch_size=batch_size)
            except AudioError as exc:
                by_name[n] = Prediction(n, None, {}, exc.reason)
            except Exception as exc:
                by_name[n] = Prediction(n, None, {}, f"prediction failed ({exc})")
    good = dict((n, w) for n, w in batch if not isinstance(w, (BaseException, LongRecording)))
    for names in statistics_groups(list(good), stats):
        members = [(n, good[n]) for n in names]
        by_name.update(_predict_group(recognizer, members, batch_size, stats.get(names[0])))
    return [
        Prediction(n, None, {}, getattr(w, "reason", str(w)))
        if isinstance(w, BaseException)
        else by_name[n]
        for n, w in batch
    ]


def statistics_groups(files: Sequence[str], stats: Mapping[str, object]) -> list[list[str]]:
    """``files`` grouped by the speaker statistics they are normalised with (none, or one
    speaker's), in order: each group can be predicted in one call."""
    groups: dict[int, list[str]] = {}
    for f in files:
        groups.setdefault(id(stats.get(f)), []).append(f)
    return list(groups.values())


def _predict_group(recognizer, good, batch_size: int, st) -> dict[str, Prediction]:
    names, waves = [n for n, _ in good], [w for _, w in good]
    try:
        got = recognizer.predict_waveforms(waves, names, batch_size, speaker_stats=st)
    except Exception:
        got = []
        for n, w in good:  # find the item that fails, keep the others
            try:
                got += recognizer.predict_waveforms([w], [n], 1, speaker_stats=st)
            except Exception as exc:
                got.append(Prediction(n, None, {}, f"prediction failed ({exc})"))
    return dict(zip(names, got, strict=True))


def render_segments(
    results: dict[str, list[dict]],
    errors: dict[str, str],
    labels: Sequence[str],
    fmt: str = "table",
    stream=None,
) -> None:
    """Print per-segment predictions (``predict --segments``) as a table, JSON, JSONL or CSV.

    ``results`` maps each file to its segments (``start``, ``end``, ``label``,
    ``probabilities``); ``errors`` maps unreadable files to the reason. A file without speech
    is never left out: it gets a line with no segment and the note :data:`NO_SPEECH`.
    """
    stream = stream or sys.stdout
    note = {f: (NO_SPEECH if not segs else None) for f, segs in results.items()}
    every = [s for segs in results.values() for s in segs]
    dims = [d for d in DIMENSIONS if every and all(s.get(d) is not None for s in every)]
    if fmt == "json":
        doc = [
            {"file": f, "segments": segs, "note": note[f], "error": None}
            for f, segs in results.items()
        ]
        doc += [{"file": f, "segments": [], "note": None, "error": e} for f, e in errors.items()]
        json.dump(doc, stream, indent=2)
        stream.write("\n")
    elif fmt == "jsonl":
        empty = {"start": None, "end": None, "label": None, "probabilities": {}}
        for f, segs in results.items():
            for s in segs:
                stream.write(json.dumps({"file": f, **s, "note": None, "error": None}) + "\n")
            if not segs:
                stream.write(json.dumps({"file": f, **empty, "note": NO_SPEECH, "error": None}))
                stream.write("\n")
        for f, e in errors.items():
            stream.write(json.dumps({"file": f, **empty, "note": None, "error": e}) + "\n")
    elif fmt == "csv":
        w = csv.writer(stream, lineterminator="\n")
        w.writerow(["file", "start", "end", "label", *labels, *dims, "note", "error"])
        blank = [""] * (len(labels) + len(dims))
        for f, segs in results.items():
            for s in segs:
                probs = [f"{s['probabilities'].get(c, 0.0):.6f}" for c in labels]
                probs += [f"{s[d]:.6f}" for d in dims]
                times = [f"{s['start']:.3f}", f"{s['end']:.3f}"]
                w.writerow([csv_text(f), *times, s["label"], *probs, "", ""])
            if not segs:
                w.writerow([csv_text(f), "", "", "", *blank, NO_SPEECH, ""])
        for f, e in errors.items():
            w.writerow([csv_text(f), "", "", "", *blank, "", csv_text(e)])
    elif fmt == "table":
        _segment_tables(results, errors, labels, stream, dims)
    else:
        raise ValueError(f"format must be table, json, jsonl or csv, not {fmt!r}")


def _segment_tables(results, errors, labels, stream, dims: Sequence[str] = ()) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=stream, soft_wrap=False)
    for f, segs in results.items():
        if not segs:
            console.print(f"{escape(f)}: {NO_SPEECH}", soft_wrap=True)
            continue
        table = Table(title=escape(f"{f}: {len(segs)} segment(s)"))
        for name in ("start", "end", "emotion"):
            table.add_column(name, justify="right" if name != "emotion" else "left")
        for c in labels:
            table.add_column(c, justify="right")
        for d in dims:
            table.add_column(d, justify="right", style="cyan")
        for s in segs:
            table.add_row(
                f"{s['start']:.2f}",
                f"{s['end']:.2f}",
                s["label"],
                *[f"{s['probabilities'].get(c, 0.0):.2f}" for c in labels],
                *[f"{s[d]:+.2f}" for d in dims],
            )
        console.print(table)
    for f, e in errors.items():
        console.print(f"[red]{escape(f)}: {escape(e)}[/red]", soft_wrap=True)
