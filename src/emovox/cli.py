"""The ``emovox`` command: a thin shell over the Python API."""

from __future__ import annotations

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


def _load_manifest(corpus: str, data: str):
    from emovox.corpora import scan_corpus
    from emovox.manifest import Manifest

    if corpus == "manifest":
        return Manifest.load(data)
    try:
        return scan_corpus(corpus, data)
    except (FileNotFoundError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc


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
        required=True,
        type=click.Path(exists=True),
        help="Corpus folder (or CSV/manifest file).",
    )(fn)
    fn = click.option(
        "--corpus",
        default="ravdess",
        show_default=True,
        help="Corpus recipe: ravdess, folder, csv, or manifest (a saved manifest).",
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
        click.option("--seed", type=int, default=0, show_default=True),
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
        config = TrainConfig.for_model(
            cls,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            patience=patience,
            seed=seed,
            **_parse_kv(train_params),
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
@click.argument("path", type=click.Path(exists=True))
@click.option("--corpus", default="ravdess", show_default=True)
@click.option("--save", type=click.Path(), help="Also save the manifest (.csv or .jsonl).")
@click.option("--no-duration", is_flag=True, help="Skip reading headers for the total duration.")
def data_summary(path: str, corpus: str, save: str | None, no_duration: bool) -> None:
    """Utterances per label, speaker and gender, and the total duration."""
    from emovox.summary import print_summary

    manifest = _load_manifest(corpus, path)
    if save:
        manifest.save(save)
    print_summary(manifest, durations=not no_duration)


# -- train -------------------------------------------------------------------------------------
@main.command()
@corpus_options
@training_options
@click.option("--out", required=True, type=click.Path(), help="Model folder to write.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
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
) -> None:
    """Train a model; validation speakers are held out of the training speakers."""
    from emovox.pipeline import train as train_model
    from emovox.training import TrainingInterrupted

    manifest = _load_manifest(corpus, data)
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
    help="emobox, loso, speakers-kfold[:K], or random[:K] (speakers leak!).",
)
@click.option("--k", type=int, help="Folds for speakers-kfold / random.")
@click.option("--folds", help="Run only these folds, e.g. 1,2.")
@click.option("--out", required=True, type=click.Path(), help="Results folder.")
@click.option("--resume", is_flag=True, help="Reuse folds already finished in --out.")
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
) -> None:
    """Cross-validated, speaker-independent evaluation; writes metrics.json and a report."""
    from emovox.evaluation import evaluate as run_evaluation

    if ":" in protocol:
        protocol, k_text = protocol.split(":", 1)
        k = int(k_text)
    manifest = _load_manifest(corpus, data)
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
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(
        f"{m['model']} on {m['protocol']}: UA {m['ua']:.2f} ± {m['ua_std']:.2f}  "
        f"WA {m['wa']:.2f}  macro-F1 {m['macro_f1']:.2f}  -> {out}/metrics.json"
    )


# -- predict -----------------------------------------------------------------------------------
@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "model_dir", required=True, type=click.Path(), help="Model folder.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--labels", help="Restrict to these classes, e.g. angry,happy,neutral,sad.")
def predict(inputs, model_dir, fmt, labels) -> None:
    """Predict the emotion of files or folders; a bad file is reported, the rest go on."""
    from emovox.batch import expand_inputs, render_predictions
    from emovox.bundle import BundleError
    from emovox.recognizer import Recognizer

    try:
        rec = Recognizer.load(model_dir, labels=labels.split(",") if labels else None)
    except (BundleError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    files, missing = expand_inputs(inputs)
    preds = rec.predict_batch(files) if files else []
    from emovox.recognizer import Prediction

    preds += [Prediction(m, None, {}, "no such file or folder") for m in missing]
    render_predictions(preds, rec.labels, fmt)
    failed = sum(not p.ok for p in preds)
    if failed:
        click.echo(f"{failed} of {len(preds)} input(s) could not be read", err=True)
    if failed == len(preds):
        sys.exit(1)


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


if __name__ == "__main__":
    main()
