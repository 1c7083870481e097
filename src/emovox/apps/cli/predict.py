"""``emovox predict``: files, folders, globs or a manifest; per segment for long recordings."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import click

from emovox.apps.cli.options import (
    DECLIP_OPTION,
    DENOISE_OPTION,
    VAD_OPTION,
    check_target,
    engine_options,
)


@click.command()
@click.argument("inputs", nargs=-1)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(),
    help="Model folder, or the name of a model shipped with emovox: default (7 emotions, six "
    "corpora) or ravdess-8 (8 emotions, RAVDESS alone). Default: default.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "jsonl"]),
    help="Output format (default: table; with --out, from its extension).",
)
@click.option("--labels", help="Restrict to these classes, e.g. angry,happy,neutral,sad.")
@click.option(
    "--backend",
    type=click.Choice(["torch", "onnx", "onnx-int8"]),
    default="torch",
    show_default=True,
    help="Run the model with torch or onnxruntime (needs MODEL/model.onnx or --onnx; "
    "onnx-int8: MODEL/model.int8.onnx from `emovox export --quantize int8`).",
)
@click.option("--onnx", "onnx_file", type=click.Path(), help="The ONNX file of --backend onnx.")
@DECLIP_OPTION
@DENOISE_OPTION
@click.option("--manifest", "manifest_file", type=click.Path(), help="Score a manifest's files.")
@click.option(
    "-o",
    "--out",
    "--output",
    "output",
    type=click.Path(),
    help="Write the predictions into this file (jsonl and csv: a line per file as it goes; "
    "format from --format or the extension; --output: the older spelling).",
)
@click.option("--resume", is_flag=True, help="With --out: skip files already in it.")
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing --out / --plot file (never an input)."
)
@click.option("--workers", default=2, show_default=True, help="Decoding threads (--out).")
@click.option("--batch-size", default=16, show_default=True, help="Files predicted together.")
@click.option("--segments", is_flag=True, help="Long recordings: one prediction per segment.")
@VAD_OPTION
@click.option("--max-segment", default=10.0, show_default=True, help="Longest segment (s).")
@click.option("--plot", "plot_file", type=click.Path(), help="With --segments: timeline PNG.")
@click.option(
    "--one-speaker",
    is_flag=True,
    help="All inputs are one speaker: adapt to that speaker over these files (a model trained "
    "with speaker_norm, e.g. cnn-egemaps, normalises them with the speaker's statistics; any "
    "other balances its predictions with their mean; speaker-adapted); with --segments, each "
    "recording's segments are one speaker.",
)
@click.option(
    "--by-speaker",
    is_flag=True,
    help="With --manifest: adapt to each speaker over that speaker's files (its speaker "
    "column; speaker-adapted, as --one-speaker).",
)
@click.option(
    "--full-adaptation",
    is_flag=True,
    help="With --one-speaker / --by-speaker: adapt to the speaker fully. By default a "
    "guard blends the adapted prediction with the per-utterance one as far as the spread of the "
    "speaker's clips allows (a speaker heard in one emotion is predicted per utterance).",
)
@engine_options(
    "decode in Ray tasks and predict in a pool of Ray actors; needs -o FILE.jsonl or -o "
    "FOLDER.parquet; inputs may be URLs (s3://...)"
)
@click.option("--actors", type=int, help="With --engine ray: inference actors (default: CPUs/2).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict(
    inputs,
    model_dir,
    fmt,
    labels,
    backend,
    onnx_file,
    declip,
    denoise,
    manifest_file,
    output,
    resume,
    overwrite,
    workers,
    batch_size,
    segments,
    vad,
    max_segment,
    plot_file,
    one_speaker,
    by_speaker,
    full_adaptation,
    engine,
    address,
    actors,
    quiet,
) -> None:
    """Predict the emotion of files, folders or globs; a bad file is reported, the rest go on.

    Without --model, the default model bundled with emovox is used (7 emotions with arousal and
    valence, five acted corpora; non-commercial research use; see its MODEL_CARD.md);
    --model ravdess-8 is the earlier RAVDESS-only model (8 emotions).

    \b
    emovox predict clip.wav
    emovox predict clip.wav --segments --plot timeline.png
    emovox predict --model M a.wav recordings/ "more/**/*.flac"
    emovox predict --model M --manifest manifest.csv -o preds.jsonl --resume
    emovox predict --model M talk.wav --segments --vad auto --plot timeline.png
    emovox predict --one-speaker speaker_07/   # all files one speaker: speaker-adapted
    emovox predict --declip sparse too_loud.wav   # a recording that clips
    emovox predict --denoise wiener by_the_fan.wav   # steady background noise
    emovox predict --model M "s3://calls/**/*.wav" --engine ray --address auto -o out.parquet
    """
    from emovox.inference.recognizer import Prediction

    _check_options(inputs, manifest_file, resume, output, plot_file, segments, one_speaker, fmt)
    if engine == "ray":
        if declip or denoise:
            raise click.UsageError("--declip and --denoise do not go with --engine ray")
        _check_ray_options(output, segments, one_speaker, by_speaker, full_adaptation, fmt)
        _predict_on_ray(model_dir, inputs, manifest_file, output, labels, backend, resume,
                        overwrite, address, actors, batch_size, quiet)
        return
    if address or actors:
        raise click.UsageError("--address and --actors go with --engine ray")
    if by_speaker and (not manifest_file or one_speaker):
        raise click.UsageError("--by-speaker needs --manifest FILE, and not --one-speaker")
    files, missing, speakers = _inputs(inputs, manifest_file)
    check_targets(files, output, plot_file, resume, overwrite)
    engine = "onnx" if onnx_file and backend == "torch" else backend
    rec = _load(model_dir, labels, engine, onnx_file, declip, denoise)
    if full_adaptation:
        if not (one_speaker or by_speaker):
            raise click.UsageError("--full-adaptation goes with --one-speaker or --by-speaker")
        rec.guard = None
    if segments:
        _predict_segments(
            rec, files, missing, fmt or "table", output, vad, max_segment, plot_file, one_speaker
        )
        return
    stats = _adaptation(rec, files, speakers if by_speaker else None, one_speaker, quiet)
    if output and output_format_of(output, fmt) in ("jsonl", "csv"):
        _score_to_file(rec, files + missing, output, fmt, resume, workers, batch_size, quiet, stats)
        return
    if resume:
        raise click.UsageError("--resume adds lines to a jsonl or csv --output")
    preds = _predict_all(rec, files, batch_size, stats)
    preds += [Prediction(m, None, {}, missing_reason(m)) for m in missing]
    _show(preds, rec.labels, output, fmt)


def _inputs(inputs, manifest_file) -> tuple[list[str], list[str], dict[str, str]]:
    """The audio files of the inputs and of ``--manifest`` (with its speakers), the inputs
    that matched none."""
    from emovox.inference.batch import expand_inputs, manifest_speakers

    files, missing = expand_inputs(inputs)
    speakers: dict[str, str] = {}
    if manifest_file:
        try:
            speakers = manifest_speakers(manifest_file)
        except (FileNotFoundError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        files += [f for f in speakers if f not in files]
    if not files and not missing:
        raise click.ClickException("no audio files given (the folders hold none)")
    return files, missing, speakers


def _load(model_dir, labels, backend, onnx_file, declip=None, denoise=None):
    from emovox.inference.bundle import BundleError
    from emovox.inference.onnx_backend import OnnxUnavailable
    from emovox.inference.recognizer import Recognizer

    try:
        return Recognizer.load(
            model_dir or None,
            labels=labels.split(",") if labels else None,
            backend=backend,
            onnx_path=onnx_file,
            declip=declip,
            denoise=denoise,
        )
    except (BundleError, ValueError, OnnxUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc


def _show(preds, labels, output, fmt) -> None:
    """Print the predictions, or write them whole into ``output``; exit 1 when none worked."""
    from emovox.inference.batch import render_predictions

    if output:
        from emovox._fs import atomic_write_text

        buf = io.StringIO()
        render_predictions(preds, labels, output_format_of(output, fmt), buf)
        atomic_write_text(output, buf.getvalue())
        click.echo(f"{len(preds)} prediction(s) written to {output}", err=True)
    else:
        render_predictions(preds, labels, fmt or "table")
    failed = sum(not p.ok for p in preds)
    if failed:
        click.echo(f"{failed} of {len(preds)} input(s) could not be read", err=True)
    if failed == len(preds):
        sys.exit(1)


def output_format_of(output: str, fmt: str | None) -> str:
    """``--format``, else the format told by the ``--out`` extension."""
    if fmt:
        return fmt
    suffix = Path(output).suffix.lower()
    return {".csv": "csv", ".json": "json", ".txt": "table"}.get(suffix, "jsonl")


def missing_reason(path: str) -> str:
    """Why an input matched no audio file."""
    return "a folder with no audio files" if Path(path).is_dir() else "no such file or folder"


def check_targets(files, output, plot_file, resume: bool, overwrite: bool) -> None:
    """Never write over an input; never replace an existing output unless told how."""
    inputs = {os.path.realpath(f) for f in files}
    for target, what in ((output, "--output"), (plot_file, "--plot")):
        if not target:
            continue
        check_target(target)
        if os.path.realpath(target) in inputs:
            raise click.UsageError(f"{what} {target} is one of the inputs; give another file")
        existing = Path(target).is_file() and Path(target).stat().st_size > 0
        if existing and not overwrite and not (resume and what == "--output"):
            how = "--resume to add to it or --overwrite" if what == "--output" else "--overwrite"
            raise click.UsageError(f"{what} {target} exists; give {how} to replace it")


def _adaptation(rec, files, speakers, one_speaker: bool, quiet: bool) -> dict | None:
    """Each file's speaker statistics for ``--one-speaker`` / ``--by-speaker`` (``None``
    without them)."""
    if not one_speaker and speakers is None:
        return None
    from emovox.inference.batch import speaker_statistics

    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault("" if one_speaker else speakers.get(f, f), []).append(f)
    return speaker_statistics(rec, groups, progress=not quiet)


def _predict_all(rec, files, batch_size: int, stats: dict | None) -> list:
    """Predictions of ``files`` in their order, each group of speaker statistics together."""
    from emovox.inference.batch import statistics_groups

    if not stats:
        return rec.predict_batch(files, batch_size=batch_size) if files else []
    out = {}
    for members in statistics_groups(files, stats):
        got = rec.predict_batch(members, batch_size=batch_size, speaker_stats=stats.get(members[0]))
        out.update(zip(members, got, strict=True))
    return [out[f] for f in files]


def _check_options(inputs, manifest_file, resume, output, plot_file, segments, one_speaker, fmt):
    """Usage errors of option combinations that make no sense."""
    if not inputs and not manifest_file:
        raise click.UsageError("give audio files, folders or globs, or --manifest FILE")
    if resume and not output:
        raise click.UsageError("--resume needs --output FILE")
    if plot_file and not segments:
        raise click.UsageError("--plot draws the timeline of --segments")


def _check_ray_options(output, segments, one_speaker, by_speaker, full_adaptation, fmt) -> None:
    if not output:
        raise click.UsageError("--engine ray writes to -o FILE.jsonl or -o FOLDER.parquet")
    if segments or one_speaker or by_speaker or full_adaptation:
        raise click.UsageError(
            "--engine ray scores whole files (not --segments, --one-speaker or --by-speaker)"
        )
    if fmt not in (None, "jsonl"):
        raise click.UsageError("--engine ray writes jsonl, or parquet for an -o *.parquet folder")


def _predict_on_ray(
    model_dir, inputs, manifest_file, output, labels, backend, resume, overwrite, address,
    actors, batch_size, quiet,
) -> None:
    """``predict --engine ray``: :func:`emovox.inference.ray_scoring.score_with_ray`."""
    from emovox.inference.batch import manifest_inputs
    from emovox.inference.bundle import BundleError
    from emovox.inference.ray_scoring import RayUnavailable, expand_sources, score_with_ray

    if manifest_file:
        files, missing = manifest_inputs(manifest_file), []
    else:
        files, missing = expand_sources(list(inputs))
    out = Path(output)
    if out.exists() and not resume:
        if not overwrite:
            raise click.UsageError(f"--out {out} exists; give --resume to add to it or --overwrite")
        if out.is_dir():
            for shard in out.glob("part-*.parquet"):
                shard.unlink()
        else:
            out.unlink()
    from emovox.pretrained import resolve_model

    try:
        model_dir = str(resolve_model(model_dir or None))
        summary = score_with_ray(
            model_dir,
            files,
            out,
            resume=resume,
            address=address,
            actors=actors,
            batch_size=batch_size,
            labels=labels.split(",") if labels else None,
            backend=backend,
            progress=not quiet,
        )
    except (RayUnavailable, BundleError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{summary.written} file(s) written to {summary.output}"
        + (f", {summary.skipped} already there" if summary.skipped else ""),
        err=True,
    )
    for path in missing:
        click.echo(f"  {path}: {missing_reason(path)}", err=True)
    if summary.failed:
        click.echo(f"{len(summary.failed)} file(s) could not be read:", err=True)
        for path, reason in summary.failed:
            click.echo(f"  {path}: {reason}", err=True)


def _score_to_file(rec, inputs, output, fmt, resume, workers, batch_size, quiet, stats) -> None:
    """``predict --out FILE``: one line per file as it goes, bad files listed at the end."""
    from emovox.inference.batch import score_files

    try:
        summary = score_files(
            rec,
            inputs,
            output,
            fmt=output_format_of(output, fmt),
            resume=resume,
            workers=workers,
            batch_size=batch_size,
            progress=not quiet,
            speaker_stats=stats,
        )
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{summary.written} file(s) written to {summary.output}"
        + (f", {summary.skipped} already there" if summary.skipped else ""),
        err=True,
    )
    if summary.failed:
        click.echo(f"{len(summary.failed)} file(s) could not be read:", err=True)
        for path, reason in summary.failed:
            click.echo(f"  {path}: {reason}", err=True)
    if summary.failed and len(summary.failed) == summary.written:
        sys.exit(1)


def _predict_segments(
    rec, files, missing, fmt, output, vad, max_segment, plot_file, one_speaker=False
) -> None:
    """``predict --segments``: per-segment predictions of each (long) file (with
    ``one_speaker``: each file's segments adapted to that file's statistics)."""
    from emovox.audio import AudioError
    from emovox.inference.batch import render_segments
    from emovox.segmentation import SegmentationConfig

    try:
        cfg = SegmentationConfig(max_segment=max_segment)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    results: dict[str, list[dict]] = {}
    errors: dict[str, str] = {m: missing_reason(m) for m in missing}
    for path in files:
        try:
            results[path] = rec.predict_segments(
                path, vad=vad, config=cfg, one_speaker=one_speaker
            )
        except AudioError as exc:
            errors[path] = exc.reason
        except RuntimeError as exc:  # silero asked for but not installed
            raise click.ClickException(str(exc)) from exc
    if output:
        from emovox._fs import atomic_write_text

        buf = io.StringIO()
        out_fmt = output_format_of(output, fmt if fmt != "table" else None)
        render_segments(results, errors, rec.labels, out_fmt, buf)
        atomic_write_text(output, buf.getvalue())
        click.echo(f"wrote {output}", err=True)
    else:
        render_segments(results, errors, rec.labels, fmt)
    if plot_file:
        from emovox.plots import plot_timeline

        drawn = [(p, segs) for p, segs in results.items() if segs]
        if len(drawn) == 1:
            p, segs = drawn[0]
            plot_timeline(segs, rec.labels, plot_file, title=Path(p).name, duration=_length(p))
            click.echo(f"wrote {plot_file}", err=True)
        elif drawn:
            for p, segs in drawn:
                target = Path(plot_file).with_name(f"{Path(plot_file).stem}_{Path(p).stem}.png")
                plot_timeline(segs, rec.labels, target, title=Path(p).name, duration=_length(p))
                click.echo(f"wrote {target}", err=True)
        else:
            click.echo("no speech segments: no timeline drawn", err=True)
    for path, reason in errors.items():
        click.echo(f"{path}: {reason}", err=True)
    if errors and not results:
        sys.exit(1)



def _length(path: str) -> float | None:
    """A file's duration in seconds (``None`` when its header cannot tell)."""
    from emovox.audio import AudioError, audio_info

    try:
        return audio_info(path).duration
    except AudioError:
        return None


COMMAND = predict
