"""The model contract: what every registered model has, and the abilities a model may declare.

A model is a ``torch.nn.Module`` that maps features ``[B, S, F, T]`` (streams, bins, frames) and an
optional frame mask ``[B, T]`` to class logits ``[B, n_classes]``. Each model names the feature and
training settings it works best with; both can be overridden. Its constructor arguments
(``hparams``) are saved in the bundle's ``config.json`` so that it can be rebuilt without pickle.

Every model has (and the pipeline, the evaluation and the recognizer rely on nothing else):

- ``name``, ``default_feature``, ``default_training`` (class attributes), ``n_classes``,
  ``in_shape``, ``hparams``, :meth:`forward`, :attr:`n_parameters`;

and answers these questions, whose defaults here say "a plain network":

- :meth:`gradient_part`: which network the gradient trainer fits, and which part of the input it
  reads (``self`` and all of it by default; ``None`` for a model fitted in closed form only);
- :meth:`fit_closed_form`: what is fitted in closed form before any gradient training (an SVM,
  a fusion's logistic regression); nothing by default. With ``trains_on_variants`` it receives
  every training item as a tuple of its augmented variants; it is also given each training and
  validation item's corpus (``corpora``), for choices that hold a corpus out;
- :meth:`fit_dimensions`: the arousal and valence head fitted in closed form (a regression's),
  after :meth:`fit_closed_form`, on every training item with a dimension target (items without
  a class among them); ``None`` by default (the gradient trainer fits a network's head);
- :meth:`trained_members`: separately trained members (an ensemble), each trained with its own
  seed and loaded into the module given; none by default;
- :meth:`components`: the parts of a fusion, each a model of the same input, for ablations;
  none by default;
- :meth:`embed` and :meth:`forward_with_embedding`: an utterance embedding (what auxiliary heads
  read), for models that have one (:class:`EmbeddingModel`); :meth:`supports_embedding` says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

LOGMEL_FEATURE: dict = {
    "name": "logmel",
    "n_mels": 64,
    "normalize": "utterance",
    "trim_db": 40.0,
    "amin": 1e-20,  # only the per-utterance top_db floor: gain-invariant on quiet audio
}
"""The gain-invariant log-mel that ``cnn`` and the other log-mel models are designed for."""

TRAINING_RECIPE: dict = {
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 1e-2,
    "schedule": "onecycle",
    "batch_size": 32,
    "epochs": 45,
    "patience": 20,
    "crop_seconds": 1.5,
    "specaugment": True,
    "mixup": 0.2,
    "label_smoothing": 0.05,
}
"""``cnn``'s training settings, the starting point of the other networks' recipes."""


Split = tuple[Sequence, Sequence[int]]
"""Items (feature arrays, or tuples of variants) and their class indices."""

DimensionSplit = tuple[Sequence, np.ndarray]
"""Items (feature arrays, or tuples of variants) and their ``[N, 2]`` arousal and valence
targets (NaN: unknown; :func:`emovox.train.aux.dimension_targets`)."""

Corpora = tuple[Sequence[str], Sequence[str] | None]
"""The corpus of each training item and of each validation item (``None``: no validation)."""


@dataclasses.dataclass
class GradientPart:
    """The network a model's gradient training fits, and what of each input it reads.

    Attributes:
        module: the network (a :class:`SERModel` itself: it has ``n_classes`` and ``in_shape``).
        inputs: maps one feature array ``[S, F, T]`` of the whole model to the network's input
            (identity when ``None``).
    """

    module: SERModel
    inputs: Callable[[np.ndarray], np.ndarray] | None = None

    def prepare(self, items: Sequence | None) -> list | None:
        """The network's inputs of training items (arrays, or tuples of variants; a mapped
        tuple of one variant becomes that array)."""
        if items is None or self.inputs is None:
            return None if items is None else list(items)
        f = self.inputs
        out = [tuple(f(v) for v in x) if isinstance(x, tuple) else (f(x),) for x in items]
        return [vs[0] if len(vs) == 1 else vs for vs in out]


@dataclasses.dataclass
class ClosedFormFit:
    """What :meth:`SERModel.fit_closed_form` did: its history rows (``epoch`` numbers the grid
    points of a search), the row chosen and the validation UA (%) it scored, if any."""

    history: list[dict] = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    best_val_ua: float | None = None


class SERModel(nn.Module):
    """Base class of registered models (see the module's description for the contract)."""

    name: ClassVar[str] = ""
    default_feature: ClassVar[dict] = {"name": "logmel"}
    default_training: ClassVar[dict] = {}
    trains_on_variants: ClassVar[bool] = False
    """Whether :meth:`fit_closed_form` receives each training item as a tuple of variants (the
    original first, then its augmented copies) rather than the original alone."""

    def __init__(self, n_classes: int, in_shape: tuple[int, int], **hparams) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.in_shape = tuple(in_shape)
        self.hparams = dict(hparams)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- abilities ----------------------------------------------------------------------------
    def gradient_part(self) -> GradientPart | None:
        """The network the gradient trainer fits (this whole model by default)."""
        return GradientPart(self)

    def fit_closed_form(
        self,
        train: Split,
        val: Split | None = None,
        progress: bool = True,
        corpora: Corpora | None = None,
    ) -> ClosedFormFit | None:
        """Fit what this model fits in closed form on ``train`` (choices made on ``val``, or,
        for a model that can, by holding each of the training ``corpora`` out in turn), before
        any gradient training; ``None`` when there is nothing (the default)."""
        return None

    def fit_dimensions(
        self, train: DimensionSplit, val: DimensionSplit | None = None
    ) -> dict | None:
        """Fit the dimensions head in closed form on ``train`` (choices made on ``val``) and
        say how (a dict of numbers for the training history); ``None`` when this model's head,
        if any, is left to the gradient trainer (the default)."""
        return None

    def trained_members(self) -> list[tuple[str, dict, nn.Module]]:
        """``(registered name, parameters, module)`` of each separately trained member; the
        pipeline trains member ``k`` with seed ``+ k`` and loads its weights into the module."""
        return []

    def components(self) -> dict[str, nn.Module]:
        """Each part of a fusion as a model of the same input (for ablations); none here."""
        return {}

    @classmethod
    def supports_embedding(cls) -> bool:
        """Whether the model has :meth:`embed` (auxiliary heads need it)."""
        return cls.embed is not SERModel.embed

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The utterance embedding ``[B, embed_dim]`` (models that have one)."""
        raise NotImplementedError(f"model {self.name!r} has no utterance embedding")

    def forward_with_embedding(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the embedding they were computed from, in one pass."""
        emb = self.embed(x, mask)
        return self(x, mask), emb

    # -- continuous dimensions (arousal, valence) ----------------------------------------------
    def attach_dimensions(self, n: int = 2, seed: int = 0) -> None:
        """Add the dimensions head: a linear layer from the embedding to ``n`` scores, squashed
        into [-1, 1] (:meth:`dimensions_from`). Its weights (``dimensions.weight``/``.bias``)
        are part of the model's state, so bundles and ONNX files carry it. Initialised from
        ``seed`` without touching the global random state.

        Raises:
            ValueError: the model has no utterance embedding.
        """
        if not self.supports_embedding():
            raise ValueError(
                f"model {self.name!r} has no embed(x, mask) method, which the arousal and "
                "valence head (dimensions) needs; train it without dimensions"
            )
        width = embedding_width(self)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 104729)
            self.add_module("dimensions", nn.Linear(width, n))

    def has_dimensions(self) -> bool:
        """Whether the model has the dimensions head (:meth:`attach_dimensions`)."""
        return "dimensions" in self._modules

    def dimensions_from(self, emb: torch.Tensor) -> torch.Tensor:
        """The dimension scores ``[B, n]`` in [-1, 1] of embeddings ``[B, embed_dim]``."""
        head = self._modules["dimensions"]
        return torch.tanh(head(emb.to(head.weight.dtype)))

    def forward_with_dimensions(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and dimension scores in one pass (a model with the dimensions head)."""
        logits, emb = self.forward_with_embedding(x, mask)
        return logits, self.dimensions_from(emb)


class EmbeddingModel(SERModel):
    """A network that pools an utterance embedding and classifies it: ``forward`` is
    ``classifier(dropout(embed(x, mask)))``. Subclasses define :meth:`embed` and call
    :meth:`make_head` with the embedding's width. Their default recipe: the gain-invariant
    log-mel and ``cnn``'s training settings (a subclass overrides what differs)."""

    default_feature: ClassVar[dict] = LOGMEL_FEATURE
    default_training: ClassVar[dict] = TRAINING_RECIPE
    embed_dim: int

    def make_head(self, embed_dim: int, dropout: float) -> None:
        """The dropout and the linear classifier on an embedding of ``embed_dim`` values."""
        self.embed_dim = embed_dim
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, self.n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(x, mask)))

    def forward_with_embedding(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embed(x, mask)
        return self.classifier(self.dropout(emb)), emb


def variant_counts(items: Sequence) -> list[int]:
    """How many rows each training item gives: a tuple of variants one per variant, a plain
    array one."""
    return [len(a) if isinstance(a, (list, tuple)) else 1 for a in items]


def every_variant(items: Sequence, y: Sequence[int]) -> tuple[list[np.ndarray], np.ndarray]:
    """Training items as rows (a closed-form fit with ``trains_on_variants``): each variant of
    a tuple an item of its own with the tuple's label (the original first); a plain array stays
    one row."""
    rows = [v for a in items for v in (a if isinstance(a, (list, tuple)) else (a,))]
    return rows, np.repeat(np.asarray(y, dtype=int), variant_counts(items))


def embedding_width(model: SERModel) -> int:
    """The width of ``model.embed(x, mask)``: ``model.embed_dim``, or measured on a dummy input.

    Raises:
        ValueError: the model has no ``embed`` method.
    """
    if not model.supports_embedding():
        raise ValueError(f"model {getattr(model, 'name', type(model).__name__)!r} has no embed")
    dim = getattr(model, "embed_dim", None)
    if isinstance(dim, int):
        return dim
    was_training = model.training
    model.eval()
    with torch.no_grad():
        s, f = model.in_shape
        out = model.embed(torch.zeros(1, s, f, 64), torch.ones(1, 64, dtype=torch.bool))
    model.train(was_training)
    return int(out.shape[-1])


def constructor_args(scope: dict) -> dict:
    """A model constructor's own arguments from its ``locals()`` (without ``self``, the classes
    and the input shape): the ``hparams`` it saves."""
    skip = {"self", "n_classes", "in_shape", "__class__"}
    return {k: v for k, v in scope.items() if k not in skip}


def masked_mean_max(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean and max over the last axis of ``[B, C, T]``, ignoring frames where ``mask`` is False."""
    if mask is None:
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)
    m = mask[:, None, :].to(x.dtype)
    mean = (x * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    mx = x.masked_fill(~mask[:, None, :], torch.finfo(x.dtype).min).amax(dim=-1)
    return torch.cat([mean, mx], dim=1)


def downsample_mask(mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """Shrink a ``[B, T]`` mask to ``length`` frames (a frame counts if any source frame did)."""
    if mask is None:
        return None
    if mask.shape[-1] == length:
        return mask
    pooled = nn.functional.adaptive_max_pool1d(mask[:, None, :].float(), length)
    return pooled[:, 0] > 0
