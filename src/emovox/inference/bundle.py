"""Model bundles: a folder with ``model.safetensors`` and ``config.json``. Never pickle.

``config.json`` holds everything needed to rebuild the model and its feature: the labels, the
feature configuration, the sample rate, the architecture and its parameters, the training settings,
a fingerprint of the training data and the metrics measured.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from emovox._fs import atomic_write_text
from emovox._version import __version__
from emovox.features import Feature, feature_from_dict
from emovox.models import SERModel, build_model

BUNDLE_FORMAT = "emovox-bundle"
BUNDLE_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class BundleError(RuntimeError):
    """A model bundle is missing, corrupt, or incompatible with this emovox."""


@dataclass
class Bundle:
    """A loaded bundle: the model (in eval mode), its feature, labels and metadata."""

    model: SERModel
    feature: Feature
    labels: list[str]
    config: dict = field(default_factory=dict)
    path: Path | None = None


def save_bundle(
    path: str | os.PathLike,
    model: SERModel,
    feature: Feature,
    labels: list[str],
    **metadata,
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into the folder ``path``.

    ``metadata`` (training settings, data fingerprint, metrics, ...) is stored in the JSON as is.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "emovox_version": __version__,
        "labels": list(labels),
        "sample_rate": feature.sample_rate,
        "feature": feature.to_dict(),
        "model": {
            "name": model.name,
            "params": model.hparams,
            "in_shape": list(model.in_shape),
            "n_parameters": model.n_parameters,
        },
        **metadata,
    }
    tmp = path / f".{WEIGHTS}.tmp"
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"format": BUNDLE_FORMAT})
    tmp.replace(path / WEIGHTS)
    atomic_write_text(path / CONFIG, json.dumps(config, indent=2) + "\n")
    return path


def load_bundle(path: str | os.PathLike, device: str = "cpu") -> Bundle:
    """Load a bundle folder; every problem raises :class:`BundleError` naming the file."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no such model folder")
    cfg_path, w_path = path / CONFIG, path / WEIGHTS
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise BundleError(f"{p}: missing; a model folder holds {CONFIG} and {WEIGHTS}")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{cfg_path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{cfg_path}: not an emovox model configuration")
    version = config.get("format_version")
    if not isinstance(version, int) or version > BUNDLE_VERSION:
        raise BundleError(
            f"{cfg_path}: bundle format version {version} is newer than this emovox "
            f"({__version__}) reads (<= {BUNDLE_VERSION}); upgrade emovox"
        )
    try:
        labels = [str(x) for x in config["labels"]]
        feature = feature_from_dict(config["feature"])
        spec = config["model"]
        model = build_model(spec["name"], len(labels), tuple(spec["in_shape"]), **spec["params"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{cfg_path}: incompatible configuration ({exc})") from exc
    try:
        state = load_file(str(w_path), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{w_path}: corrupt weights file ({exc})") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise BundleError(
            f"{w_path}: the weights do not fit the {spec['name']!r} architecture in {CONFIG} "
            f"({first[0] if first else exc})"
        ) from exc
    model.to(device).eval()
    return Bundle(model=model, feature=feature, labels=labels, config=config, path=path)
