"""Batch scoring on Ray Data: ``emovox predict ... --engine ray [--address ADDR] -o OUT``.

The same predictions as :func:`emovox.inference.batch.score_files`, spread over a Ray cluster
(a local one started on demand, or the one at ``address``):

- **decoding** as a Ray Data map over the files, in parallel: each file (a local path, or any URL
  that fsspec reads, such as ``s3://bucket/x.wav``) read as mono at the model's rate; a
  recording longer than :data:`~emovox.inference.recognizer.LONG_RECORDING_SECONDS` is passed on
  by name and predicted segment by segment, as the local engine does; an unreadable file carries
  its reason. Both steps ask for one CPU, so Ray Data fuses the map into the actors' operator:
  each actor decodes the files it predicts, and no decoded audio crosses the object store;
- **inference** in a pool of actors, each loading the model once and predicting its batches
  with :meth:`~emovox.inference.recognizer.Recognizer.predict_waveforms` (batched by length);
- **results written as they come** by the driver: lines appended to a JSONL file (flushed per
  batch), or Parquet shards written atomically into a folder; ``resume`` skips the files already
  there, so a killed run loses and repeats nothing. Progress is shown.

Ray is the optional extra ``emovox[ray]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox.inference.batch import ScoreSummary, done_files

RAY_HINT = 'pip install "emovox[ray]"'
PARQUET = "parquet"
ENGINE_FORMATS = ("jsonl", PARQUET)
SHARD = "part-{:05d}.parquet"


class RayUnavailable(RuntimeError):
    """Ray is not installed."""


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayUnavailable(
            f"--engine ray needs Ray Data, which is not installed; install it with: {RAY_HINT}"
        ) from exc
    return ray


def is_url(path: str) -> bool:
    """Whether ``path`` names a remote file (``scheme://...``, not a local path)."""
    return "://" in str(path) and not str(path).startswith("file://")


def expand_sources(inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """Audio files of local paths, folders and globs (:func:`~emovox.inference.batch.
    expand_inputs`) and of URLs (a file, a folder searched recursively, or a glob, through
    fsspec); and the inputs that matched nothing."""
    from emovox.audio import AUDIO_EXTENSIONS
    from emovox.inference.batch import expand_inputs

    local = [str(i) for i in inputs if not is_url(str(i))]
    files, missing = expand_inputs(local) if local else ([], [])
    for url in (str(i) for i in inputs if is_url(str(i))):
        import fsspec

        fs, path = fsspec.core.url_to_fs(url)
        protocol = url.split("://", 1)[0]
        if any(c in path for c in "*?["):
            found = sorted(fs.glob(path))
        elif fs.isdir(path):
            found = sorted(fs.find(path))
        else:
            found = [path] if fs.exists(path) else []
        found = [f for f in found if f.lower().endswith(AUDIO_EXTENSIONS)]
        files += [f"{protocol}://{f}" for f in found]
        if not found:
            missing.append(url)
    return list(dict.fromkeys(files)), missing


def engine_format(output: str | os.PathLike, fmt: str | None = None) -> str:
    """``fmt``, or ``parquet`` for an output named ``*.parquet`` (a folder of shards), else
    ``jsonl``."""
    if fmt is None:
        return PARQUET if str(output).rstrip("/").endswith(".parquet") else "jsonl"
    if fmt not in ENGINE_FORMATS:
        raise ValueError(f"--engine ray writes {' or '.join(ENGINE_FORMATS)}, not {fmt!r}")
    return fmt


# -- the stages --------------------------------------------------------------------------------


def read_wave(path: str, sr: int, max_duration: float | None = None) -> np.ndarray:
    """A local file or a URL as float32 mono at ``sr``; a local file longer than
    ``max_duration`` seconds raises :class:`~emovox.audio.LongAudio` unread."""
    from emovox.audio import AudioError, load_audio, prepare_array

    if not is_url(path):
        return load_audio(path, sr=sr, max_duration=max_duration)
    import fsspec
    import soundfile as sf

    try:
        with fsspec.open(path, "rb") as f:
            data = f.read()
        samples, native = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise AudioError(path, "no such file") from None
    except Exception as exc:
        raise AudioError(path, f"not a readable audio file ({exc})") from exc
    try:
        return prepare_array(samples, native, sr)
    except AudioError as exc:
        raise AudioError(path, exc.reason) from None


def _decode(row: dict, sr: int, long_seconds: float) -> dict:
    """A Ray task: ``{"file", "wave", "long", "error"}`` of one input file."""
    from emovox.audio import AudioError, LongAudio

    path = row["file"]
    out = {"file": path, "wave": np.zeros(0, np.float32), "long": False, "error": ""}
    try:
        out["wave"] = read_wave(path, sr, max_duration=long_seconds)
    except LongAudio:
        out["long"] = True
    except AudioError as exc:
        out["error"] = exc.reason
    except Exception as exc:  # a decoder's failure must not stop the run
        out["error"] = f"could not be read ({type(exc).__name__}: {exc})"
    return out


class _Predictor:
    """A Ray actor: the model loaded once, predicting batches of decoded rows."""

    def __init__(self, model_dir: str, labels: list[str] | None, backend: str, batch: int):
        import torch

        from emovox.inference.recognizer import Recognizer

        torch.set_num_threads(1)
        self.rec = Recognizer.load(model_dir, labels=labels, backend=backend)
        self.batch = batch

    def __call__(self, batch: dict) -> dict:
        from emovox.audio import AudioError
        from emovox.inference.recognizer import Prediction

        files = [str(f) for f in batch["file"]]
        preds: dict[int, Prediction] = {}
        waves, names, rows = [], [], []
        for i, f in enumerate(files):
            if batch["error"][i]:
                preds[i] = Prediction(f, None, {}, str(batch["error"][i]))
            elif batch["long"][i]:
                try:
                    preds[i] = self._long(f)
                except AudioError as exc:
                    preds[i] = Prediction(f, None, {}, exc.reason)
            else:
                waves.append(np.asarray(batch["wave"][i], dtype=np.float32))
                names.append(f)
                rows.append(i)
        if waves:
            got = self.rec.predict_waveforms(waves, names, self.batch)
            preds.update(zip(rows, got, strict=True))
        return prediction_columns([preds[i] for i in range(len(files))], self.rec.labels)

    def _long(self, path: str):
        if not is_url(path):
            return self.rec.predict_long(path, batch_size=self.batch)
        with tempfile.NamedTemporaryFile(suffix=Path(path).suffix) as tmp:
            import fsspec

            with fsspec.open(path, "rb") as f:
                tmp.write(f.read())
            tmp.flush()
            pred = self.rec.predict_long(tmp.name, batch_size=self.batch)
        pred.file = path
        return pred


def prediction_columns(preds: Sequence, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Predictions as columns: file, label, one ``p_<class>`` per class, arousal, valence
    (NaN without the dimensions head), basis and error (empty when there is none)."""
    out: dict[str, np.ndarray] = {
        "file": np.array([p.file for p in preds], dtype=object),
        "label": np.array([p.label or "" for p in preds], dtype=object),
    }
    for c in labels:
        out[f"p_{c}"] = np.array([p.probabilities.get(c, np.nan) for p in preds], np.float64)
    for d in ("arousal", "valence"):
        out[d] = np.array([np.nan if getattr(p, d) is None else getattr(p, d) for p in preds])
    out["basis"] = np.array([p.basis if p.ok else "" for p in preds], dtype=object)
    out["error"] = np.array([p.error or "" for p in preds], dtype=object)
    return out


def _jsonl_lines(cols: dict, labels: Sequence[str]) -> tuple[str, list[tuple[str, str]]]:
    """The JSONL lines of a batch of prediction columns (those of ``score_files``), and its
    failures."""
    lines, failed = [], []
    for i, f in enumerate(cols["file"]):
        error = str(cols["error"][i]) or None
        probs = {} if error else {c: float(cols[f"p_{c}"][i]) for c in labels}
        row = {
            "file": str(f),
            "label": str(cols["label"][i]) or None,
            "probabilities": probs,
            "error": error,
            "basis": str(cols["basis"][i]) if not error else "whole clip",
        }
        for d in ("arousal", "valence"):
            v = float(cols[d][i])
            row[d] = None if np.isnan(v) else v
        lines.append(json.dumps(row) + "\n")
        if error:
            failed.append((str(f), error))
    return "".join(lines), failed


def parquet_done(folder: Path) -> tuple[set[str], int]:
    """The files already in a Parquet output folder, and the next shard number."""
    import pyarrow.parquet as pq

    done: set[str] = set()
    shards = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    for shard in shards:
        done.update(str(f) for f in pq.read_table(shard, columns=["file"]).column("file"))
    return done, (int(shards[-1].stem.split("-")[1]) + 1 if shards else 0)


def _write_shard(folder: Path, index: int, cols: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: list(v) if v.dtype == object else v for k, v in cols.items()})
    tmp = folder / f".{SHARD.format(index)}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, folder / SHARD.format(index))


def _pipeline(ray, todo, rec, model_dir, labels, backend, batch_size: int, actors):
    """The Ray Data pipeline: the files, decoded in tasks, predicted by the actor pool."""
    from emovox.inference.recognizer import LONG_RECORDING_SECONDS

    cpus = int(ray.cluster_resources().get("CPU", 1))
    blocks = min(len(todo), 4 * cpus)
    ds = ray.data.from_items([{"file": f} for f in todo], override_num_blocks=blocks)
    decode = {"sr": rec.sample_rate, "long_seconds": LONG_RECORDING_SECONDS}
    ds = ds.map(_decode, fn_kwargs=decode, num_cpus=1)
    return ds.map_batches(
        _Predictor,
        fn_constructor_kwargs={
            "model_dir": str(Path(model_dir).resolve()),
            "labels": list(labels) if labels else None,
            "backend": backend,
            "batch": batch_size,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors or max(1, cpus // 2)),
        num_cpus=1,
    )


def _write(ds, out: Path, fmt, resume, shard, labels, batch_size, summary, total) -> None:
    """Write the pipeline's batches as they come: JSONL lines (flushed), or Parquet shards;
    ``total``: the files to expect, for the progress bar (``None``: no bar)."""
    from emovox.progress import progress_bar

    with contextlib.ExitStack() as stack:
        stream = None
        if fmt == "jsonl":
            out.parent.mkdir(parents=True, exist_ok=True)
            mode = "a" if resume and out.is_file() else "w"
            stream = stack.enter_context(open(out, mode, encoding="utf-8"))
        bar = stack.enter_context(
            progress_bar(total or 0, "scoring on ray", enabled=total is not None)
        )
        for cols in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
            text, failed = _jsonl_lines(cols, labels)
            if stream is not None:
                stream.write(text)
                stream.flush()
            else:
                _write_shard(out, shard, cols)
                shard += 1
            summary.failed += failed
            summary.written += len(cols["file"])
            bar.advance(len(cols["file"]))


def _quiet(ray) -> None:
    """Ray Data's own progress lines and logs off: emovox shows one progress bar."""
    import logging

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "enable_operator_progress_bars"):
        ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.WARNING)


# -- the driver --------------------------------------------------------------------------------


def score_with_ray(
    model_dir: str | os.PathLike,
    files: Sequence[str],
    output: str | os.PathLike,
    *,
    fmt: str | None = None,
    resume: bool = False,
    address: str | None = None,
    actors: int | None = None,
    batch_size: int = 16,
    labels: Sequence[str] | None = None,
    backend: str = "torch",
    progress: bool = True,
    num_cpus: int | None = None,
) -> ScoreSummary:
    """Predict ``files`` on Ray into ``output`` (a JSONL file, or a folder of Parquet shards).

    Args:
        model_dir: the bundle folder (every actor loads it; on a cluster it must be readable
            from every node).
        files: local paths or URLs (:func:`expand_sources`).
        output: ``*.jsonl`` or a ``*.parquet`` folder (or name the format with ``fmt``).
        resume: skip the files already in ``output``.
        address: a running Ray cluster to join (``ray start --head`` prints it); without it a
            local Ray is started (and stopped at the end).
        actors: inference actors (default: half the cluster's CPUs, at least one).
        batch_size: files per batch of an actor.
        labels, backend: as :meth:`~emovox.inference.recognizer.Recognizer.load`.
        progress: show a progress bar.
        num_cpus: CPUs of the local Ray (default: all).

    Returns:
        A :class:`~emovox.inference.batch.ScoreSummary` (failures with their reasons).

    Raises:
        RayUnavailable: Ray is not installed.
        BundleError: the model folder does not load (checked before Ray starts).
    """
    from emovox.inference.recognizer import Recognizer

    ray = _ray()
    rec = Recognizer.load(model_dir, labels=labels, backend=backend)  # fail early, here
    out, fmt = Path(output), engine_format(output, fmt)
    if fmt == PARQUET:
        done, shard = parquet_done(out) if resume else (set(), 0)
    else:
        done, shard = (done_files(out, "jsonl", rec.labels) if resume else set()), 0
    todo = [f for f in dict.fromkeys(str(f) for f in files) if f not in done]
    summary = ScoreSummary(out, skipped=len(files) - len(todo))
    _quiet(ray)
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            logging_level="ERROR",
        )
    try:
        if todo:
            ds = _pipeline(ray, todo, rec, model_dir, labels, backend, batch_size, actors)
            total = len(todo) if progress else None
            _write(ds, out, fmt, resume, shard, rec.labels, batch_size, summary, total)
    finally:
        if started:
            ray.shutdown()
    return summary
