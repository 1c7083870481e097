"""Training: the recipe, datasets of features, the gradient trainer and the pipeline that turns
a manifest into a saved model bundle.

The public names of emovox 0.1's ``emovox.training`` (an alias of this package) are here too.
"""

from emovox.inference.predict import (
    crop_frames,
    crop_windows,
    model_device,
    multi_crop_proba,
    pad_batch,
    predict_logits,
    predict_proba,
)
from emovox.train.aux import aux_labels, embed_dim, make_aux_heads
from emovox.train.batches import lr_at, random_crop, spec_augment
from emovox.train.config import AUX_TARGETS, TrainConfig, resolve_device
from emovox.train.ema import WeightEMA
from emovox.train.fitting import fit_arrays
from emovox.train.pipeline import fit, train
from emovox.train.recipe import Recipe, default_feature
from emovox.train.trainer import Trainer, TrainingInterrupted, TrainResult

__all__ = [
    "AUX_TARGETS",
    "Recipe",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "WeightEMA",
    "aux_labels",
    "crop_frames",
    "crop_windows",
    "default_feature",
    "embed_dim",
    "fit",
    "fit_arrays",
    "lr_at",
    "make_aux_heads",
    "model_device",
    "multi_crop_proba",
    "pad_batch",
    "predict_logits",
    "predict_proba",
    "random_crop",
    "resolve_device",
    "spec_augment",
    "train",
]
