"""The ``emovox`` command: a thin shell over the Python API."""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path

import click

from emovox import __version__


def _parse_kv(items: tuple[str, ...]) -> dict:
    """``("n_mels=80", "channels=[8,16]")`` -> ``{"n_mels": 80, "channels": [8, 16]}``."""
    out = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _check_conditions(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    """Canonical test conditions of ``--condition``; a malformed one is a usage error."""
    from emovox.augment import parse_condition

    try:
        return tuple(parse_condition(v).name for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def _load_manifest(corpus: str, data: str | None):
    from emovox.corpora import scan_corpus
    from emovox.manifest import Manifest

    if data is None:
        raise click.UsageError("give the corpus with --data PATH (and --corpus NAME)")
    if corpus == "manifest":
        return Manifest.load(data)
    try:
        return scan_corpus(corpus, data)
    except (FileNotFoundError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc


def _parse_spec(spec: str) -> tuple[str, str]:
    """``"ravdess:~/data/ravdess"`` -> ``("ravdess", "~/data/ravdess")`` (corpus name checked)."""
    from emovox.corpora import CORPORA

    name, sep, path = spec.partition(":")
    name = name.strip().lower().replace("-", "")
    known = [*sorted(CORPORA), "manifest"]
    if not sep or not path or name not in known:
        raise click.UsageError(f"{spec!r} is not CORPUS:PATH with CORPUS one of {', '.join(known)}")
    if not Path(path).expanduser().exists():
        raise click.UsageError(f"{spec!r}: no such file or folder {path}")
    return name, str(Path(path).expanduser())


def _load_specs(specs: tuple[str, ...] | list[str]):
    """The union of the manifests of several ``CORPUS:PATH`` specs.

    Speaker ids of the corpus modules are unique across corpora; a speaker id that two specs
    share anyway (two ``folder`` corpora, say) is prefixed with its spec's corpus name and number
    so that speakers never merge across corpora.
    """
    from dataclasses import replace

    from emovox.manifest import Manifest

    parts = [_load_manifest(*_parse_spec(spec)) for spec in specs]
    owner: dict[str, int] = {}
    for i, m in enumerate(parts):
        for spk in m.speakers:
            owner.setdefault(spk, i)
    shared = {s for i, m in enumerate(parts) for s in m.speakers if owner[s] != i}
    combined = Manifest()
    for i, m in enumerate(parts):
        tag = f"{_parse_spec(specs[i])[0]}{i + 1}"
        combined = combined + m.map(
            lambda u, t=tag: replace(u, speaker=f"{t}:{u.speaker}") if u.speaker in shared else u
        )
    return combined


def _echo_dropped(metrics: dict) -> None:
    for corpus, n in metrics["dropped_utterances"].items():
        if n:
            click.echo(f"{corpus}: dropped {n} utterance(s) outside the labels", err=True)


def _cache(cache_dir: str | None, no_cache: bool):
    from emovox.features import FeatureCache
    from emovox.features.cache import DEFAULT_CACHE_DIR

    if no_cache:
        return None
    return FeatureCache(cache_dir or DEFAULT_CACHE_DIR / "features")


def corpus_options(fn):
    fn = click.option(
        "--data",
        "data",
        type=click.Path(exists=True),
        help="Corpus folder (or CSV/manifest file).",
    )(fn)
    fn = click.option(
        "--corpus",
        default="ravdess",
        show_default=True,
        help="Corpus recipe: ravdess, emodb, tess, savee, cremad, iemocap, urdu, folder, csv, "
        "or manifest (a saved manifest).",
    )(fn)
    return fn


def training_options(fn):
    opts = [
        click.option(
            "--labels",
            default="emotion",
            show_default=True,
            help="emotion, gender_emotion, all, or a list like angry,happy,neutral,sad "
            "(src=dst maps labels).",
        ),
        click.option(
            "--model", "model_name", default="cnn", show_default=True, help="Registered model name."
        ),
        click.option("--epochs", type=int, help="Maximum epochs (model default otherwise)."),
        click.option("--batch-size", type=int),
        click.option("--lr", type=float),
        click.option(
            "--patience", type=int, help="Epochs without validation gain before stopping."
        ),
        click.option("--seed", type=int, help="Random seed (default 0)."),
        click.option(
            "--param",
            "params",
            multiple=True,
            metavar="KEY=VALUE",
            help="Model hyper-parameter (repeatable), e.g. --param dropout=0.4.",
        ),
        click.option(
            "--feature-param",
            "feature_params",
            multiple=True,
            metavar="KEY=VALUE",
            help="Feature parameter (repeatable), e.g. --feature-param n_mels=80.",
        ),
        click.option(
            "--train-param",
            "train_params",
            multiple=True,
            metavar="KEY=VALUE",
            help="Any training setting (repeatable), e.g. --train-param mixup=0.4.",
        ),
        click.option("--cache-dir", type=click.Path(), help="Feature cache folder."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the feature cache."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _training_setup(
    model_name,
    labels,
    manifest,
    epochs,
    batch_size,
    lr,
    patience,
    seed,
    params,
    feature_params,
    train_params,
):
    from emovox.labels import resolve_labels
    from emovox.models import model_class
    from emovox.pipeline import default_feature
    from emovox.training import TrainConfig

    try:
        scheme = resolve_labels(labels, manifest.labels)
        cls = model_class(model_name)
        feature = default_feature(model_name, **_parse_kv(feature_params))
        options = {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "patience": patience,
            "seed": seed,
        }
        extra = _parse_kv(train_params)
        clash = sorted(k for k in extra if options.get(k) is not None)
        if clash:
            raise ValueError(
                f"{', '.join(clash)} given both as an option and as --train-param; give it once"
            )
        config = TrainConfig.for_model(
            cls, **{k: v for k, v in options.items() if v is not None}, **extra
        )
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from exc
    return scheme, feature, config, _parse_kv(params)


class _Main(click.Group):
    """The ``emovox`` group; remembers the arguments it was given (not only from ``sys.argv``)."""

    argv: list[str] | None = None

    def main(self, args=None, *rest, **kwargs):
        self.argv = list(sys.argv[1:] if args is None else args)
        return super().main(args, *rest, **kwargs)


def _command_line() -> list[str]:
    """The command line to record in ``config.json`` / ``metrics.json``."""
    root = click.get_current_context().find_root().command
    argv = getattr(root, "argv", None)
    return ["emovox", *(sys.argv[1:] if argv is None else argv)]


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emovox")
def main() -> None:
    """emovox: speech emotion recognition — train, evaluate honestly, predict."""
    warnings.filterwarnings("default", module="emovox")


# -- data --------------------------------------------------------------------------------------
@main.group()
def data() -> None:
    """Inspect corpora."""


@data.command("summary")
@click.argument("paths", nargs=-1, required=True, metavar="PATH | CORPUS:PATH ...")
@click.option("--corpus", default="ravdess", show_default=True, help="Recipe of bare PATHs.")
@click.option("--save", type=click.Path(), help="Also save the manifest (.csv or .jsonl).")
@click.option("--no-duration", is_flag=True, help="Skip reading headers for the total duration.")
def data_summary(paths: tuple[str, ...], corpus: str, save: str | None, no_duration: bool) -> None:
    """Utterances per label, speaker, gender and corpus, and the total duration.

    Several corpora at once: ``emovox data summary ravdess:DIR emodb:DIR``.
    """
    from emovox.summary import print_summary

    specs = [p if ":" in p and not Path(p).exists() else f"{corpus}:{p}" for p in paths]
    for spec in specs:
        path = spec.partition(":")[2]
        if not Path(path).expanduser().exists():
            raise click.UsageError(f"no such file or folder: {path}")
    manifest = _load_specs(specs)
    if save:
        manifest.save(save)
    print_summary(manifest, durations=not no_duration)


# -- train -------------------------------------------------------------------------------------
@main.command()
@corpus_options
@training_options
@click.option("--out", required=True, type=click.Path(), help="Model folder to write.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option(
    "--train",
    "train_specs",
    multiple=True,
    metavar="CORPUS:PATH",
    help="Training corpus (repeatable), instead of --data: trains on the union of the corpora.",
)
def train(
    corpus,
    data,
    labels,
    model_name,
    epochs,
    batch_size,
    lr,
    patience,
    seed,
    params,
    feature_params,
    train_params,
    cache_dir,
    no_cache,
    quiet,
    out,
    resume,
    train_specs,
) -> None:
    """Train a model; validation speakers are held out of the training speakers."""
    from emovox.pipeline import train as train_model
    from emovox.training import TrainingInterrupted

    if data is not None and train_specs:
        raise click.UsageError("use either --data or --train, not both")
    manifest = _load_specs(train_specs) if train_specs else _load_manifest(corpus, data)
    scheme, feature, config, model_params = _training_setup(
        model_name,
        labels,
        manifest,
        epochs,
        batch_size,
        lr,
        patience,
        seed,
        params,
        feature_params,
        train_params,
    )
    try:
        path = train_model(
            manifest,
            scheme,
            model_name,
            out,
            feature=feature,
            config=config,
            model_params=model_params,
            cache=_cache(cache_dir, no_cache),
            resume=resume,
            progress=not quiet,
            metadata={"command": _command_line()},
        )
    except TrainingInterrupted as exc:
        click.echo(
            f"\ninterrupted in epoch {exc.epoch}: the best model so far is saved in {out}; "
            f"continue with the same command and --resume",
            err=True,
        )
        sys.exit(130)
    cfg = json.loads((Path(path) / "config.json").read_text())
    res = cfg["training_result"]
    val = f", validation UA {res['best_val_ua']:.1f} %" if res["best_val_ua"] is not None else ""
    click.echo(f"saved {path} (best epoch {res['best_epoch']}{val})")


# -- evaluate ----------------------------------------------------------------------------------
@main.command()
@corpus_options
@training_options
@click.option(
    "--protocol",
    default="emobox",
    show_default=True,
    help="emobox, loso, sessions (IEMOCAP), speakers-kfold[:K], or random[:K] (speakers leak!).",
)
@click.option("--k", type=int, help="Folds for speakers-kfold / random.")
@click.option("--folds", help="Run only these folds, e.g. 1,2.")
@click.option("--out", required=True, type=click.Path(), help="Results folder.")
@click.option("--resume", is_flag=True, help="Reuse folds already finished in --out.")
@click.option(
    "--train",
    "train_specs",
    multiple=True,
    metavar="CORPUS:PATH",
    help="Training corpus (repeatable), instead of --data: with --test, a cross-corpus run; "
    "alone, --protocol folds over the union of the corpora.",
)
@click.option(
    "--test",
    "test_specs",
    multiple=True,
    metavar="CORPUS:PATH",
    help="Test corpus (repeatable) of a cross-corpus run; needs --train.",
)
@click.option(
    "--condition",
    "conditions",
    multiple=True,
    metavar="KIND:VALUE",
    callback=_check_conditions,
    help="Also score every fold's test files under a test condition (repeatable): white:SNR, "
    "speech:SNR (speech-shaped noise), gain:DB (clipped), pitch:SEMITONES, reverb:RT60, "
    "e.g. --condition white:20 --condition gain:-20.",
)
def evaluate(
    corpus,
    data,
    labels,
    model_name,
    epochs,
    batch_size,
    lr,
    patience,
    seed,
    params,
    feature_params,
    train_params,
    cache_dir,
    no_cache,
    quiet,
    protocol,
    k,
    folds,
    out,
    resume,
    train_specs,
    test_specs,
    conditions,
) -> None:
    """Cross-validated, speaker-independent evaluation; writes metrics.json and a report.

    \b
    Three forms:
      --corpus NAME --data PATH --protocol P            folds over one corpus
      --train C:PATH [--train C:PATH ...] --protocol P  folds over the union of corpora
      --train C:PATH ... --test C:PATH ...              cross-corpus: train on one, test on other
    """
    from emovox.evaluation import evaluate as run_evaluation

    if data is not None and (train_specs or test_specs):
        raise click.UsageError("use either --data or --train/--test, not both")
    if test_specs and not train_specs:
        raise click.UsageError("--test needs at least one --train CORPUS:PATH")
    if data is None and not train_specs:
        raise click.UsageError(
            "give the data: --data PATH [--corpus NAME], or --train CORPUS:PATH "
            "[--train ...] [--test CORPUS:PATH ...]"
        )
    if test_specs:
        ctx = click.get_current_context()
        default_labels = ctx.get_parameter_source("labels") == click.core.ParameterSource.DEFAULT
        for name in ("protocol", "k", "folds", "resume"):
            if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
                raise click.UsageError(f"--{name} does not apply to a cross-corpus run (--test)")
        if conditions:
            raise click.UsageError("--condition does not apply to a cross-corpus run (--test)")
        _cross_corpus(
            train_specs,
            test_specs,
            "common" if default_labels else labels,
            model_name,
            (epochs, batch_size, lr, patience, seed, params, feature_params, train_params),
            _cache(cache_dir, no_cache),
            quiet,
            out,
        )
        return
    if ":" in protocol:
        protocol, k_text = protocol.split(":", 1)
        k = int(k_text)
    manifest = _load_specs(train_specs) if train_specs else _load_manifest(corpus, data)
    scheme, feature, config, model_params = _training_setup(
        model_name,
        labels,
        manifest,
        epochs,
        batch_size,
        lr,
        patience,
        seed,
        params,
        feature_params,
        train_params,
    )
    fold_list = [int(f) for f in folds.split(",")] if folds else None
    try:
        m = run_evaluation(
            manifest,
            scheme,
            model_name,
            out,
            protocol=protocol,
            k=k,
            folds=fold_list,
            feature=feature,
            config=config,
            model_params=model_params,
            cache=_cache(cache_dir, no_cache),
            resume=resume,
            progress=not quiet,
            command=_command_line(),
            conditions=conditions,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    _echo_dropped(m)
    click.echo(
        f"{m['model']} on {m['protocol']}: UA {m['ua']:.2f} ± {m['ua_std']:.2f}  "
        f"WA {m['wa']:.2f}  macro-F1 {m['macro_f1']:.2f}  -> {out}/metrics.json"
    )
    for name, c in m.get("conditions", {}).items():
        if name != "clean":
            click.echo(
                f"  {name}: UA {c['ua']:.2f} ({c['ua_delta']:+.2f} vs clean), "
                f"{c['clipped_files']} file(s) clipped"
            )


def _cross_corpus(train_specs, test_specs, labels, model_name, settings, cache, quiet, out) -> None:
    """``emovox evaluate --train ... --test ...``: train on the union, test on the others."""
    from emovox.evaluation import evaluate_cross_corpus
    from emovox.taxonomy import common_labels

    train = _load_specs(train_specs)
    test = _load_specs(test_specs)
    if labels == "common":
        per_corpus = [
            train.filter(lambda u, c=c: u.corpus == c) for c in sorted({u.corpus for u in train})
        ] + [test.filter(lambda u, c=c: u.corpus == c) for c in sorted({u.corpus for u in test})]
        common = common_labels(per_corpus)
        if len(common) < 2:
            raise click.UsageError(
                f"the corpora share fewer than two labels ({common}); map labels with --labels, "
                f"e.g. --labels calm=neutral,angry,happy,sad"
            )
        labels = ",".join(common)
        click.echo(f"labels common to all corpora: {labels}", err=True)
    scheme, feature, config, model_params = _training_setup(
        model_name, labels, train + test, *settings
    )
    try:
        m = evaluate_cross_corpus(
            train,
            test,
            scheme,
            model_name,
            out,
            feature=feature,
            config=config,
            model_params=model_params,
            cache=cache,
            progress=not quiet,
            command=_command_line(),
            sources={"train": list(train_specs), "test": list(test_specs)},
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    _echo_dropped(m)
    arrow = f"{'+'.join(m['train_corpora'])} -> {'+'.join(m['test_corpora'])}"
    click.echo(
        f"{m['model']} cross-corpus {arrow}: UA {m['ua']:.2f}  WA {m['wa']:.2f}  "
        f"macro-F1 {m['macro_f1']:.2f}  -> {out}/metrics.json"
    )
    if len(m["per_test_corpus"]) > 1:
        for c, v in m["per_test_corpus"].items():
            click.echo(f"  {c}: UA {v['ua']:.2f}  WA {v['wa']:.2f}  macro-F1 {v['macro_f1']:.2f}")


# -- predict -----------------------------------------------------------------------------------
@main.command()
@click.argument("inputs", nargs=-1)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(),
    help="Model folder (default: the model bundled with emovox; see `emovox.pretrained`).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "jsonl"]),
    help="Output format (default: table; with --output, from its extension).",
)
@click.option("--labels", help="Restrict to these classes, e.g. angry,happy,neutral,sad.")
@click.option(
    "--backend",
    type=click.Choice(["torch", "onnx"]),
    default="torch",
    show_default=True,
    help="Run the model with torch or onnxruntime (needs MODEL/model.onnx or --onnx).",
)
@click.option("--onnx", "onnx_file", type=click.Path(), help="The ONNX file of --backend onnx.")
@click.option("--manifest", "manifest_file", type=click.Path(), help="Score a manifest's files.")
@click.option(
    "--output", type=click.Path(), help="Write one line per file here (jsonl or csv) as it goes."
)
@click.option("--resume", is_flag=True, help="With --output: skip files already in it.")
@click.option("--workers", default=2, show_default=True, help="Decoding threads (--output).")
@click.option("--batch-size", default=16, show_default=True, help="Files predicted together.")
@click.option("--segments", is_flag=True, help="Long recordings: one prediction per segment.")
@click.option(
    "--vad",
    type=click.Choice(["auto", "silero", "energy"]),
    default="auto",
    show_default=True,
    help="Voice activity detector of --segments (auto: silero when installed).",
)
@click.option("--max-segment", default=10.0, show_default=True, help="Longest segment (s).")
@click.option("--plot", "plot_file", type=click.Path(), help="With --segments: timeline PNG.")
@click.option(
    "--one-speaker",
    is_flag=True,
    help="All inputs are one speaker: a model trained with speaker_norm (e.g. cnn-egemaps) "
    "normalises them with that speaker's statistics over these files.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict(
    inputs,
    model_dir,
    fmt,
    labels,
    backend,
    onnx_file,
    manifest_file,
    output,
    resume,
    workers,
    batch_size,
    segments,
    vad,
    max_segment,
    plot_file,
    one_speaker,
    quiet,
) -> None:
    """Predict the emotion of files, folders or globs; a bad file is reported, the rest go on.

    Without --model, the default model bundled with emovox is used (trained on the RAVDESS
    speech, 8 emotions; licence CC BY-NC-SA 4.0; see its MODEL_CARD.md).

    \b
    emovox predict clip.wav
    emovox predict clip.wav --segments --plot timeline.png
    emovox predict --model M a.wav recordings/ "more/**/*.flac"
    emovox predict --model M --manifest manifest.csv --output preds.jsonl --resume
    emovox predict --model M talk.wav --segments --vad auto --plot timeline.png
    emovox predict --model M --one-speaker speaker_07/   # a speaker_norm model, one speaker
    """
    from emovox.batch import expand_inputs, manifest_inputs, render_predictions
    from emovox.bundle import BundleError
    from emovox.recognizer import Prediction, Recognizer

    if not inputs and not manifest_file:
        raise click.UsageError("give audio files, folders or globs, or --manifest FILE")
    if onnx_file:
        backend = "onnx"
    if resume and not output:
        raise click.UsageError("--resume needs --output FILE")
    if plot_file and not segments:
        raise click.UsageError("--plot draws the timeline of --segments")
    if one_speaker and (output or segments):
        raise click.UsageError(
            "--one-speaker applies to plain predictions (no --output, --segments)"
        )
    if output and not segments and fmt in ("table", "json"):
        raise click.UsageError("--output writes jsonl or csv (one line per file as it goes)")
    from emovox.onnx_backend import OnnxUnavailable

    try:
        rec = Recognizer.load(
            model_dir or None,
            labels=labels.split(",") if labels else None,
            backend=backend,
            onnx_path=onnx_file,
        )
    except (BundleError, ValueError, OnnxUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    files, missing = expand_inputs(inputs)
    if manifest_file:
        try:
            files += manifest_inputs(manifest_file)
        except (FileNotFoundError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    if segments:
        _predict_segments(rec, files, missing, fmt or "table", output, vad, max_segment, plot_file)
        return
    if output:
        from emovox.batch import score_files

        try:
            summary = score_files(
                rec,
                files + missing,
                output,
                fmt=fmt,
                resume=resume,
                workers=workers,
                batch_size=batch_size,
                progress=not quiet,
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
        return
    stats = "batch" if one_speaker else None
    preds = rec.predict_batch(files, batch_size=batch_size, speaker_stats=stats) if files else []
    preds += [Prediction(m, None, {}, "no such file or folder") for m in missing]
    render_predictions(preds, rec.labels, fmt or "table")
    failed = sum(not p.ok for p in preds)
    if failed:
        click.echo(f"{failed} of {len(preds)} input(s) could not be read", err=True)
    if failed == len(preds):
        sys.exit(1)


def _predict_segments(rec, files, missing, fmt, output, vad, max_segment, plot_file) -> None:
    """``predict --segments``: per-segment predictions of each (long) file."""
    from emovox.audio import AudioError
    from emovox.batch import output_format, render_segments
    from emovox.longaudio import LongAudioConfig

    try:
        cfg = LongAudioConfig(max_segment=max_segment)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    results: dict[str, list[dict]] = {}
    errors: dict[str, str] = {m: "no such file or folder" for m in missing}
    for path in files:
        try:
            results[path] = rec.predict_segments(path, vad=vad, config=cfg)
        except AudioError as exc:
            errors[path] = exc.reason
        except RuntimeError as exc:  # silero asked for but not installed
            raise click.ClickException(str(exc)) from exc
    if output:
        from emovox._fs import atomic_write_text

        buf = io.StringIO()
        out_fmt = fmt if fmt != "table" else output_format(output)
        render_segments(results, errors, rec.labels, out_fmt, buf)
        atomic_write_text(output, buf.getvalue())
        click.echo(f"wrote {output}", err=True)
    else:
        render_segments(results, errors, rec.labels, fmt)
    if plot_file:
        from emovox.plots import plot_timeline

        drawn = [(p, segs) for p, segs in results.items() if segs]
        if len(drawn) == 1:
            plot_timeline(drawn[0][1], rec.labels, plot_file, title=Path(drawn[0][0]).name)
            click.echo(f"wrote {plot_file}", err=True)
        elif drawn:
            for p, segs in drawn:
                target = Path(plot_file).with_name(f"{Path(plot_file).stem}_{Path(p).stem}.png")
                plot_timeline(segs, rec.labels, target, title=Path(p).name)
                click.echo(f"wrote {target}", err=True)
        else:
            click.echo("no speech segments: no timeline drawn", err=True)
    for path, reason in errors.items():
        click.echo(f"{path}: {reason}", err=True)
    if errors and not results:
        sys.exit(1)


# -- export ------------------------------------------------------------------------------------
@main.command()
@click.argument("model_dir", type=click.Path(), required=False)
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option(
    "--out",
    type=click.Path(),
    help="File to write (default: MODEL_DIR/model.onnx; required without MODEL_DIR).",
)
@click.option("--opset", default=18, show_default=True, help="ONNX opset.")
def export(model_dir, fmt, out, opset) -> None:
    """Export a model folder to ONNX (features in, logits and probabilities out).

    Without MODEL_DIR the default model bundled with emovox is exported (give --out).
    """
    from emovox.bundle import BundleError
    from emovox.onnx_backend import OnnxUnavailable, export_onnx

    try:
        if not model_dir:
            from emovox.pretrained import default_model_path

            if not out:
                raise click.UsageError(
                    "exporting the bundled default model (no MODEL_DIR) needs --out FILE"
                )
            model_dir = default_model_path()
        path = export_onnx(model_dir, out, opset=opset)
    except (BundleError, OnnxUnavailable, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path}")


# -- plot --------------------------------------------------------------------------------------
@main.command()
@click.argument("kind", type=click.Choice(["waveform", "spectrogram", "mfcc"]))
@click.argument("file", type=click.Path())
@click.option("-o", "--out", required=True, type=click.Path(), help="PNG to write.")
def plot(kind: str, file: str, out: str) -> None:
    """A first look at a recording: waveform, log-mel spectrogram or MFCC."""
    from emovox import plots
    from emovox.audio import AudioError, load_audio

    try:
        audio = load_audio(file, sr=None)
        from emovox.audio import audio_info

        sr = audio_info(file).samplerate
    except AudioError as exc:
        raise click.ClickException(str(exc)) from exc
    fn = {
        "waveform": plots.plot_waveform,
        "spectrogram": plots.plot_spectrogram,
        "mfcc": plots.plot_mfcc,
    }[kind]
    path = fn(audio, sr, out, title=Path(file).name)
    click.echo(f"wrote {path}")


# -- demo --------------------------------------------------------------------------------------
@main.command()
@click.option("--out", default="demo_out", show_default=True, type=click.Path())
@click.option("--quiet", is_flag=True)
def demo(out: str, quiet: bool) -> None:
    """Make a small synthetic corpus, train a model on it, evaluate it and predict with it."""
    from emovox.demo import run_demo

    run_demo(Path(out), progress=not quiet)


@main.command("demo-clip")
@click.argument("out", type=click.Path(dir_okay=False), default="clip.wav", required=False)
@click.option(
    "--engine",
    type=click.Choice(["auto", "espeak", "numpy"]),
    default="auto",
    show_default=True,
    help="Voice: espeak-ng, a numpy speech-like signal, or auto (espeak-ng when installed).",
)
@click.option("--pause", default=1.0, show_default=True, help="Seconds between sentences.")
def demo_clip(out: str, engine: str, pause: float) -> None:
    """Write a ~20 s WAV of five synthetic sentences with pauses, to try `emovox predict` on.

    \b
    emovox demo-clip clip.wav
    emovox predict clip.wav
    emovox predict clip.wav --segments --plot timeline.png
    """
    from emovox.synth import make_demo_clip

    try:
        clip = make_demo_clip(out, engine=engine, pause=pause)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(
        f"wrote {clip.path} ({clip.duration:.1f} s, {len(clip.sentences)} sentences, "
        f"voice: {clip.engine})"
    )


# -- live and serve ----------------------------------------------------------------------------
def _load_recognizer(model_dir: str | None, labels: str | None = None):
    """The model of ``live``/``serve``: ``--model``, else the default model bundled with emovox."""
    from emovox.bundle import BundleError
    from emovox.recognizer import Recognizer

    try:
        return Recognizer.load(model_dir or None, labels=labels.split(",") if labels else None)
    except (BundleError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--model", "model_dir", type=click.Path(), help="Model folder (default: bundled).")
@click.option("--input", "input_file", type=click.Path(), help="Play this file instead of the mic.")
@click.option("--speed", default=1.0, show_default=True, help="Pace of --input (0: no waiting).")
@click.option("--window", type=float, help="Rolling predictions of this many seconds of speech.")
@click.option("--hop", type=float, help="Seconds between rolling predictions (default window/2).")
@click.option("--save", "save_dir", type=click.Path(), help="Keep each utterance as a WAV here.")
@click.option("--device", help="Input device (number or name; default: the system's).")
@click.option("--labels", help="Restrict to these classes, e.g. angry,happy,neutral,sad.")
@click.option("--json", "json_out", type=click.Path(), help="Write the results and latency here.")
def live(model_dir, input_file, speed, window, hop, save_dir, device, labels, json_out) -> None:
    """Listen to the microphone and print the emotion of every utterance as it ends."""
    from emovox.audio import AudioError
    from emovox.live import (
        LATENCY_TARGET_MS,
        LiveDisplay,
        LiveSession,
        MicrophoneSource,
        NoInputDevice,
        check_input_device,
        file_blocks,
        run_live,
    )

    rec = _load_recognizer(model_dir, labels)
    try:
        session = LiveSession(rec, window=window, hop=hop, save_dir=save_dir)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if input_file is None:
        try:
            name = check_input_device(int(device) if device and device.isdigit() else device)
        except NoInputDevice as exc:
            click.echo(f"emovox live: {exc}", err=True)
            sys.exit(2)
        click.echo(f"listening on {name} (Ctrl-C to stop)", err=True)
    display = LiveDisplay(rec.labels)
    try:
        with display:
            if input_file is not None:
                blocks = file_blocks(input_file, rec.sample_rate, speed=speed)
                out = run_live(session, blocks, display)
            else:
                dev = int(device) if device and device.isdigit() else device
                with MicrophoneSource(rec.sample_rate, device=dev) as mic:
                    out = run_live(session, mic, display)
    except AudioError as exc:
        raise click.ClickException(str(exc)) from exc
    except NoInputDevice as exc:
        click.echo(f"emovox live: {exc}", err=True)
        sys.exit(2)
    lat = out["latency"]
    if lat["count"]:
        verdict = "within" if lat["meets_target"] else "OVER"
        click.echo(
            f"{lat['count']} utterance(s); latency from the end of an utterance to its prediction: "
            f"median {lat['median_ms']:.0f} ms, max {lat['max_ms']:.0f} ms "
            f"({verdict} the {LATENCY_TARGET_MS:.0f} ms target)"
        )
    else:
        click.echo("no speech heard")
    if json_out:
        Path(json_out).write_text(json.dumps(out, indent=2) + "\n")


@main.command()
@click.option("--model", "model_dir", type=click.Path(), help="Model folder (default: bundled).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--max-upload-mb", default=25.0, show_default=True, help="Larger uploads get 413.")
@click.option("--max-duration", default=600.0, show_default=True, help="Longer audio gets 413 (s).")
@click.option("--timeout", default=60.0, show_default=True, help="Per-request limit (s), then 504.")
@click.option("--max-concurrency", default=2, show_default=True, help="Predictions at once.")
def serve(model_dir, host, port, max_upload_mb, max_duration, timeout, max_concurrency) -> None:
    """Serve the REST API (/v1/predict, /v1/models, /healthz, /docs) and the web page at /."""
    import uvicorn

    from emovox.server import create_app

    rec = _load_recognizer(model_dir)
    app = create_app(
        recognizer=rec,
        max_upload_mb=max_upload_mb,
        max_duration_s=max_duration,
        timeout_s=timeout,
        max_concurrency=max_concurrency,
    )
    name = model_dir or f"the bundled default model ({rec.bundle.path})"
    click.echo(f"emovox: serving {name} on http://{host}:{port}/  (API docs: /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
