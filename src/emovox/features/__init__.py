"""Feature registry. A new feature is one new module and one line in :data:`FEATURES`."""

from __future__ import annotations

import dataclasses
import math

from emovox.features.base import Feature
from emovox.features.cache import FeatureCache, extract_files
from emovox.features.egemaps import EGeMAPS
from emovox.features.encoder import Encoder, EncoderPooled
from emovox.features.functionals import Functionals, LogMelFunctionals
from emovox.features.librosa_stats import LibrosaStats
from emovox.features.logmel import MFCC, LogMel
from emovox.features.logmel_egemaps import LogMelEGeMAPS, LogMelFunctionalsEGeMAPS
from emovox.features.tutorial import TutorialMFCC

FEATURES: dict[str, type[Feature]] = {
    "logmel": LogMel,
    "mfcc": MFCC,
    "tutorial-mfcc": TutorialMFCC,
    "egemaps": EGeMAPS,
    "librosa-stats": LibrosaStats,
    "logmel-egemaps": LogMelEGeMAPS,
    "functionals": Functionals,
    "logmel-functionals": LogMelFunctionals,
    "logmel-functionals-egemaps": LogMelFunctionalsEGeMAPS,
    "encoder": Encoder,
    "encoder-pooled": EncoderPooled,
}


def feature_class(name: str) -> type[Feature]:
    """The feature class registered as ``name``.

    Raises:
        ValueError: no feature of that name (the message lists the known ones).
    """
    try:
        return FEATURES[name]
    except KeyError:
        raise ValueError(
            f"unknown feature {name!r}; known: {', '.join(sorted(FEATURES))}"
        ) from None


def make_feature(name: str, **params) -> Feature:
    """Build the feature registered as ``name`` with the given parameters."""
    cls = feature_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for feature {name!r}: {exc}") from exc


POSITIVE_SIZES = (
    "sample_rate",
    "n_fft",
    "win_length",
    "hop_length",
    "n_mels",
    "n_mfcc",
    "n_frames",
)
"""Integer feature settings that must be at least 1."""


def feature_from_dict(config: dict) -> Feature:
    """Rebuild a feature from :meth:`Feature.to_dict` output, checking every value: its type
    against the feature's field (an integer where the default is one, a number where it is a
    float, ...) and the sizes of :data:`POSITIVE_SIZES` at least 1.

    Raises:
        ValueError: an unknown feature or setting, or a value of the wrong type or range.
    """
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise ValueError(f"a feature configuration needs a name, not {config!r}")
    params = dict(config)
    name = params.pop("name")
    fields = {f.name: f for f in dataclasses.fields(feature_class(name))}
    for key, value in params.items():
        if key in fields:
            _check_setting(name, key, value, fields[key])
    return make_feature(name, **params)


def _check_setting(feature: str, key: str, value, field: dataclasses.Field) -> None:
    default, kind = field.default, str(field.type)

    def fail(what: str) -> None:
        raise ValueError(f"feature {feature!r} setting {key} must be {what}, not {value!r}")

    is_int = isinstance(value, int) and not isinstance(value, bool)
    if value is None:
        if default is not None and not isinstance(default, float):
            fail(f"a {type(default).__name__}")
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail("true or false")
    elif isinstance(default, int):
        if not is_int:
            fail("an integer")
        if key in POSITIVE_SIZES and value < 1:
            fail("at least 1")
    elif isinstance(default, float) or (default is None and "float" in kind):
        if not (is_int or isinstance(value, float)):
            fail("a number")
        if not math.isfinite(value):
            fail("a finite number")
    elif isinstance(default, str) and not isinstance(value, str):
        fail("a string")


__all__ = [
    "FEATURES",
    "MFCC",
    "EGeMAPS",
    "Encoder",
    "EncoderPooled",
    "Feature",
    "FeatureCache",
    "Functionals",
    "LibrosaStats",
    "LogMel",
    "LogMelEGeMAPS",
    "LogMelFunctionals",
    "LogMelFunctionalsEGeMAPS",
    "TutorialMFCC",
    "extract_files",
    "feature_class",
    "feature_from_dict",
    "make_feature",
]
