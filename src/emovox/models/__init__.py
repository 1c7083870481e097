"""Model registry. A new model is one new module and one line in :data:`MODELS`."""

from __future__ import annotations

from emovox.models.base import SERModel
from emovox.models.cnn import CNN
from emovox.models.conformer import Conformer
from emovox.models.crnn import CRNN
from emovox.models.ensemble import Ensemble, ensemble_of
from emovox.models.fusion import CNNEGeMAPS, CNNFunctionals, CNNFunctionalsEGeMAPS
from emovox.models.logistic import EncoderLR
from emovox.models.mlp import EncoderMLP
from emovox.models.resnet import ResNet
from emovox.models.svm import EGeMAPSSVM, EncoderSVM, LibrosaStatsSVM
from emovox.models.timnet import TIMNet
from emovox.models.tutorial_cnn1d import TutorialCNN1D

MODELS: dict[str, type[SERModel]] = {
    "tutorial-cnn1d": TutorialCNN1D,
    "cnn": CNN,
    "egemaps-svm": EGeMAPSSVM,
    "librosa-stats-svm": LibrosaStatsSVM,
    "encoder-svm": EncoderSVM,
    "encoder-lr": EncoderLR,
    "encoder-mlp": EncoderMLP,
    "resnet": ResNet,
    "crnn": CRNN,
    "conformer": Conformer,
    "timnet": TIMNet,
    "cnn-x2": ensemble_of(CNN, 2),
    "cnn-egemaps": CNNEGeMAPS,
    "cnn-functionals": CNNFunctionals,
    "cnn-functionals-egemaps": CNNFunctionalsEGeMAPS,
}


def model_class(name: str) -> type[SERModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None


def build_model(name: str, n_classes: int, in_shape: tuple[int, int], **hparams) -> SERModel:
    """Instantiate the model registered as ``name``."""
    cls = model_class(name)
    try:
        return cls(n_classes, tuple(in_shape), **hparams)
    except TypeError as exc:
        raise ValueError(f"bad parameters for model {name!r}: {exc}") from exc


__all__ = ["MODELS", "Ensemble", "SERModel", "build_model", "model_class"]
