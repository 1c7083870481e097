"""What the commands share: option groups, ``KEY=VALUE`` parsing, corpus specs, the recipe.

Command-line text becomes typed values here, once: the recipe (:class:`~emovox.train.Recipe`)
that ``train`` and ``evaluate`` pass whole to the Python API.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import click


def parse_assignments(items: tuple[str, ...] | list[str]) -> dict:
    """``("n_mels=80", "channels=[8,16]")`` -> ``{"n_mels": 80, "channels": [8, 16]}`` (JSON
    values where they parse as JSON, strings otherwise).

    Raises:
        click.BadParameter: an item without ``=``.
    """
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


def training_settings(values: dict) -> dict:
    """``--train-param`` values typed as :class:`~emovox.train.TrainConfig` declares them:
    ``true``/``false`` (any case) for switches, comma lists for lists of names."""
    from emovox.train.config import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out = {}
    for key, value in values.items():
        field = fields.get(key)
        default = field.default if field is not None else None
        if isinstance(value, str) and isinstance(default, bool):
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{key} must be true or false, not {value!r}")
            value = value.lower() == "true"
        elif isinstance(value, str) and isinstance(default, tuple):
            value = tuple(p.strip() for p in value.split(",") if p.strip())
        elif isinstance(value, (int, float)) and isinstance(default, tuple):
            value = (value,)
        out[key] = value
    return out


def check_conditions(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    """Canonical test conditions of ``--condition``; a malformed one is a usage error."""
    from emovox.augment import parse_condition

    try:
        return tuple(parse_condition(v).name for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


# -- corpora ---------------------------------------------------------------------------------
def load_manifest(corpus: str, data: str | None):
    """The manifest of ``--corpus NAME --data PATH`` (or a saved manifest)."""
    from emovox.data.corpora import scan_corpus
    from emovox.data.manifest import Manifest

    if data is None:
        raise click.UsageError("give the corpus with --data PATH (and --corpus NAME)")
    if corpus == "manifest":
        return Manifest.load(data)
    try:
        return scan_corpus(corpus, data)
    except (FileNotFoundError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc


def parse_spec(spec: str) -> tuple[str, str]:
    """``"ravdess:~/data/ravdess"`` -> ``("ravdess", "~/data/ravdess")`` (corpus name checked)."""
    from emovox.data.corpora import CORPORA

    name, sep, path = spec.partition(":")
    name = name.strip().lower().replace("-", "")
    known = [*sorted(CORPORA), "manifest"]
    if not sep or not path or name not in known:
        raise click.UsageError(f"{spec!r} is not CORPUS:PATH with CORPUS one of {', '.join(known)}")
    if not Path(path).expanduser().exists():
        raise click.UsageError(f"{spec!r}: no such file or folder {path}")
    return name, str(Path(path).expanduser())


def load_specs(specs: tuple[str, ...] | list[str]):
    """The union of the manifests of several ``CORPUS:PATH`` specs.

    Speaker ids of the corpus modules are unique across corpora; a speaker id that two specs
    share anyway (two ``folder`` corpora, say) is prefixed with its spec's corpus name and number
    so that speakers never merge across corpora.
    """
    from emovox.data.manifest import Manifest

    parts = [load_manifest(*parse_spec(spec)) for spec in specs]
    owner: dict[str, int] = {}
    for i, m in enumerate(parts):
        for spk in m.speakers:
            owner.setdefault(spk, i)
    shared = {s for i, m in enumerate(parts) for s in m.speakers if owner[s] != i}
    combined = Manifest()
    for i, m in enumerate(parts):
        tag = f"{parse_spec(specs[i])[0]}{i + 1}"
        combined = combined + m.map(
            lambda u, t=tag: dataclasses.replace(u, speaker=f"{t}:{u.speaker}")
            if u.speaker in shared
            else u
        )
    return combined


def echo_dropped(metrics) -> None:
    for corpus, n in metrics["dropped_utterances"].items():
        if n:
            click.echo(f"{corpus}: dropped {n} utterance(s) outside the labels", err=True)


def feature_cache(cache_dir: str | None, no_cache: bool):
    """The feature cache of ``--cache-dir`` / ``--no-cache``."""
    from emovox.features import FeatureCache
    from emovox.features.cache import DEFAULT_CACHE_DIR

    if no_cache:
        return None
    check_target(cache_dir, folder=True)
    return FeatureCache(cache_dir or DEFAULT_CACHE_DIR / "features")


# -- option groups ---------------------------------------------------------------------------
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
        help="Corpus recipe: ravdess, emodb, tess, savee, cremad, iemocap, urdu, nemo, ased, "
        "baved, folder, csv, or manifest (a saved manifest).",
    )(fn)
    return fn


TRAINING_OPTIONS = ("epochs", "batch_size", "lr", "patience", "seed")
"""The training settings that have options of their own (the rest: ``--train-param``)."""


def training_options(fn):
    opts = [
        click.option(
            "--labels",
            default="emotion",
            show_default=True,
            help="emotion, gender_emotion, arousal (low/normal/high), arousal2 (low/high), all, "
            "or a list like angry,happy,neutral,sad (src=dst maps labels).",
        ),
        click.option(
            "--arch",
            "--model",
            "model_name",
            default="cnn",
            show_default=True,
            help="The architecture to train, a registered name (--model: the older spelling).",
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


def training_command(out_help: str, resume_help: str, train_help: str):
    """A command that trains: the corpus and training options, ``--out``, ``--resume``,
    ``--overwrite`` and ``--train CORPUS:PATH`` (repeatable)."""

    def wrap(fn):
        fn = click.option(
            "--train", "train_specs", multiple=True, metavar="CORPUS:PATH", help=train_help
        )(fn)
        fn = click.option(
            "--overwrite", is_flag=True, help="Replace the results of an earlier run in --out."
        )(fn)
        fn = click.option("--resume", is_flag=True, help=resume_help)(fn)
        fn = click.option("-o", "--out", required=True, type=click.Path(), help=out_help)(fn)
        return click.command()(corpus_options(training_options(fn)))

    return wrap


def manifest_of(corpus: str, data: str | None, train_specs: tuple[str, ...]):
    """The training data: the union of ``--train`` specs, else ``--corpus NAME --data PATH``."""
    return load_specs(train_specs) if train_specs else load_manifest(corpus, data)


@dataclasses.dataclass
class TrainingSetup:
    """What the training options of a command amount to: the labels, the recipe, the cache."""

    scheme: object
    recipe: object
    cache: object
    progress: bool

    @classmethod
    def from_options(cls, options: dict, manifest, labels: str | None = None) -> TrainingSetup:
        """Build it from the values of :func:`training_options` (a usage error when one is
        wrong); ``labels`` overrides ``--labels``."""
        from emovox.data.labels import resolve_labels
        from emovox.train.recipe import Recipe

        try:
            scheme = resolve_labels(labels or options["labels"], manifest.labels)
            named = {k: options[k] for k in TRAINING_OPTIONS if options.get(k) is not None}
            extra = training_settings(parse_assignments(options["train_params"]))
            clash = sorted(k for k in extra if k in named)
            if clash:
                raise ValueError(
                    f"{', '.join(clash)} given both as an option and as --train-param; give it "
                    f"once"
                )
            recipe = Recipe.for_model(
                options["model_name"],
                params=parse_assignments(options["params"]),
                feature=parse_assignments(options["feature_params"]),
                training={**named, **extra},
            )
        except (ValueError, TypeError) as exc:
            raise click.UsageError(str(exc)) from exc
        cache = feature_cache(options["cache_dir"], options["no_cache"])
        return cls(scheme, recipe, cache, not options["quiet"])


# -- the command line itself -----------------------------------------------------------------
class Main(click.Group):
    """The ``emovox`` group; remembers the arguments it was given (not only from ``sys.argv``)."""

    argv: list[str] | None = None

    def main(self, args=None, *rest, **kwargs):
        self.argv = list(sys.argv[1:] if args is None else args)
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx: click.Context):
        """Run the command; a file that cannot be read or written ends it with one line naming
        the path and the reason, never a traceback."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise click.ClickException(os_error_message(exc)) from exc


def check_target(path: str | os.PathLike | None, *, folder: bool = False) -> None:
    """Fail before any work when ``path`` cannot be written: its nearest existing ancestor is
    not a writable folder, or it is a folder where a file is wanted (or a file where a folder
    is, with ``folder``).

    Raises:
        click.ClickException: naming the path and the problem.
    """
    if path is None:
        return
    target = Path(path)
    if target.exists() and target.is_dir() != folder:
        kind = "a file" if folder else "a folder"
        raise click.ClickException(f"{target}: is {kind}; give a {'folder' if folder else 'file'}")
    parent = target if folder else target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise click.ClickException(f"{target}: cannot be written ({parent} is not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise click.ClickException(f"{target}: cannot be written ({parent} is read-only)")


def os_error_message(exc: OSError) -> str:
    """``PATH: reason`` of an operating-system error (the path it names, when it names one)."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    target = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else str(exc.filename)
    return f"{target}: {reason}"


def command_line() -> list[str]:
    """The command line to record in ``config.json`` / ``metrics.json``."""
    root = click.get_current_context().find_root().command
    argv = getattr(root, "argv", None)
    return ["emovox", *(sys.argv[1:] if argv is None else argv)]


def load_recognizer(
    model_dir: str | None,
    labels: str | None = None,
    declip: str | None = None,
    denoise: str | None = None,
):
    """The model of ``live``/``serve``: ``--model``, else the default model bundled with emovox
    (``declip``, ``denoise``: as ``--declip``, ``--denoise``)."""
    from emovox.inference.bundle import BundleError
    from emovox.inference.recognizer import Recognizer

    try:
        return Recognizer.load(
            model_dir or None,
            labels=labels.split(",") if labels else None,
            declip=declip,
            denoise=denoise,
        )
    except (BundleError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def engine_options(ray_help: str):
    """``--engine local|ray`` (its help: what ray does in this command) and ``--address``."""

    def decorate(fn):
        fn = click.option(
            "--address", help="With --engine ray: the Ray cluster to join (default: local)."
        )(fn)
        return click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help=f"ray: {ray_help} (pip install 'emovox[ray]').",
        )(fn)

    return decorate


DECLIP_METHODS = ("spline", "sparse")
"""``emovox.features.declip.METHODS``, spelt out so that the CLI starts without torch (a test
keeps the two equal)."""

DECLIP_OPTION = click.option(
    "--declip",
    type=click.Choice(DECLIP_METHODS),
    help="Recordings that clip: redraw their clipped runs before the features (sparse: "
    "closer to the true wave, about half a second per badly clipped 3-s clip; spline: fast). "
    "Audio that does not clip is predicted as without it; the same in predict, live and serve.",
)

DENOISE_METHODS = ("wiener",)
"""``emovox.features.denoise.METHODS``, spelt out so that the CLI starts without torch (a test
keeps the two equal)."""

DENOISE_OPTION = click.option(
    "--denoise",
    type=click.Choice(DENOISE_METHODS),
    help="Recordings with steady background noise (a fan, hum, hiss, a car): filter it out "
    "before the features (wiener: noise taken from the clip's quietest frames, about 20 ms per "
    "3-s clip). Best with a model trained with it (--feature-param denoise=wiener); the same in "
    "predict, live and serve.",
)

VAD_OPTION = click.option(
    "--vad",
    type=click.Choice(["auto", "silero", "energy"]),
    default="auto",
    show_default=True,
    help="Voice activity detector (auto: silero when installed); the same in predict "
    "--segments, live and serve.",
)
