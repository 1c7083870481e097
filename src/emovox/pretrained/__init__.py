"""The models that ship inside the package, and their model cards.

``emovox predict FILE`` (and ``live``, ``serve``, ``export``, ``Recognizer.load()``) use the
bundle in ``emovox/pretrained/default/`` when no model folder is given; the other folders next
to it are the models ``--model NAME`` names (:data:`SHIPPED_MODELS`). Each folder holds the
usual two bundle files (``model.safetensors``, ``config.json``), ``MODEL_CARD.md``, and, for a
model that reads a pretrained encoder, that encoder (``encoder/<name>``, shrunk to the layers
the model reads: nothing is looked for on the user's machine).

The card's numbers are not typed by hand: the block between ``<!-- generated -->`` and
``<!-- /generated -->`` is rendered from the bundled ``config.json`` and from the benchmark files
it names (the cross-validated ``metrics.json`` of the same recipe, the gain-invariance JSON), and
:func:`check_model_card` (run by the tests) fails when the card and those files disagree.

Replacing a shipped model (run from the repository root; the default model's card gives its
exact commands)::

    emovox train $T --labels ... --arch encoder-lr --feature-param path=ENCODER ... --out /tmp/m
    python -m emovox.pretrained install /tmp/m --carry-encoder \\
        --metrics RUN/metrics.json --gain GAIN.json --loco RUN/metrics.json
    python -m emovox.pretrained check
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

from emovox._fs import atomic_write_text
from emovox.inference.bundle import (
    CONFIG,
    ENCODER_DIR,
    WEIGHTS,
    BundleError,
    feature_config_in,
    load_bundle,
)
from emovox.metrics import sign_ua

INT8_FILE = "model.int8.onnx"
"""A shipped model's int8 ONNX export, calibrated on its training speech (optional)."""

PRETRAINED_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = PRETRAINED_DIR / "default"
"""Where the bundled default model lives (inside the installed package)."""

SHIPPED_MODELS = {
    "default": "the default model: 7 emotions read from the first layers of Whisper base's "
    "encoder (carried inside), six corpora in five languages; the most accurate on unheard voices",
    "fast-7": "a small network on log-mel, the same 7 emotions and corpora: about eight times "
    "faster than the default, less accurate on unheard voices",
    "ravdess-8": "8 emotions (calm kept), RAVDESS alone",
}
"""The models inside the package, by the name ``--model NAME`` takes; each is the folder of that
name next to this file, with its ``MODEL_CARD.md``."""

MODEL_CARD = "MODEL_CARD.md"
MAX_MODEL_BYTES = 20_000_000
"""A shipped model's folder, with any encoder it carries, must stay under 20 MB (it ships in
every wheel)."""

LICENCE = "CC BY-NC-SA 4.0"
CITATION_DOI = "10.1371/journal.pone.0196391"

_BEGIN, _END = "<!-- generated -->", "<!-- /generated -->"
_SOURCES = re.compile(r"<!-- sources: metrics=(\S+) gain=(\S+)(?: loco=(\S+))? -->")
_RECIPE_KEYS = ("feature", "training")


class DefaultModelMissing(BundleError):
    """The bundled default model is not where the package expects it."""


def default_model_path() -> Path:
    """The folder of the bundled default model.

    Raises:
        DefaultModelMissing: a file of the bundle is missing (a broken or trimmed install).
    """
    return _complete(
        DEFAULT_MODEL_DIR,
        "the bundled default model is incomplete",
        "reinstall emovox or give a model folder (--model DIR / Recognizer.load(DIR))",
    )


def _complete(path: Path, what: str, advice: str) -> Path:
    """``path`` when it holds both bundle files, else :class:`DefaultModelMissing` naming the
    missing ones."""
    missing = [n for n in (WEIGHTS, CONFIG) if not (path / n).is_file()]
    if missing:
        raise DefaultModelMissing(f"{path}: {what} ({', '.join(missing)} missing); {advice}")
    return path


def shipped_model_path(name: str) -> Path:
    """The folder of the shipped model ``name`` (a key of :data:`SHIPPED_MODELS`).

    Raises:
        ValueError: no model of that name ships with emovox.
        DefaultModelMissing: a file of the bundle is missing (a broken or trimmed install).
    """
    if name not in SHIPPED_MODELS:
        raise ValueError(
            f"no model named {name!r} ships with emovox (shipped: {', '.join(SHIPPED_MODELS)})"
        )
    if name == "default":
        return default_model_path()
    return _complete(
        _model_folder(name), f"the shipped model {name!r} is incomplete", "reinstall emovox"
    )


def _model_folder(name: str) -> Path:
    """Where the shipped model ``name`` lives, complete or not."""
    return DEFAULT_MODEL_DIR if name == "default" else PRETRAINED_DIR / name


def resolve_model(model: str | os.PathLike | None) -> Path:
    """The model folder that ``--model`` / ``Recognizer.load`` mean: ``None`` is the default
    model; a name of :data:`SHIPPED_MODELS` is that shipped model unless a folder of that name
    exists here (a folder always wins); anything else is a folder path, returned as it is."""
    if model is None:
        return default_model_path()
    if str(model) in SHIPPED_MODELS and not Path(model).exists():
        return shipped_model_path(str(model))
    return Path(model)


@dataclasses.dataclass(frozen=True)
class ShippedModel:
    """What ``emovox models`` says of a shipped model (:func:`shipped_models`)."""

    name: str
    description: str
    path: str
    size_bytes: int
    labels: list[str]
    dimensions: list[str]
    needs: str | None
    """What the model reads from this machine besides its folder (a pretrained encoder), if
    anything."""
    problem: str | None
    """Why it cannot run here (a missing file, a missing encoder), or ``None``: ready."""

    @property
    def ready(self) -> bool:
        return self.problem is None


def shipped_models() -> list[ShippedModel]:
    """Every model of :data:`SHIPPED_MODELS`: its labels, size, and whether it can run on this
    machine (its bundle complete, and any encoder it reads found by name and fingerprint, as
    loading it would find it; nothing is loaded)."""
    from emovox.features.encoder import checked_encoder

    out = []
    for name, description in SHIPPED_MODELS.items():
        folder = _model_folder(name)
        config: dict = {}
        needs = problem = None
        try:
            config = _read_json(shipped_model_path(name) / CONFIG)
        except (BundleError, OSError, ValueError) as exc:
            problem = str(exc)
        feature = feature_config_in(config.get("feature", {}), folder)
        carried = Path(feature.get("path", "")).is_relative_to(folder.resolve())
        if "fingerprint" in feature and feature.get("path") and not carried:
            needs = (
                f"the encoder {Path(feature['path']).name} (fingerprint {feature['fingerprint']})"
            )
            try:
                checked_encoder(feature["path"], feature["fingerprint"])
            except (FileNotFoundError, ValueError) as exc:
                problem = problem or str(exc)
        out.append(
            ShippedModel(
                name=name,
                description=description,
                path=str(folder),
                size_bytes=model_size(folder) if folder.is_dir() else 0,
                labels=list(config.get("labels", [])),
                dimensions=list(config.get("model", {}).get("dimensions") or []),
                needs=needs,
                problem=problem,
            )
        )
    return out


def model_size(path: str | os.PathLike = DEFAULT_MODEL_DIR) -> int:
    """Bytes of all files in a model folder (what the wheel carries for it)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# -- the model card ------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: no such file (named by the model card)") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def _pm(m: dict, key: str) -> str:
    std = m.get(f"{key}_std")
    return f"{m[key]:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def _settings(d: dict, skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in d.items() if k not in skip)


def _relative(path: str | os.PathLike, root: Path) -> str:
    rel = os.path.relpath(Path(path).resolve(), root.resolve())
    if rel.startswith(".."):
        raise ValueError(f"{path}: must lie inside the repository {root}")
    return Path(rel).as_posix()


def _selection(val: list[str], res: dict) -> str:
    """How the bundle's checkpoint was chosen: on held-out speakers, or the last epoch."""
    if not val or res.get("best_val_ua") is None:
        return (
            f"all of them trained the weights for a fixed {res.get('epochs_run')} epochs and the "
            "last weights were kept (no validation hold-out; the number of epochs was chosen "
            "by the development runs in benchmarks/README.md)."
        )
    return (
        f"{len(val)} of the speakers ({', '.join(val)}) were held out of the weight updates to "
        f"pick the checkpoint (best epoch {res.get('best_epoch')} of {res.get('epochs_run')}, "
        f"validation UA {res['best_val_ua']:.1f} %)."
    )


def render_card_block(
    config: dict, metrics_rel: str, gain_rel: str, root: Path, loco_rel: str | None = None
) -> str:
    """The generated part of the card, from the bundle's config and the result files.

    Args:
        config: the bundled ``config.json``.
        metrics_rel: the cross-validated ``metrics.json`` of the same recipe (relative to root).
        gain_rel: the JSON of ``benchmarks/gain_invariance.py`` (relative to root).
        root: the repository root.
        loco_rel: for a model trained on several corpora, the leave-one-corpus-out
            ``metrics.json`` of the same recipe: the card then gets the data per corpus, the
            LOCO table per corpus (per utterance, speaker-adapted, arousal and valence where
            measured) and its robustness rows.
    """
    m = _read_json(root / metrics_rel)
    g = _read_json(root / gain_rel)
    data = config.get("data", {})
    feature = config.get("feature", {})
    res = config.get("training_result", {})
    command = " ".join(config.get("command") or ["(not recorded)"])
    val = res.get("validation_speakers") or []
    folds = m.get("folds", [])
    per_fold = ", ".join(f"{f['ua']:.1f}" for f in folds if f.get("ua") is not None)
    sources = f"metrics={metrics_rel} gain={gain_rel}" + (f" loco={loco_rel}" if loco_rel else "")
    lines = [
        _BEGIN,
        f"<!-- sources: {sources} -->",
        "<!-- rendered by `python -m emovox.pretrained card`; checked by the tests -->",
        "",
        "### Training",
        "",
        f"    {command}",
        "",
        f"- Model `{config['model']['name']}` ({_settings(config['model']['params'])}), "
        f"{config['model']['n_parameters']:,} parameters; "
        f"{len(config['labels'])} classes: {', '.join(config['labels'])}.",
        f"- Feature `{feature.get('name')}`: {_settings(feature, skip=('name',))}.",
        f"- Training settings: {_settings(config.get('training', {}))}.",
        f"- Data: {data.get('n_utterances')} utterances of {len(data.get('speakers', []))} "
        f"speakers ({', '.join(data.get('corpora', []))}); " + _selection(val, res),
        "",
        "### Cross-validated scores of this recipe",
        "",
        "| protocol | folds | utterances | UA % | WA % | macro-F1 % |",
        "|---|---|---|---|---|---|",
        f"| {m['protocol']} | {len(folds)} | {m.get('n_utterances')} | {_pm(m, 'ua')} | "
        f"{_pm(m, 'wa')} | {_pm(m, 'macro_f1')} |",
        "",
        "Mean ± standard deviation over the folds; each fold tests on speakers it never trained "
        f"on. Per-fold UA: {per_fold}; chance "
        f"{100 / len(m['labels']):.1f} %. Source: `{metrics_rel}`, made by "
        f"`{' '.join(m.get('command', []))}`.",
        "",
        "### Gain invariance",
        "",
        "| gain dB | same label as at 0 dB % | files clipped |",
        "|---|---|---|",
        *(
            f"| {r['gain_db']:+.0f} | {r['agreement']:.1f} | {r['files_clipped']} |"
            for r in g["rows"]
            if r["gain_db"] != 0
        ),
        "",
        f"On {g['files']} files. Source: `{gain_rel}`; model measured: {g['model']}.",
    ]
    if loco_rel:
        lines += _loco_sections(config, _read_json(root / loco_rel), loco_rel)
    lines.append(_END)
    return "\n".join(lines)


def _loco_sections(config: dict, loco: dict, loco_rel: str) -> list[str]:
    """The card's sections of a multi-corpus model: data per corpus, the LOCO table, robustness."""
    from emovox.data.corpora import corpus_facts

    per = config.get("data", {}).get("per_corpus", {})
    lines = [
        "",
        "### Data per corpus",
        "",
        "| corpus | language | utterances | speakers | licence |",
        "|---|---|---|---|---|",
    ]
    for corpus, n in per.items():
        f = corpus_facts(corpus)
        lines.append(
            f"| {corpus} | {f['language']} | {n['utterances']} | {n['speakers']} | "
            f"{f['licence']} |"
        )
    lines += ["", "Citations: " + "; ".join(f"{c}: {corpus_facts(c)['citation']}" for c in per)]
    lines += _loco_table(loco, loco_rel)
    conds = {k: v for k, v in (loco.get("conditions") or {}).items() if k != "clean"}
    if conds:
        lines += [
            "",
            "### Robustness (leave one corpus out, mean over the left-out corpora)",
            "",
            "| test condition | UA change (points) | labels kept % | files clipped |",
            "|---|---|---|---|",
            *(
                f"| {name} | {c['ua_delta']:+.1f} | "
                f"{c['agreement']:.1f} | {c['clipped_files']} |"
                if "agreement" in c
                else f"| {name} | {c['ua_delta']:+.1f} | – | {c['clipped_files']} |"
                for name, c in conds.items()
            ),
        ]
    return lines


def _loco_table(loco: dict, loco_rel: str) -> list[str]:
    """Each left-out corpus's scores: 4 classes and own classes per utterance, speaker-adapted
    (guarded) where measured, arousal from the dimensions head where measured."""
    per = loco.get("per_test_corpus", {})
    adapted = any("speaker_adapted_guarded" in v for v in per.values())
    dims = any("dimensions" in v for v in per.values())
    head = "| left-out corpus | 4 classes UA % | own classes UA % (classes) |"
    rule = "|---|---|---|"
    if adapted:
        head += " speaker-adapted, guarded: 4 classes UA % |"
        rule += "---|"
    if dims:
        head += " arousal low/high UA % | valence neg/pos UA % |"
        rule += "---|---|"
    lines = ["", "### Leave one corpus out", "", head, rule]
    fours: list[float | None] = []
    arousal: list[float | None] = []
    for corpus, v in per.items():
        four = v.get("four_classes", {}).get("ua")
        fours.append(four)
        own = v.get("own_classes", {})
        n_own = len(own.get("classes", []))
        row = f"| {corpus} | {_cell(four)} | {_cell(own.get('ua'))} ({n_own}) |"
        if adapted:
            a = v.get("speaker_adapted_guarded", {}).get("four_classes", {}).get("ua")
            row += f" {_cell(a)} |"
        if dims:
            signs = [sign_ua(v.get("dimensions", {}).get(d, {})) for d in ("arousal", "valence")]
            arousal.append(signs[0])
            row += "".join(f" {_cell(x)} |" for x in signs)
        lines.append(row)
    lines += [
        "",
        f"Mean 4-class UA over the left-out corpora: {_mean(fours)} % (chance 25 %)"
        + (f"; arousal low/high UA {_mean(arousal)} % (chance 50 %)" if dims else "")
        + ". Each row: a model trained on the other corpora, every test clip classified alone "
        "unless the column says speaker-adapted; a corpus without classes (BAVED's arousal "
        "levels) is scored on arousal alone. "
        f"Source: `{loco_rel}`, made by `{' '.join(loco.get('command', []))}`.",
    ]
    return lines


def _mean(values: list) -> str:
    known = [x for x in values if x is not None]
    return f"{sum(known) / len(known):.1f}" if known else "–"


def _cell(value) -> str:
    return "–" if value is None else f"{float(value):.1f}"


def _card_parts(text: str, card: Path) -> tuple[str, str, str]:
    if _BEGIN not in text or _END not in text:
        raise ValueError(f"{card}: no {_BEGIN} ... {_END} block")
    head, rest = text.split(_BEGIN, 1)
    block, tail = rest.split(_END, 1)
    return head, _BEGIN + block + _END, tail


def update_model_card(
    metrics: str | os.PathLike | None = None,
    gain: str | os.PathLike | None = None,
    root: str | os.PathLike = ".",
    model_dir: str | os.PathLike = DEFAULT_MODEL_DIR,
    loco: str | os.PathLike | None = None,
) -> Path:
    """Re-render the card's generated block from the result files (others kept as they were).

    ``metrics``/``gain``/``loco`` left out keep the sources the card already names.
    """
    root, model_dir = Path(root), Path(model_dir)
    card = model_dir / MODEL_CARD
    text = card.read_text()
    head, block, tail = _card_parts(text, card)
    old = _SOURCES.search(block)
    if (metrics is None or gain is None) and old is None:
        raise ValueError(f"{card}: names no sources; give metrics= and gain=")
    m_rel = _relative(metrics, root) if metrics is not None else old.group(1)
    g_rel = _relative(gain, root) if gain is not None else old.group(2)
    l_rel = old.group(3) if old is not None else None
    l_rel = _relative(loco, root) if loco is not None else l_rel
    config = _read_json(model_dir / CONFIG)
    atomic_write_text(card, head + render_card_block(config, m_rel, g_rel, root, l_rel) + tail)
    return card


def check_model_card(
    root: str | os.PathLike = ".", model_dir: str | os.PathLike = DEFAULT_MODEL_DIR
) -> list[str]:
    """Problems of the card against the bundle and the result files it names (empty: all good).

    Checks that the card names the licence and the RAVDESS citation, that its generated block
    equals a fresh rendering (so no number drifted from ``metrics.json``), and that the bundled
    model was trained with the recipe (model, feature, training settings, labels) that the
    metrics file evaluated.
    """
    root, model_dir = Path(root), Path(model_dir)
    card = model_dir / MODEL_CARD
    if not card.is_file():
        return [f"{card}: missing"]
    text = card.read_text()
    config = _read_json(model_dir / CONFIG)
    problems = [f"{card}: does not name {what}" for what in _must_name(config) if what not in text]
    try:
        _, block, _ = _card_parts(text, card)
    except ValueError as exc:
        return [*problems, str(exc)]
    src = _SOURCES.search(block)
    if src is None:
        return [*problems, f"{card}: the generated block names no sources"]
    metrics = _read_json(root / src.group(1))
    if block != render_card_block(config, src.group(1), src.group(2), root, src.group(3)):
        problems.append(
            f"{card}: the generated block differs from {src.group(1)} / {src.group(2)}; "
            "run `python -m emovox.pretrained card`"
        )
    if metrics.get("model") != config["model"]["name"]:
        problems.append(f"{src.group(1)}: model {metrics.get('model')!r}, bundle's is not")
    if metrics.get("labels") != config["labels"]:
        problems.append(f"{src.group(1)}: labels differ from the bundle's")
    evaluated = _hparams(config, metrics.get("model_params", {}))
    if evaluated is None or evaluated != _hparams(config, config["model"]["params"]):
        problems.append(f"{src.group(1)}: model_params differ from the bundle's")
    for key in _RECIPE_KEYS:
        a, b = dict(metrics.get(key, {})), dict(config.get(key, {}))
        if key == "feature" and a.get("fingerprint") and b.get("fingerprint"):
            # the encoder is the one with that fingerprint, wherever it lies (a carried one
            # lies inside the bundle)
            a.pop("path", None)
            b.pop("path", None)
        if key == "training":  # the seed is not part of the recipe
            # a setting added after the bundle (or the run) was made had its default then
            defaults = _training_defaults()
            a, b = defaults | a, defaults | b
            a.pop("seed", None)
            b.pop("seed", None)
        if a != b:
            diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            problems.append(f"{src.group(1)}: {key} settings differ from the bundle's: {diff}")
    return problems


def _training_defaults() -> dict:
    from emovox.train.config import TrainConfig

    return TrainConfig().to_dict()


def _must_name(config: dict) -> list[str]:
    """What a card must name: the licence of every corpus the model was trained on (that
    states one), and RAVDESS's citation when it is among them."""
    from emovox.data.corpora import corpus_facts

    corpora = config.get("data", {}).get("corpora") or ["ravdess"]
    out = []
    for corpus in corpora:
        licence = corpus_facts(corpus)["licence"]
        if licence not in ("unknown", "none stated") and licence not in out:
            out.append(licence)
    if "ravdess" in corpora:
        out.append(CITATION_DOI)
    return out


def _hparams(config: dict, params: dict) -> dict | None:
    """All hyper-parameters of the bundle's architecture built with ``params`` (defaults filled
    in: ``metrics.json`` keeps only the overrides, ``config.json`` all); ``None`` if it fails."""
    from emovox.models import build_model

    spec = config["model"]
    try:
        net = build_model(spec["name"], len(config["labels"]), spec["in_shape"], **params)
    except (ValueError, TypeError):
        return None
    return json.loads(json.dumps(net.hparams))  # tuples -> lists


def install_default_model(
    bundle_dir: str | os.PathLike,
    metrics: str | os.PathLike | None = None,
    gain: str | os.PathLike | None = None,
    root: str | os.PathLike = ".",
    model_dir: str | os.PathLike = DEFAULT_MODEL_DIR,
    loco: str | os.PathLike | None = None,
    carry_encoder: bool = False,
) -> Path:
    """Copy a trained bundle's two files into the package and re-render the card (with its
    leave-one-corpus-out sections when ``loco`` names that run).

    The bundle is loaded first (a broken one is refused) and its size checked against
    :data:`MAX_MODEL_BYTES`. Run from a source checkout: the package folder is then the one the
    next wheel ships. With ``carry_encoder``, the pretrained encoder the bundle's feature reads
    is copied too (``encoder/<its folder name>``, counted in the size) and the feature's path
    made relative to it: the shipped model then needs nothing from the user's machine.

    Raises:
        BundleError: the bundle does not load, is too large, or has no encoder to carry.
    """
    src, dst = Path(bundle_dir), Path(model_dir)
    bundle = load_bundle(src)
    config = bundle.config  # as read from the bundle's config.json
    encoder = None
    if carry_encoder:
        encoder = getattr(bundle.feature, "folder", None)
        if not isinstance(encoder, Path):
            raise BundleError(f"{src}: its feature reads no pretrained encoder to carry")
        config["feature"]["path"] = f"{ENCODER_DIR}/{encoder.name}"
    size = sum((src / n).stat().st_size for n in (WEIGHTS, CONFIG))
    size += model_size(encoder) if encoder is not None else 0
    if size > MAX_MODEL_BYTES:
        raise BundleError(
            f"{src}: {size / 1e6:.1f} MB, over the {MAX_MODEL_BYTES / 1e6:.0f} MB limit"
        )
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / WEIGHTS, dst / WEIGHTS)
    atomic_write_text(dst / CONFIG, json.dumps(config, indent=2) + "\n")
    shutil.rmtree(dst / ENCODER_DIR, ignore_errors=True)  # the replaced model's
    if encoder is not None:
        shutil.copytree(encoder, dst / ENCODER_DIR / encoder.name)
    stale = dst / INT8_FILE
    if stale.is_file():  # exported from the weights just replaced
        stale.unlink()
    update_model_card(metrics, gain, root=root, model_dir=dst, loco=loco)
    return dst
