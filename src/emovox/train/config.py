"""Training settings: one :class:`TrainConfig` value, validated once, saved with every model.

Settings arrive typed (``bool``, numbers, sequences of names); reading the command line's
``KEY=VALUE`` text is the command line's job (:mod:`emovox.apps.cli.parsing`).
"""

from __future__ import annotations

import dataclasses
import math
import re

import torch

from emovox.models.base import SERModel

OPTIMIZERS = ("adam", "adamw")

SCHEDULES = ("constant", "onecycle", "cosine")

PRECISIONS = ("fp32", "bf16")

AUX_TARGETS: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male"),
    "intensity": ("normal", "strong"),
}
"""Auxiliary targets (``TrainConfig.aux_targets``) -> their classes. ``gender`` is the manifest's
column; ``intensity`` is the corpus field of that name (RAVDESS). Other values count as unknown."""


@dataclasses.dataclass
class TrainConfig:
    """Training settings; every field is saved with the model and in ``metrics.json``."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    patience: int = 10
    crop_seconds: float | None = 2.0
    specaugment: bool = True
    mixup: float = 0.0
    label_smoothing: float = 0.0
    speed_perturb: tuple[float, ...] = ()
    augment: tuple[str, ...] = ()
    """Waveform augmentations among :data:`emovox.augment.AUGMENT_KINDS` (a tuple, or a comma-
    separated string) for the ``augment_copies`` extra copies of every training file."""
    augment_copies: int = 0
    """How many randomly augmented copies of each file join its variants (one drawn per epoch)."""
    balance: bool = True
    """Weigh the emotion loss by inverse class frequency (of the items an epoch draws)."""
    corpus_balance: bool = False
    """Draw each epoch's items (with replacement, as many as there are) so that every training
    corpus gets an equal share and, within a corpus, every class of it: a small corpus is not
    drowned by large ones. Without it every item is seen once per epoch."""
    corpus_weights: dict[str, float] = dataclasses.field(default_factory=dict)
    """With ``corpus_balance``: relative shares of the named corpora in each epoch's draws (a
    corpus not named weighs 1), e.g. ``{"ravdess": 3}`` gives RAVDESS three times the share of
    each other corpus, for a model meant for one corpus's domain (a dict, or the text
    ``"ravdess:3,emodb:0.5"``)."""
    val_by_corpus: bool = False
    """Choose the best epoch on the mean of each validation corpus's UA rather than on the UA
    of all validation items pooled, so that the largest corpus does not choose for the rest."""
    val_corpus: str = ""
    """Choose the best epoch on the validation speakers of this corpus alone (empty: on all of
    them), for a model meant for that corpus's domain; the other corpora's validation UAs are
    still recorded (``val_ua@<corpus>`` in the history)."""
    val_fraction: float = 0.2
    seed: int = 0
    ema: float = 0.0
    """Decay of an exponential moving average of the weights (0: off). When on, validation, the
    best checkpoint and the final model use the averaged weights."""
    aux_targets: tuple[str, ...] = ()
    """Auxiliary tasks among :data:`AUX_TARGETS` (a tuple, or a comma-separated string)."""
    aux_weight: float = 0.3
    """Weight of each auxiliary head's loss, added to the emotion loss."""
    dimensions: bool = False
    """Also learn arousal and valence in [-1, 1]: a head on the model's embedding, trained on
    each emotion's place on the circumplex (:data:`emovox.data.taxonomy.CIRCUMPLEX`) and on
    arousal levels where a corpus labels them; it is saved with the model and every prediction
    then carries both scores."""
    dimensions_weight: float = 0.5
    """Weight of the dimensions head's squared error, added to the emotion loss."""
    dimension_rows: bool = True
    """With ``dimensions``: also train the head on the rows the labels drop whose arousal or
    valence is known (BAVED's levels, EmoDB's boredom), as rows without a class. ``false``
    trains the head on the classified rows alone (an ablation of that lever)."""
    corpus_adversary: float = 0.0
    """Domain-adversarial training against the corpus (0: off): a classifier learns the training
    items' corpus from the embedding behind a gradient reversal whose scale rises to this value
    (:mod:`emovox.train.adversary`), pushing the network towards an embedding that does not
    tell the corpora apart. Needs two or more training corpora and a model with ``embed``."""
    consistency: float = 0.0
    """Weight of a consistency loss between two views of each training item (0: off; needs
    variants, i.e. ``augment_copies`` or ``speed_perturb``). Each step then takes half a batch of
    items, each in two different variants (the same crop of both), so that a step and an epoch
    cost what they cost without it; the Jensen-Shannon divergence between the two views' class
    probabilities joins the emotion loss with this weight (AugMix's consistency term, with two
    views; under ``mixup`` both views are mixed with the same partner and weight): the network
    learns to give a clip the same answer whatever the microphone did."""
    teacher: str = ""
    """A teacher model to distil (:mod:`emovox.train.distill`): a bundle, or in an evaluation the
    results folder of the teacher's run of the same protocol (each fold takes the fold model
    tested on its speakers). Its probabilities on each training file become soft targets."""
    distill: float = 0.0
    """Weight in [0, 1] of the teacher's soft targets in the emotion loss (0: off): the loss is
    ``(1 - distill)`` times the cross-entropy with the labels plus ``distill`` times the
    cross-entropy with the teacher's probabilities. Needs ``teacher``."""
    distill_temperature: float = 1.0
    """Temperature of the distillation term: the student's logits are divided by it and the
    teacher's probabilities raised to its inverse (softer targets above 1)."""
    distill_unlabelled: bool = False
    """Also learn the teacher's answers, over every class, on the training rows without a class
    (those kept for the dimensions head: BAVED's arousal levels, EmoDB's boredom): voices and
    languages whose emotions no label names. Needs ``distill``."""
    test_crops: int = 1
    """Average the softmax over this many evenly spaced ``crop_seconds`` windows at prediction."""
    speaker_norm: bool = False
    """Normalise features per bin by each speaker's own mean and std (see
    :mod:`emovox.features.normalization`)."""
    precision: str = "fp32"
    """``fp32``, or ``bf16``: forward passes under bfloat16 autocast (weights, optimiser and loss
    stay in float32). Several times faster on CPUs with AMX or AVX-512 BF16 and on recent GPUs;
    slower on CPUs without them. Prediction always runs in float32."""
    channels_last: bool = False
    """Keep 4-D activations in channels-last memory order while training (same arithmetic;
    often faster for 2-D convolutions on CPU). The saved weights are unaffected."""
    device: str = "cpu"
    """Where the network trains: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (CUDA when
    available). Batches are drawn on the CPU exactly as there, so the run differs from a CPU run
    only by the device's arithmetic; the trained model is always returned on the CPU."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        self.speed_perturb = tuple(float(s) for s in self.speed_perturb)
        if any(s <= 0 for s in self.speed_perturb):
            raise ValueError("speed_perturb factors must be positive")
        self._check_augment()
        self._check_corpus_options()
        self._check_options()

    @property
    def keeps_dimension_rows(self) -> bool:
        """Whether training keeps the rows without a class for the dimensions head."""
        return self.dimensions and self.dimension_rows

    def _check_options(self) -> None:
        """Validate (and normalise) ``ema``, ``aux_targets``, ``aux_weight``, ``test_crops`` and
        ``speaker_norm``."""
        self.ema = float(self.ema)
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be a decay in [0, 1) (0: off), not {self.ema}")
        targets = _names("aux_targets", self.aux_targets)
        self.aux_targets = tuple(dict.fromkeys(str(t) for t in targets))
        unknown = [t for t in self.aux_targets if t not in AUX_TARGETS]
        if unknown:
            raise ValueError(f"aux_targets {unknown} unknown; choose among {sorted(AUX_TARGETS)}")
        self.aux_weight = float(self.aux_weight)
        if self.aux_weight < 0:
            raise ValueError("aux_weight must be >= 0")
        self.dimensions = _flag("dimensions", self.dimensions)
        self.dimensions_weight = float(self.dimensions_weight)
        if not self.dimensions_weight >= 0:
            raise ValueError("dimensions_weight must be >= 0")
        self.dimension_rows = _flag("dimension_rows", self.dimension_rows)
        self.corpus_adversary = float(self.corpus_adversary)
        if not self.corpus_adversary >= 0:
            raise ValueError("corpus_adversary must be >= 0 (0: off)")
        self.consistency = float(self.consistency)
        if not self.consistency >= 0:
            raise ValueError("consistency must be >= 0 (0: off)")
        if self.consistency > 0 and not (self.augment_copies or self.speed_perturb):
            raise ValueError(
                "consistency compares two variants of each item: it needs augment_copies >= 1 "
                "or speed_perturb"
            )
        self._check_distill()
        if isinstance(self.test_crops, bool) or int(self.test_crops) != self.test_crops:
            raise ValueError(f"test_crops must be a whole number, not {self.test_crops!r}")
        self.test_crops = int(self.test_crops)
        if self.test_crops < 1:
            raise ValueError("test_crops must be >= 1")
        if self.test_crops > 1 and self.crop_seconds is None:
            raise ValueError("test_crops > 1 needs crop_seconds (the length of each window)")
        self.speaker_norm = _flag("speaker_norm", self.speaker_norm)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        self.channels_last = _flag("channels_last", self.channels_last)
        self.device = str(self.device).strip().lower()
        if not re.fullmatch(r"cpu|auto|mps|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be cpu, cuda, cuda:N, mps or auto, not {self.device!r}")

    def _check_distill(self) -> None:
        """Validate (and normalise) ``teacher``, ``distill`` and ``distill_temperature``."""
        self.teacher = str(self.teacher or "")
        self.distill = float(self.distill)
        if not 0.0 <= self.distill <= 1.0:
            raise ValueError(f"distill must be a weight in [0, 1] (0: off), not {self.distill}")
        if self.distill > 0 and not self.teacher:
            raise ValueError("distill needs teacher (a bundle or a results folder to learn from)")
        if self.teacher and self.distill == 0:
            raise ValueError("teacher is given but distill is 0: give its weight (e.g. 0.5)")
        self.distill_temperature = float(self.distill_temperature)
        if not self.distill_temperature > 0:
            raise ValueError("distill_temperature must be > 0")
        self.distill_unlabelled = _flag("distill_unlabelled", self.distill_unlabelled)
        if self.distill_unlabelled and self.distill == 0:
            raise ValueError("distill_unlabelled needs distill (the teacher's weight)")

    def _check_corpus_options(self) -> None:
        """Validate (and normalise) ``corpus_weights`` and ``val_corpus``."""
        self.corpus_weights = _weights("corpus_weights", self.corpus_weights)
        if self.corpus_weights and not self.corpus_balance:
            raise ValueError("corpus_weights shares out corpus-balanced draws: it needs "
                             "corpus_balance=true")
        self.val_corpus = str(self.val_corpus).strip().lower()
        if self.val_corpus and self.val_by_corpus:
            raise ValueError("val_corpus and val_by_corpus are two rules for the best epoch: "
                             "choose one")

    def _check_augment(self) -> None:
        """Validate (and normalise) ``augment`` and ``augment_copies``."""
        from emovox.augment import AUGMENT_KINDS, check_kinds

        self.augment = check_kinds(_names("augment", self.augment))
        copies = self.augment_copies
        if isinstance(copies, bool) or int(copies) != copies or copies < 0:
            raise ValueError(f"augment_copies must be a whole number >= 0, not {copies!r}")
        self.augment_copies = int(copies)
        if self.augment and not self.augment_copies:
            raise ValueError(
                f"augment={','.join(self.augment)} needs augment_copies >= 1 (how many "
                f"augmented copies of each file to train on)"
            )
        if self.augment_copies and not self.augment:
            raise ValueError(
                "augment_copies needs augment (a comma list of "
                f"{', '.join(AUGMENT_KINDS)})"
            )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["speed_perturb"] = list(self.speed_perturb)
        d["augment"] = list(self.augment)
        d["aux_targets"] = list(self.aux_targets)
        d["corpus_weights"] = dict(self.corpus_weights)
        return d

    @classmethod
    def for_model(cls, model_cls: type[SERModel], **overrides) -> TrainConfig:
        """The model's recommended settings, with ``overrides`` (``None`` values ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        params = {k: v for k, v in model_cls.default_training.items() if k in fields}
        params.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**params)


def _flag(name: str, value) -> bool:
    """A true/false setting.

    Raises:
        ValueError: anything but a bool (the setting named).
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


def _weights(name: str, value) -> dict[str, float]:
    """A mapping of corpus names to positive weights, from a dict or ``"a:2,b:0.5"``.

    Raises:
        ValueError: a malformed item, a weight that is not a positive number (item named).
    """
    if isinstance(value, str):
        pairs = []
        for item in (p.strip() for p in value.split(",")):
            if not item:
                continue
            key, sep, number = item.partition(":")
            if not sep:
                raise ValueError(f"{name}: expected CORPUS:WEIGHT, got {item!r}")
            pairs.append((key, number))
        value = dict(pairs)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must map corpus names to weights, not {value!r}")
    out = {}
    for key, weight in value.items():
        try:
            w = float(weight)
        except (TypeError, ValueError):
            w = float("nan")
        if isinstance(weight, bool) or not w > 0 or not math.isfinite(w):
            raise ValueError(f"{name}: the weight of {key!r} must be a positive number, "
                             f"not {weight!r}")
        out[str(key).strip().lower()] = w
    return dict(sorted(out.items()))


def _names(name: str, value) -> tuple:
    """A setting that is a sequence of names (not one string).

    Raises:
        ValueError: a string or anything else that is not a list or tuple.
    """
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of names, not {value!r}")
    return tuple(value)


def resolve_device(name: str) -> torch.device:
    """The torch device for :attr:`TrainConfig.device` (``auto``: CUDA when available).

    Raises:
        ValueError: the device is not available on this machine (named in the message).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but torch sees no CUDA GPU here")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for, but torch sees no Apple GPU here")
    return dev
