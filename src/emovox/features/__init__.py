"""Feature registry. A new feature is one new module and one line in :data:`FEATURES`."""

from __future__ import annotations

from emovox.features.base import Feature
from emovox.features.cache import FeatureCache, extract_files
from emovox.features.egemaps import EGeMAPS
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
}


def make_feature(name: str, **params) -> Feature:
    """Build the feature registered as ``name`` with the given parameters."""
    try:
        cls = FEATURES[name]
    except KeyError:
        raise ValueError(
            f"unknown feature {name!r}; known: {', '.join(sorted(FEATURES))}"
        ) from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for feature {name!r}: {exc}") from exc


def feature_from_dict(config: dict) -> Feature:
    """Rebuild a feature from :meth:`Feature.to_dict` output."""
    params = dict(config)
    return make_feature(params.pop("name"), **params)


__all__ = [
    "FEATURES",
    "MFCC",
    "EGeMAPS",
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
    "feature_from_dict",
    "make_feature",
]
