"""A recipe: the model, its parameters, its feature and its training settings, as one value.

Built once (from Python with :meth:`Recipe.for_model`, from the command line by its option
parser) and passed whole to training and evaluation, which never take the four apart again.
"""

from __future__ import annotations

import dataclasses

from emovox.features import Feature, make_feature
from emovox.models import SERModel, build_model, model_class
from emovox.train.config import TrainConfig


def default_feature(model: str, **overrides) -> Feature:
    """The feature a model is designed for, with ``overrides`` applied."""
    params = dict(model_class(model).default_feature)
    params.update(overrides)
    return make_feature(params.pop("name"), **params)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides what is trained.

    Attributes:
        model: the registered model name.
        feature: the feature the model reads.
        training: the training settings.
        params: the model's constructor arguments (besides classes and input shape).
    """

    model: str
    feature: Feature
    training: TrainConfig
    params: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def for_model(
        cls,
        model: str,
        *,
        params: dict | None = None,
        feature: Feature | dict | None = None,
        training: TrainConfig | dict | None = None,
    ) -> Recipe:
        """The model's own recipe, with what is given instead.

        Args:
            model: a registered model name.
            params: the model's parameters.
            feature: a feature, or overrides of the model's default feature's parameters.
            training: training settings, or overrides of the model's default ones.

        Raises:
            ValueError: an unknown model, feature parameter or training setting.
        """
        model_cls = model_class(model)
        if not isinstance(feature, Feature):
            feature = default_feature(model, **(feature or {}))
        if not isinstance(training, TrainConfig):
            try:
                training = TrainConfig.for_model(model_cls, **(training or {}))
            except TypeError as exc:
                raise ValueError(f"unknown training setting: {exc}") from exc
        return cls(model, feature, training, dict(params or {}))

    def build(self, n_classes: int, in_shape: tuple[int, int]) -> SERModel:
        """A fresh, untrained model of this recipe (with the dimensions head when the training
        settings ask for ``dimensions``)."""
        model = build_model(self.model, n_classes, in_shape, **self.params)
        if self.training.dimensions:
            model.attach_dimensions(seed=self.training.seed)
        return model

    def with_training(self, **changes) -> Recipe:
        """The same recipe with some training settings changed."""
        return dataclasses.replace(self, training=dataclasses.replace(self.training, **changes))

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "model_params": self.params,
            "feature": self.feature.to_dict(),
            "training": self.training.to_dict(),
        }


def as_recipe(recipe: Recipe | str) -> Recipe:
    """A recipe, or a model name standing for its own recipe."""
    return recipe if isinstance(recipe, Recipe) else Recipe.for_model(recipe)
