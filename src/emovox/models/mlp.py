"""``encoder-mlp``: a small network on a pretrained encoder's pooled layer.

The frozen-encoder recipe with a hidden layer instead of the linear probe of ``encoder-lr``: the
pooled summary of the encoder's layers (``encoder-pooled``: mean and standard deviation over the
utterance) is standardised with statistics fitted in closed form on the training clips
(:meth:`EncoderMLP.fit_closed_form`), then a dropout, one hidden layer and the classifier are
trained by the gradient trainer with everything it offers: corpus-balanced draws, per-corpus
class masks, the arousal/valence head (the hidden layer is the utterance embedding), augmented
copies, early stopping on the validation speakers, a teacher's soft targets.

A clip is scored alone: one matrix product on its pooled vector after the encoder.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from emovox.models.base import ClosedFormFit, Corpora, EmbeddingModel, Split, every_variant
from emovox.models.linear import frame_mean, standardize_stats
from emovox.models.svm import pool_utterances

MLP_TRAINING: dict = {
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-2,
    "schedule": "onecycle",
    "batch_size": 64,
    "epochs": 40,
    "patience": 10,
    "crop_seconds": None,  # one pooled vector per clip: nothing to crop
    "specaugment": False,
    "mixup": 0.0,
    "label_smoothing": 0.05,
    "val_fraction": 0.2,
}
"""Training settings of ``encoder-mlp``: whole clips, no spectrogram augmentation."""


class EncoderMLP(EmbeddingModel):
    """``encoder-mlp``: standardised pooled encoder layer -> dropout -> ``hidden`` GELU units
    (the embedding) -> dropout -> classes.

    Args:
        n_classes: emotion classes.
        in_shape: ``(streams, bins)`` of the feature (pooled over ``T`` frames, any ``T``).
        hidden: width of the hidden layer (the utterance embedding).
        dropout: dropout before the classifier.
        input_dropout: dropout on the standardised input.
    """

    name: ClassVar[str] = "encoder-mlp"
    default_feature: ClassVar[dict] = {"name": "encoder-pooled"}
    default_training: ClassVar[dict] = MLP_TRAINING

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        hidden: int = 256,
        dropout: float = 0.3,
        input_dropout: float = 0.2,
    ) -> None:
        if int(hidden) < 1:
            raise ValueError(f"hidden must be a positive width, not {hidden}")
        for label, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= float(p) < 1.0:
                raise ValueError(f"{label} must be in [0, 1), not {p}")
        super().__init__(
            n_classes, in_shape, hidden=int(hidden), dropout=float(dropout),
            input_dropout=float(input_dropout),
        )  # fmt: skip
        dim = int(np.prod(in_shape))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.hidden = nn.Sequential(
            nn.Dropout(float(input_dropout)), nn.Linear(dim, int(hidden)), nn.GELU()
        )
        self.make_head(int(hidden), float(dropout))

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, S, F, T]`` -> ``[B, hidden]``: the frame mean, standardised, through the layer."""
        return self.hidden((frame_mean(x, mask) - self.mean) / self.scale)

    def fit_closed_form(
        self,
        train: Split,
        val: Split | None = None,
        progress: bool = True,
        corpora: Corpora | None = None,
    ) -> ClosedFormFit:
        """The standardisation: mean and standard deviation of every input value over the
        training clips (before the gradient trainer fits the layers)."""
        rows, _ = every_variant(*train)
        mean, scale = standardize_stats(pool_utterances(rows).astype(np.float64))
        self.mean.copy_(torch.from_numpy(mean).float())
        self.scale.copy_(torch.from_numpy(scale).float())
        return ClosedFormFit(history=[])
