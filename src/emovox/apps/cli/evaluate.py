"""``emovox evaluate``: speaker-independent folds over one corpus or several, or cross-corpus."""

from __future__ import annotations

import click

from emovox.apps.cli.options import (
    TrainingSetup,
    check_conditions,
    check_target,
    command_line,
    echo_dropped,
    engine_options,
    load_specs,
    manifest_of,
    training_command,
)


@training_command(
    out_help="Results folder.",
    resume_help="Reuse folds already finished in --out.",
    train_help="Training corpus (repeatable), instead of --data: with --test, a cross-corpus "
    "run; alone, --protocol folds over the union of the corpora.",
)
@click.option(
    "--protocol",
    default="emobox",
    show_default=True,
    help="emobox, loso, loco (leave one corpus out), loco-pairs (two out: the nested "
    "validation of loco), sessions (IEMOCAP), speakers-kfold[:K], or random[:K] (speakers leak!).",
)
@click.option("--k", type=int, help="Folds for speakers-kfold / random.")
@click.option("--folds", help="Run only these folds, e.g. 1,2.")
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
    callback=check_conditions,
    help="Also score every fold's test files under a test condition (repeatable): white:SNR, "
    "speech:SNR (speech-shaped noise), gain:DB (clipped), pitch:SEMITONES, reverb:RT60, "
    "e.g. --condition white:20 --condition gain:-20.",
)
@engine_options("the folds as Ray tasks, in parallel; the same metrics.json as local")
@click.option(
    "--cpus-per-fold",
    type=int,
    default=1,
    show_default=True,
    help="With --engine ray: CPUs (and torch threads) of each fold's task.",
)
def evaluate(
    corpus, data, protocol, k, folds, out, resume, overwrite, train_specs, test_specs, conditions,
    engine, address, cpus_per_fold, **options,
) -> None:
    """Cross-validated, speaker-independent evaluation; writes metrics.json and a report.

    \b
    Three forms:
      --corpus NAME --data PATH --protocol P            folds over one corpus
      --train C:PATH [--train C:PATH ...] --protocol P  folds over the union of corpora
      --train C:PATH ... --test C:PATH ...              cross-corpus: train on one, test on other
    """
    from emovox.evaluate.runner import evaluate as run_evaluation

    if data is not None and (train_specs or test_specs):
        raise click.UsageError("use either --data or --train/--test, not both")
    if test_specs and not train_specs:
        raise click.UsageError("--test needs at least one --train CORPUS:PATH")
    if data is None and not train_specs:
        raise click.UsageError(
            "give the data: --data PATH [--corpus NAME], or --train CORPUS:PATH "
            "[--train ...] [--test CORPUS:PATH ...]"
        )
    check_target(out, folder=True)
    if test_specs:
        ctx = click.get_current_context()
        for name in ("protocol", "k", "folds", "resume", "engine", "address", "cpus_per_fold"):
            if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
                raise click.UsageError(f"--{name} does not apply to a cross-corpus run (--test)")
        if conditions:
            raise click.UsageError("--condition does not apply to a cross-corpus run (--test)")
        default_labels = ctx.get_parameter_source("labels") == click.core.ParameterSource.DEFAULT
        _cross_corpus(train_specs, test_specs, default_labels, options, out, overwrite)
        return
    if ":" in protocol:
        protocol, k_text = protocol.split(":", 1)
        k = int(k_text)
    fold_engine = _engine(engine, address, cpus_per_fold)
    manifest = manifest_of(corpus, data, train_specs)
    setup = TrainingSetup.from_options(options, manifest)
    try:
        m = run_evaluation(
            manifest,
            setup.scheme,
            setup.recipe,
            out,
            protocol=protocol,
            k=k,
            folds=[int(f) for f in folds.split(",")] if folds else None,
            cache=setup.cache,
            resume=resume,
            progress=setup.progress,
            command=command_line(),
            conditions=conditions,
            engine=fold_engine,
            overwrite=overwrite,
        )
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except RuntimeError as exc:  # Ray missing, or a fold's task failed
        raise click.ClickException(str(exc)) from exc
    echo_summary(m, out)


def echo_summary(m, out) -> None:
    """What a folds run prints when it is done: the headline, the speaker-adapted line, the
    per-corpus and nested lines and the test conditions."""
    echo_dropped(m)
    click.echo(
        f"{m.model} on {m.protocol}: UA {m.ua:.2f} ± {m.ua_std:.2f}  "
        f"WA {m['wa']:.2f}  macro-F1 {m['macro_f1']:.2f} (per utterance)  -> {out}/metrics.json"
    )
    if "speaker_adapted" in m:
        a = m["speaker_adapted"]
        click.echo(
            f"  speaker-adapted (test speakers' other utterances): UA {a['ua']:.2f} ± "
            f"{a['ua_std']:.2f}  WA {a['wa']:.2f}  macro-F1 {a['macro_f1']:.2f}"
        )
    echo_per_corpus(m)
    echo_nested(m)
    for name, c in m.get("conditions", {}).items():
        if name != "clean":
            click.echo(
                f"  {name}: UA {c['ua']:.2f} ({c['ua_delta']:+.2f} vs clean), "
                f"{c['clipped_files']} file(s) clipped"
            )


def _engine(name: str, address: str | None, cpus_per_fold: int):
    """The fold engine of ``--engine`` (a usage error for a bad combination)."""
    from emovox.evaluate.engines import make_engine

    try:
        return make_engine(name, address, cpus_per_fold)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _cross_corpus(
    train_specs, test_specs, default_labels: bool, options: dict, out, overwrite: bool
) -> None:
    """``emovox evaluate --train ... --test ...``: train on the union, test on the others."""
    from emovox.data.taxonomy import common_labels
    from emovox.evaluate.runner import evaluate_cross_corpus

    train = load_specs(train_specs)
    test = load_specs(test_specs)
    labels = None
    if default_labels:
        per_corpus = [
            side.filter(lambda u, c=c: u.corpus == c)
            for side in (train, test)
            for c in sorted({u.corpus for u in side})
        ]
        common = common_labels(per_corpus)
        if len(common) < 2:
            raise click.UsageError(
                f"the corpora share fewer than two labels ({common}); map labels with --labels, "
                f"e.g. --labels calm=neutral,angry,happy,sad"
            )
        labels = ",".join(common)
        click.echo(f"labels common to all corpora: {labels}", err=True)
    setup = TrainingSetup.from_options(options, train + test, labels=labels)
    try:
        m = evaluate_cross_corpus(
            train,
            test,
            setup.scheme,
            setup.recipe,
            out,
            cache=setup.cache,
            progress=setup.progress,
            command=command_line(),
            sources={"train": list(train_specs), "test": list(test_specs)},
            overwrite=overwrite,
        )
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    echo_dropped(m)
    arrow = f"{'+'.join(m['train_corpora'])} -> {'+'.join(m['test_corpora'])}"
    click.echo(
        f"{m.model} cross-corpus {arrow}: UA {m.ua:.2f}  WA {m['wa']:.2f}  "
        f"macro-F1 {m['macro_f1']:.2f}  -> {out}/metrics.json"
    )
    if len(m["per_test_corpus"]) > 1:
        echo_per_corpus(m)


def echo_per_corpus(m) -> None:
    """A line per test corpus: UA on all classes, on its own classes and on the common four."""
    for c, v in m.get("per_test_corpus", {}).items():
        if v.get("dimensions_only"):
            a = v["dimensions"]["arousal"]
            click.echo(
                f"  {c}: no class, arousal only: low/high UA {a['ua_sign']:.2f}  "
                f"CCC {a['ccc']:.2f}"
            )
            continue
        line = f"  {c}: UA {v['ua']:.2f}  WA {v['wa']:.2f}  macro-F1 {v['macro_f1']:.2f}"
        own = v.get("own_classes")
        if own and len(own["classes"]) != len(m["labels"]):
            line += f"  | own {len(own['classes'])} classes UA {own['ua']:.2f}"
        if "four_classes" in v:
            line += f"  | 4 classes UA {v['four_classes']['ua']:.2f}"
        adapted = v.get("speaker_adapted")
        if adapted:
            four = adapted.get("four_classes")
            line += f"  | speaker-adapted UA {adapted['ua']:.2f}" + (
                f" (4 classes {four['ua']:.2f})" if four else ""
            )
        click.echo(line)


def echo_nested(m) -> None:
    """The nested validation of a loco-pairs run: a line per corpus a loco fold leaves out."""
    nested = m.get("nested_validation")
    if not nested:
        return
    click.echo("  nested validation (4-class UA on the partners of each left-out corpus):")
    for corpus, e in nested["by_left_out"].items():
        partners = ", ".join(
            f"{j} {v['four_classes']:.2f}" for j, v in e["partners"].items() if "four_classes" in v
        )
        mean = e.get("four_classes")
        tail = f"  -> mean {mean:.2f}" if mean is not None else ""
        click.echo(f"    {corpus}: {partners}{tail}")
    mean = nested.get("mean", {})
    if "four_classes" in mean:
        arousal = f"; arousal low/high UA {mean['arousal']:.2f}" if "arousal" in mean else ""
        click.echo(f"    mean over left-out corpora: {mean['four_classes']:.2f}{arousal}")


COMMAND = evaluate
