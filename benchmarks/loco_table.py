"""The leave-one-corpus-out comparison in benchmarks/README.md, from the committed results.

    python benchmarks/loco_table.py

For each recipe with a ``results/loco-<recipe>/metrics.json`` (categorical: seven classes) and,
where present, ``results/loco-arousal-<recipe>/metrics.json`` (arousal, low vs high), one row
per left-out corpus: UA on its own classes and on the four common ones (angry, happy, neutral,
sad), per utterance and, where the run has it, speaker-adapted; BAVED's row is its
arousal UA. The table goes between ``<!-- loco -->`` and ``<!-- /loco -->``.

The levers of issue 14 (``LEVERS``: each a ``results/loco-<name>`` run) get a second table
between ``<!-- loco-levers -->`` and ``<!-- /loco-levers -->``: the mean over the folds of the
best validation UA (7 classes, on validation speakers drawn from the training corpora: the
number a lever is chosen by), where run, the nested validation of ``results/loco-pairs-<name>``
(leave two corpora out: each left-out corpus judged by the 4-class UA on its partners, mean over
the left-out corpora; the number that sees corpus shift), then the 4-class UA of each left-out
corpus and their mean (the numbers it is reported by), and the training time summed over the
folds (a run resumed in several sessions or with folds in parallel has no one wall time). The
rest of the README is left as written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion_results import result_name

from emovox.metrics import sign_ua

HERE = Path(__file__).parent
RESULTS = HERE / "results"
START, END = "<!-- loco -->", "<!-- /loco -->"
RECIPES = (
    "cnn-augment-dims",
    "cnn",
    "cnn-functionals",
    "tutorial-cnn1d",
    "encoder-lr-whisper-base-l123mean",
)
ENCODER_LAYER_SETS = (
    ("l23", "2 and 3", "side by side"),
    ("l123mean", "1-3", "their pooled summaries averaged, `combine=mean`"),
    ("l234mean", "2-4", "averaged"),
    ("l1234mean", "1-4", "averaged"),
    ("l12345mean", "1-5", "averaged"),
    ("lallmean", "0-6 (all)", "averaged"),
)
"""Runs of ``encoder-lr`` on several Whisper layers: (name tail, layers, how combined)."""
LEVERS = (
    ("cnn", "the `cnn` of issue 13 (utterance-normalised log-mel)"),
    ("cnn-cmvn", "+ log-mel normalised per bin over the utterance (`normalize=cmvn`)"),
    ("cnn-augment", "+ 2 augmented copies: noise, gain, reverb, telephone band, MP3"),
    (
        "cnn-augment-dims",
        "the augmentation + the arousal/valence head (cmvn left out: lower validation UA)",
    ),
    (
        "cnn-augment-dims-cb",
        "+ corpus-balanced draws (`corpus_balance=true`: each corpus 1/5 of an epoch)",
    ),
    (
        "cnn-augment-dims-cb-rows",
        "+ rows without a class teach the arousal/valence head (BAVED's levels, EmoDB's "
        "boredom); BAVED left out as a sixth fold, scored on arousal alone",
    ),
    (
        "cnn-augment-dims-cb-cmvn",
        "`cnn-augment-dims-cb` + `normalize=cmvn` (stopped after one pair: it collapses under "
        "the telephone augmentation)",
    ),
    (
        "cnn-augment-dims-cb-cmvnfloor",
        "`cnn-augment-dims-cb` + `normalize=cmvn-floor` (per-bin std floored at 3 dB)",
    ),
    (
        "cnn-augment-dims-cb-valcorpus",
        "`cnn-augment-dims-cb` + `val_by_corpus=true` (best epoch by the mean of the "
        "validation corpora's UAs)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip",
        "`cnn-augment-dims-cb-rows` + the `clip` augmentation (peak driven 0-30 dB past full "
        "scale)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-seed1",
        "`cnn-augment-dims-cb-rows-clip` again with `seed=1` (initial weights, order, augmented "
        "copies and validation speakers all redrawn): how far a seed moves the nested number",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-seed2",
        "`cnn-augment-dims-cb-rows-clip` again with `seed=2`: three seeds span 50.1-52.2",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-cons5",
        "`cnn-augment-dims-cb-rows-clip` + `consistency=5` (Jensen-Shannon consistency of two "
        "views of each clip; stopped after one pair: validation UA 63.1 against 75.0)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-cons1",
        "`cnn-augment-dims-cb-rows-clip` + `consistency=1`",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-declip",
        "`cnn-augment-dims-cb-rows-clip` + `declip=true` (clipped runs redrawn before the "
        "features, in training and at test)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-sparse",
        "`cnn-augment-dims-cb-rows-clip` + `declip=true`, `declip_method=sparse` (the sparse "
        "declipper, in training and at test)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-pitch",
        "`cnn-augment-dims-cb-rows-clip` + the `pitch` augmentation (each augmented copy, with "
        "chance 1/2, shifted -2 to +2 semitones, duration kept: other voices)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-speed",
        "`cnn-augment-dims-cb-rows-clip` + speed perturbation (`speed_perturb=[0.9,1.1]`: "
        "copies 10 % slower and faster, pitch and tempo together)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-wide",
        "`cnn-augment-dims-cb-rows-clip` with 1.5 times the channels "
        "(`--param channels=[24,48,96,192]`, 2.2 times the weights): a larger network for ten "
        "times the data",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-ema",
        "`cnn-augment-dims-cb-rows-clip` + `ema=0.999` (validation, the checkpoint and the model "
        "use a moving average of the weights: flatter minima for unseen domains)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-ls",
        "`cnn-augment-dims-cb-rows-clip` + `label_smoothing=0.1` (cross-entropy against targets "
        "mixed 9:1 with the uniform: a less confident network for corpora it has not heard)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-wd",
        "`cnn-augment-dims-cb-rows-clip` + `weight_decay=0.05` (500 times AdamW's decoupled "
        "decay: smaller weights, a smoother function for corpora it has not heard)",
    ),
    *(
        (
            f"encoder-svm-whisper-base-l{k}",
            f"`encoder-svm` on layer {k} of Whisper `base`'s encoder (0: its convolutional front "
            "end, 6: its last layer; mean and standard deviation over the clip, RBF SVM, `C` "
            "chosen on the validation speakers; no CNN): a representation learnt from 680,000 "
            "hours of speech",
        )
        for k in range(7)
    ),
    *(
        (
            f"encoder-lr-whisper-base-l{k}",
            f"`encoder-lr` on layer {k} of Whisper `base`'s encoder: the same pooled layer read by "
            "a class-balanced logistic regression (`C` chosen on the validation speakers), "
            "kilobytes instead of the SVM's tens of megabytes",
        )
        for k in range(7)
    ),
    (
        "cnn-augment-dims-cb-rows-adv",
        "`cnn-augment-dims-cb-rows` + `corpus_adversary=0.5` (domain-adversarial training "
        "against the corpus)",
    ),
    *(
        (
            f"encoder-lr-whisper-base-{tag}",
            f"`encoder-lr` on Whisper `base`'s layers {layers} ({how}; `--feature-param "
            f"layers=...`, one encoder pass): what several layers carry that one does not",
        )
        for tag, layers, how in ENCODER_LAYER_SETS
    ),
    (
        "encoder-lr-whisper-base-l123mean-augment",
        "`encoder-lr` on layers 1-3 averaged + one augmented copy of every training clip "
        "(`augment=noise,gain,reverb,telephone,codec,clip`, `augment_copies=1`; each copy a row "
        "of its own, `C` still chosen on the validation speakers' original clips)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-bycorpus",
        "`encoder-lr` on layers 1-3 averaged, `C` chosen by holding each training corpus out "
        "(`--param choose_on=corpora`; the validation speakers only calibrate)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-bycorpus-fine",
        "the same with a half-decade grid of `C` (`c_grid=[0.001,0.003,...,1]`); a screen "
        "outside the pipeline that looked at the left-out corpora suggested it (its validation "
        "column: the mean UA of the held-out training corpora on their own classes)",
    ),
    (
        "encoder-svm-whisper-base-l123mean",
        "`encoder-svm` on Whisper `base`'s layers 1-3 averaged (the RBF SVM instead of the "
        "regression)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-balanced",
        "`encoder-lr` on layers 1-3 averaged, each training corpus and each of its classes "
        "weighed equally in the loss (`--param balance=corpora`, the rows weighted as "
        "`corpus_balance` draws a network's batches)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-balanced-bycorpus",
        "the same weighting with `C` chosen by holding each training corpus out on the default "
        "grid (`balance=corpora`, `choose_on=corpora`)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-balanced-bycorpus-fine",
        "the same weighting with `C` chosen by corpus on the half-decade grid "
        "(`balance=corpora`, `choose_on=corpora`, `c_grid=[0.001,0.003,...,1]`)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-rms",
        "`encoder-lr` on layers 1-3 averaged, every waveform scaled to -23 dBFS RMS before the "
        "encoder (`--feature-param level=rms`: Whisper's log-mel keeps the absolute level)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-rms-augment",
        "`level=rms` + one augmented copy of every training clip (the copies' layers cached "
        "again at that level)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-rms-denoise",
        "`level=rms` + steady noise filtered out of every waveform before the encoder "
        "(`--feature-param denoise=wiener`: a Wiener filter whose noise is the clip's own "
        "quietest frames)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-rms-denoise-augment",
        "`level=rms` + `denoise=wiener` + one augmented copy of every training clip (the "
        "copies' layers cached again, filtered)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-rms-denoise-balanced",
        "`level=rms` + `denoise=wiener` + `balance=corpora`",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-denoise",
        "`cnn-augment-dims-cb-rows-clip` + `denoise=wiener` (steady noise filtered out of every "
        "clip and augmented copy before the log-mel, in training and at test)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-rms-denoise-declip",
        "`level=rms` + `denoise=wiener` + `declip=true`, `declip_method=sparse` (clipped runs "
        "redrawn by the sparse declipper before the filter, in training and at test; LOCO with "
        "the two gain conditions only)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-rms-denoise-dims",
        "`level=rms` + `denoise=wiener` + the arousal/valence head (`dimensions=true`: ridge "
        "regressions on the same summary; BAVED's levels and EmoDB's boredom teach it; BAVED a "
        "sixth fold, scored on arousal alone): the recipe of `--model whisper-base-7` (shipped "
        "in the fourteenth session, replaced by the default below in the fifteenth)",
    ),
    (
        "encoder-lr-whisper-base-l3-rms-denoise-declip",
        "`encoder-lr-whisper-base-l123mean-rms-denoise-declip` on Whisper `base` shrunk to its "
        "first three layers with int8 feed-forward weights (`emovox encoder shrink`): what "
        "shrinking the encoder costs in nested validation",
    ),
    (
        "encoder-lr-whisper-base-l3-rms-denoise-declip-dims",
        "`level=rms` + `denoise=wiener` + `declip=true`, `declip_method=sparse` + the "
        "arousal/valence head, on Whisper `base` shrunk to its first three layers with int8 "
        "feed-forward weights (`emovox encoder shrink`, 16.4 MB): the recipe of the default model "
        "(fifteenth session)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-rms-balanced",
        "`level=rms` + `balance=corpora` (each training corpus and each of its classes weighed "
        "equally in the loss)",
    ),
    (
        "encoder-lr-whisper-base-l123mean-augment-balanced",
        "`encoder-lr-whisper-base-l123mean-augment` (one augmented copy of every clip) + "
        "`balance=corpora`",
    ),
    (
        "encoder-lr-whisper-base-l123mean-augment-balanced-bycorpus",
        "`encoder-lr-whisper-base-l123mean-augment` + `balance=corpora` + `choose_on=corpora`",
    ),
    (
        "encoder-lr-whisper-base-l123mean-corpusclasses",
        "`encoder-lr` on layers 1-3 averaged, each training clip scored over the classes its "
        "corpus labels (`--param corpus_classes=true`: the networks' per-corpus class masks)",
    ),
    *(
        (
            f"encoder-lr-whisper-base-l123mean-nap{k}",
            f"`encoder-lr` on layers 1-3 averaged, the {k} directions along which the training "
            f"corpora differ most for the same emotion projected out before the fit (`--param "
            f"nuisance={k}`: nuisance attribute projection, folded into the weights)",
        )
        for k in (4, 16)
    ),
    (
        "encoder-mlp-whisper-base-l123mean",
        "`encoder-mlp` on layers 1-3 averaged: one hidden layer (256 GELU units, dropout 0.2 on "
        "its input, 0.3 on its output) instead of the regression, trained by the gradient "
        "trainer (per-corpus class masks, early stopping on the validation speakers)",
    ),
    (
        "encoder-mlp-whisper-base-l123mean-cb",
        "`encoder-mlp` + corpus-balanced draws (`corpus_balance=true`)",
    ),
    (
        "encoder-mlp-whisper-base-l123mean-drop",
        "`encoder-mlp` with dropout 0.5 on the hidden layer's input and output",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-distill",
        "`cnn-augment-dims-cb-rows-clip` distilled from `encoder-lr-whisper-base-l123mean-augment`"
        " (`teacher=` its run, each fold its fold model; `distill=0.5`, `distill_temperature=2`;"
        " trained in float32, the recipe's bf16 being slow on this session's CPU)",
    ),
)
"""The levers: ``results/loco-<name>`` (LOCO) and ``results/loco-pairs-<name>`` (nested
validation); a lever with only one of the two gets dashes for the other."""
ENSEMBLES = (
    (
        (
            "cnn-augment-dims-cb",
            "cnn-augment-dims-cb-rows",
            "cnn-augment-dims-cb-cmvnfloor",
            "cnn-augment-dims-cb-valcorpus",
        ),
        "an ensemble (the mean of the probabilities) of the four nested runs of "
        "`cnn-augment-dims-cb`, `-rows`, `-cmvnfloor` and `-valcorpus`: what an ensemble, or "
        "a network distilled from it, could add",
    ),
    (
        ("cnn-augment-dims-cb-rows-clip", "cnn-augment-dims-cb-rows-clip-seed1"),
        "an ensemble of the clip recipe's two seeds (0 and 1)",
    ),
    (
        tuple(
            "cnn-augment-dims-cb-rows-clip" + tail
            for tail in (
                "", "-seed1", "-seed2", "-sparse", "-ls", "-wd", "-pitch", "-speed", "-wide",
                "-ema", "-cons1",
            )
        ),
        "an ensemble of the eleven nested runs of the clip recipe and its levers (three seeds, "
        "the sparse declipper, label smoothing, weight decay, pitch, speed, width, EMA, "
        "consistency): the ceiling of every lever of this network together",
    ),
    *(
        (
            ("cnn-augment-dims-cb-rows-clip", f"encoder-svm-whisper-base-l{k}"),
            "the fusion (equal weights, fixed before any run) of the shipped recipe's CNN and "
            f"`encoder-svm` on Whisper `base`'s layer {k}",
        )
        for k in range(7)
    ),
    *(
        (
            ("cnn-augment-dims-cb-rows-clip", f"encoder-lr-whisper-base-l{k}"),
            "the fusion (equal weights) of the shipped recipe's CNN and `encoder-lr` on Whisper "
            f"`base`'s layer {k}",
        )
        for k in range(7)
    ),
    *(
        (
            ("cnn-augment-dims-cb-rows-clip", f"encoder-lr-whisper-base-{tag}"),
            "the fusion (equal weights) of the shipped recipe's CNN and `encoder-lr` on Whisper "
            f"`base`'s layers {layers} ({how})",
        )
        for tag, layers, how in ENCODER_LAYER_SETS
    ),
    (
        ("encoder-lr-whisper-base-l123mean", "encoder-svm-whisper-base-l123mean"),
        "the fusion (equal weights) of `encoder-lr` and `encoder-svm` on Whisper `base`'s layers "
        "1-3 averaged",
    ),
)
"""Ensembles judged by nested validation alone, from the stored probabilities of their runs."""
FUSIONS = (
    (
        "cnn-augment-dims-cb-rows-clip",
        "functionals",
        "`cnn-augment-dims-cb-rows-clip` fused with a logistic regression on the fast functionals "
        "(the level left out, no speaker statistics), its C and share chosen on each fold's "
        "validation speakers, on the saved fold models (`benchmarks/functionals_fusion.py`)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip",
        "functionals,egemaps",
        "the same, the regression reading openSMILE's eGeMAPS (at -20 dBFS) beside the fast "
        "functionals (`--views functionals,egemaps`)",
    ),
    (
        "cnn-augment-dims-cb-rows-clip-sparse",
        "functionals",
        "the functionals fusion on the saved fold models of the recipe trained with the sparse "
        "declipper",
    ),
)
"""Late fusions of a lever's saved fold models with a regression on utterance functionals
(``name``, the regression's ``--views``, what it is):
``results/functionals_fusion[_<views>]_loco[-pairs]-<name>.json``."""
LEVER_START, LEVER_END = "<!-- loco-levers -->", "<!-- /loco-levers -->"
CORPORA = ("ased", "emodb", "nemo", "ravdess", "tess")
LANGUAGE = {"ased": "am", "baved": "ar", "emodb": "de", "nemo": "pl", "ravdess": "en", "tess": "en"}


def _cell(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def corpus_scores(m: dict) -> dict[str, dict]:
    """Per test corpus: UA own classes / 4 classes, per utterance and speaker-adapted."""
    out = {}
    for corpus, v in m.get("per_test_corpus", {}).items():
        a = v.get("speaker_adapted", {})
        out[corpus] = {
            "own": v.get("own_classes", {}).get("ua"),
            "four": v.get("four_classes", {}).get("ua"),
            "own_adapted": a.get("own_classes", {}).get("ua"),
            "four_adapted": a.get("four_classes", {}).get("ua"),
            "n_own": len(v.get("own_classes", {}).get("classes", [])),
        }
    return out


def load(name: str) -> dict | None:
    path = RESULTS / name / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def recipe_rows(recipe: str) -> list[str]:
    m, arousal = load(f"loco-{recipe}"), load(f"loco-arousal-{recipe}")
    if m is None and arousal is None:
        return []
    scores = corpus_scores(m) if m else {}
    rows = []
    for corpus in sorted(scores):
        s = scores[corpus]
        rows.append(
            f"| `{recipe}` | {corpus} ({LANGUAGE.get(corpus, '?')}) | {s['n_own']} | "
            f"{_cell(s['own'])} | **{_cell(s['four'])}** | {_cell(s['own_adapted'])} | "
            f"{_cell(s['four_adapted'])} |"
        )
    if scores:
        four = [s["four"] for s in scores.values() if s["four"] is not None]
        adapted = [s["four_adapted"] for s in scores.values() if s["four_adapted"] is not None]
        mean = sum(four) / len(four) if four else None
        mean_a = sum(adapted) / len(adapted) if adapted else None
        minutes = m["timing"]["wall_seconds"] / 60
        rows.append(
            f"| `{recipe}` | **mean of {len(four)}** (lowest {_cell(min(four))}) | | | "
            f"**{_cell(mean)}** | | {_cell(mean_a)} |"
        )
        n = len(m["folds"])
        rows.append(f"| `{recipe}` | wall time, {n} folds | | | {minutes:.0f} min | | |")
    if arousal:
        per = arousal.get("per_test_corpus", {})
        for corpus, v in sorted(per.items()):
            a = v.get("speaker_adapted", {}).get("ua")
            rows.append(
                f"| `{recipe}` | {corpus} ({LANGUAGE.get(corpus, '?')}): arousal low vs high | 2 | "
                f"**{_cell(v['ua'])}** | | {_cell(a)} | |"
            )
    return rows


def table() -> str:
    lines = [
        "| recipe | left-out corpus | its classes | UA own classes | UA 4 classes | "
        "speaker-adapted: UA own classes | UA 4 classes |",
        "|---|---|---|---|---|---|---|",
    ]
    for recipe in RECIPES:
        lines += recipe_rows(recipe)
    return "\n".join(lines)


def lever_table() -> str:
    """The levers, side by side (folds not yet run are left out of the means, and said)."""
    lines = [
        "| run | what it changes | folds | mean validation UA (7 classes) | "
        "nested validation: UA 4 classes (arousal low/high UA) | "
        + " | ".join(f"{c} 4 cl." for c in CORPORA)
        + " | mean 4 classes | arousal low/high UA, mean (corpora) | training, all folds |",
        "|---|---|---|---|---|" + "---|" * len(CORPORA) + "---|---|---|",
    ]
    dashes, tail = " | ".join("—" for _ in CORPORA), "| — | — | — |"  # no LOCO run
    for name, what in LEVERS:
        m = load(f"loco-{name}")
        folds = _folds(f"loco-{name}")
        if not folds:
            nested = nested_cell(name)
            if nested != "—":  # judged by nested validation only
                lines.append(f"| `loco-pairs-{name}` | {what} | — | — | {nested} | {dashes} {tail}")
            continue
        # the folds scored on classes (a dimensions-only fold's validation is the same kind,
        # but leaving it out keeps the mean comparable with the five-fold runs)
        classified = [f for f in folds if f.get("ua") is not None]
        val = [f["best_val_ua"] for f in classified if f.get("best_val_ua") is not None]
        per = (m if m else _partial(name)).get("per_test_corpus", {})
        scores = corpus_scores({"per_test_corpus": per})
        fours = [scores.get(c, {}).get("four") for c in CORPORA]
        known = [x for x in fours if x is not None]
        mean = _cell(sum(known) / len(known)) if len(known) == len(CORPORA) else "—"
        mean = f"**{mean}**" + adapted_note(per)
        train = sum(f["train_seconds"] for f in folds)
        wall = f"{train / 60:.0f} min" + ("" if m else " (running)")
        lines.append(
            f"| `loco-{name}` | {what} | {len(folds)} | {_cell(sum(val) / len(val))} | "
            f"{nested_cell(name)} | "
            + " | ".join(_cell(x) for x in fours)
            + f" | {mean} | {arousal_cell(per)} | {wall} |"
        )
    for name, views, what in FUSIONS:
        row = fusion_row(name, what, views)
        if row:
            lines.append(row)
    for names, what in ENSEMBLES:
        nested = nested_cell(*names)
        if nested == "—":
            continue
        loco = loco_ensemble(names)
        if loco is None:
            row = f"| ensemble of {len(names)} | {what} | — | — | {nested} | {dashes} {tail}"
        else:
            fours = [loco.get(c) for c in CORPORA]
            known = [x for x in fours if x is not None]
            mean = _cell(sum(known) / len(known)) if len(known) == len(CORPORA) else "—"
            row = (
                f"| ensemble of {len(names)} | {what} | {len(CORPORA)} | — | {nested} | "
                + " | ".join(_cell(x) for x in fours)
                + f" | **{mean}** | — | none (the members' runs) |"
            )
        lines.append(row)
    return "\n".join(lines)


def loco_ensemble(names: Sequence[str]) -> dict[str, float] | None:
    """The 4-class UA of each left-out corpus for the ensemble of the ``loco-<name>`` runs (the
    mean of their probabilities, clip by clip), or ``None`` unless every run has predictions."""
    from emovox.evaluate.runner import per_corpus_scores

    runs = [f"loco-{name}" for name in names]
    if not all(list((RESULTS / run).glob("fold_*/predictions.csv")) for run in runs):
        return None
    rows, classes = mean_predictions(runs, by_fold=False)
    scores = per_corpus_scores([r for r in rows if r.get("label")], classes)
    return {c: s["four_classes"]["ua"] for c, s in scores.items() if "four_classes" in s}


def fusion_row(name: str, what: str, views: str = "functionals") -> str | None:
    """The lever row of ``name``'s functionals fusion (:data:`FUSIONS`); ``None`` before either
    of its results exists. The arousal head is the CNN's, unchanged: not repeated here."""
    files = [RESULTS / result_name(f"loco{p}-{name}", views.split(",")) for p in ("", "-pairs")]
    loco, pairs = (json.loads(f.read_text()) if f.is_file() else None for f in files)
    if loco is None and pairs is None:
        return None
    nested = "—"
    if pairs:
        n = len(pairs["folds"])
        nested = f"{_cell(pairs['summary']['fused']['four_classes'])} ({n} pairs)"
    fours, folds, val, mean = [None] * len(CORPORA), "—", "—", "—"
    if loco:
        fused = loco["summary"]["fused"]
        fours = [fused["four_classes_by_corpus"].get(c) for c in CORPORA]
        folds, val = str(len(loco["folds"])), _cell(fused["validation_ua"])
        if all(x is not None for x in fours):
            mean = f"**{_cell(sum(fours) / len(fours))}**"
    return (
        f"| `loco-{name}` + {views.replace(',', ' + ')} | {what} | {folds} | {val} | {nested} | "
        + " | ".join(_cell(x) for x in fours)
        + f" | {mean} | — | none (closed form) |"
    )


def nested_cell(*names: str) -> str:
    """The nested validation of ``results/loco-pairs-<name>`` (its finished pair folds): the
    mean over the left-out corpora of the 4-class UA on their partners (and of the arousal
    head's low/high UA, where the model has one), and how many pair folds it rests on. With
    several names, that of their ensemble (:func:`mean_predictions`) on the folds all of them
    finished."""
    from emovox.data.protocols import Fold
    from emovox.evaluate.plans import Plan
    from emovox.evaluate.runner import nested_validation

    runs = [f"loco-pairs-{name}" for name in names]
    finished = [{f["fold"]: f for f in _folds(run)} for run in runs]
    shared = sorted(set(finished[0]).intersection(*finished[1:]))
    folds = tuple(Fold(i, (), (), (), tuple(finished[0][i]["test_corpora"])) for i in shared)
    rows, classes = mean_predictions(runs)
    rows = [r for r in rows if r["fold"] in shared]
    if not folds or not rows:
        return "—"
    nested = nested_validation(Plan("loco-pairs", folds, by_corpus=True), rows, classes)
    mean = nested["mean"]
    arousal = f"; arousal {_cell(mean['arousal'])}" if "arousal" in mean else ""
    pairs = f"{len(folds)} pair" + ("s" if len(folds) != 1 else "")
    return f"{_cell(mean.get('four_classes'))}{arousal} ({pairs})"


def adapted_note(per: dict) -> str:
    """The mean 4-class UA over the left-out corpora speaker-adapted and guarded, where every
    corpus has it (always labelled: it uses each test speaker's other clips)."""
    guarded = [
        per.get(c, {}).get("speaker_adapted_guarded", {}).get("four_classes", {}).get("ua")
        for c in CORPORA
    ]
    if any(x is None for x in guarded):
        return ""
    return f" (speaker-adapted, guarded: {sum(guarded) / len(guarded):.1f})"


def arousal_cell(per: dict) -> str:
    """The mean over the left-out corpora of the arousal head's low/high UA, and how many
    corpora it covers (BAVED only where its arousal-only fold ran)."""
    signs = [sign_ua(v.get("dimensions", {}).get("arousal", {})) for v in per.values()]
    signs = [x for x in signs if x is not None]
    if not signs:
        return "—"
    baved = ", with BAVED" if per.get("baved", {}).get("dimensions") else ""
    return f"{sum(signs) / len(signs):.1f} ({len(signs)}{baved})"


def _folds(run: str) -> list[dict]:
    """The finished folds of ``results/<run>`` (from its ``fold_N/metrics.json``, so a run
    still going counts the folds it has)."""
    return [json.loads(p.read_text()) for p in sorted((RESULTS / run).glob("fold_*/metrics.json"))]


def _predictions(run: str) -> tuple[list[dict], list[str]]:
    """The prediction rows of the finished folds of ``results/<run>`` and the model's classes
    (from the rows' ``p_<class>`` columns)."""
    from emovox.evaluate.results import read_predictions

    rows = []
    for path in sorted((RESULTS / run).glob("fold_*/predictions.csv")):
        rows += read_predictions(path)
    classes = sorted({c[2:] for c in rows[0] if c.startswith("p_")}) if rows else []
    return rows, classes


def mean_predictions(runs: list[str], by_fold: bool = True) -> tuple[list[dict], list[str]]:
    """:func:`_predictions` of one run, or of several as an ensemble: for every clip that all
    of them predicted in the same fold (``by_fold=False``: in any fold, for runs that test each
    clip once, as ``loco`` does, whatever their fold numbers), the mean of their probabilities
    (and its argmax as the prediction; the other columns, the arousal head's included, from the
    first run)."""
    first, classes = _predictions(runs[0])
    if len(runs) == 1:
        return first, classes

    def key_of(r: dict) -> tuple:
        return (r["fold"], r["path"]) if by_fold else (r["path"],)

    others = []
    for run in runs[1:]:
        rows, theirs = _predictions(run)
        if theirs != classes:
            raise SystemExit(f"{run}: classes {theirs} differ from {runs[0]}'s {classes}")
        others.append({key_of(r): r for r in rows})
    out = []
    for r in first:
        key = key_of(r)
        if all(key in o for o in others):
            mean = {
                f"p_{c}": (float(r[f"p_{c}"]) + sum(float(o[key][f"p_{c}"]) for o in others))
                / len(runs)
                for c in classes
            }
            out.append({**r, **mean, "predicted": max(classes, key=lambda c: mean[f"p_{c}"])})
    return out, classes


def _partial(name: str) -> dict:
    """``per_test_corpus`` of a run still going, from its finished folds' predictions."""
    from emovox.evaluate.runner import per_corpus_scores

    rows, classes = _predictions(f"loco-{name}")
    return {"per_test_corpus": per_corpus_scores(rows, classes)} if rows else {}


def _replace(text: str, start: str, end: str, body: str, readme: Path) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{readme}: no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main() -> None:
    readme = HERE / "README.md"
    text = _replace(readme.read_text(), START, END, table(), readme)
    if LEVER_START in text:
        text = _replace(text, LEVER_START, LEVER_END, lever_table(), readme)
    readme.write_text(text)
    print(table())
    print(lever_table())


if __name__ == "__main__":
    main()
