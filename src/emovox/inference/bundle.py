"""Model bundles: a folder with ``model.safetensors`` and ``config.json``. Never pickle.

``config.json`` holds everything needed to rebuild the model and its feature: the labels, the
feature configuration, the sample rate, the architecture and its parameters, the training settings,
a fingerprint of the training data and the metrics measured.

A bundle may carry the pretrained encoder its feature reads, in a sub-folder of
:data:`ENCODER_DIR`: the feature's ``path`` is then relative (``encoder/whisper-base-l3``) and is
read inside the bundle's folder, wherever the folder has been copied.
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
from emovox.data.taxonomy import DIMENSIONS
from emovox.features import Feature, feature_from_dict
from emovox.models import SERModel, build_model

BUNDLE_FORMAT = "emovox-bundle"
BUNDLE_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
ENCODER_DIR = "encoder"
"""The sub-folder of a bundle that holds the pretrained encoder it carries, if any."""


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

    @property
    def dimensions(self) -> list[str]:
        """The continuous scores of every prediction (``["arousal", "valence"]`` for a model
        trained with ``dimensions``; none otherwise)."""
        return list(self.config.get("model", {}).get("dimensions") or [])


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
    if model.has_dimensions():
        config["model"]["dimensions"] = list(DIMENSIONS)
    tmp = path / f".{WEIGHTS}.tmp"
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"format": BUNDLE_FORMAT})
    tmp.replace(path / WEIGHTS)
    atomic_write_text(path / CONFIG, json.dumps(config, indent=2) + "\n")
    return path


def load_bundle(path: str | os.PathLike, device: str = "cpu") -> Bundle:
    """Load a bundle folder and check it whole; every problem raises :class:`BundleError`
    naming the file: a config value of the wrong type or out of range, weights that are not
    finite or do not fit the architecture, a feature whose shape is not the model's input.
    """
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no such model folder")
    cfg_path, w_path = path / CONFIG, path / WEIGHTS
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise BundleError(f"{p}: missing; a model folder holds {CONFIG} and {WEIGHTS}")
    config = _read_config(cfg_path)
    try:
        labels = _labels(config)
        feature = feature_from_dict(feature_config_in(config["feature"], path))
        if config.get("sample_rate", feature.sample_rate) != feature.sample_rate:
            raise ValueError(
                f"sample_rate {config['sample_rate']!r} differs from the feature's "
                f"{feature.sample_rate}"
            )
        spec = config["model"]
        in_shape = _in_shape(spec.get("in_shape"))
        check_inference(config.get("inference") or {})
        model = build_model(spec["name"], len(labels), in_shape, **spec["params"])
        dims = _dimensions(spec.get("dimensions"))
        if dims:
            model.attach_dimensions(len(dims))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise BundleError(f"{cfg_path}: invalid configuration ({what})") from exc
    try:
        state = load_file(str(w_path), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{w_path}: corrupt weights file ({exc})") from exc
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        raise BundleError(f"{w_path}: weights that are not finite (NaN or inf) in {bad[0]}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise BundleError(
            f"{w_path}: the weights do not fit the {spec['name']!r} architecture in {CONFIG} "
            f"({first[0] if first else exc})"
        ) from exc
    model.to(device).eval()
    _dry_run(model, feature, len(labels), cfg_path)
    return Bundle(model=model, feature=feature, labels=labels, config=config, path=path)


def feature_config_in(feature: dict, folder: str | os.PathLike) -> dict:
    """A bundle's feature configuration with a relative ``path`` (an encoder the bundle
    carries) made absolute under the bundle's ``folder`` when it is there; otherwise as it is
    (an absolute path, or one the encoder search resolves by its folder name)."""
    where = feature.get("path")
    if isinstance(where, str) and where and not Path(where).is_absolute():
        inside = Path(folder) / where
        if inside.exists():
            return {**feature, "path": str(inside.resolve())}
    return feature


def _read_config(cfg_path: Path) -> dict:
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{cfg_path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{cfg_path}: not an emovox model configuration")
    version = config.get("format_version")
    if "format_version" not in config:
        raise BundleError(f"{cfg_path}: no format_version; the file is damaged or not a bundle")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{cfg_path}: format_version {version!r} is not a bundle version")
    if version > BUNDLE_VERSION:
        raise BundleError(
            f"{cfg_path}: bundle format version {version} is newer than this emovox "
            f"({__version__}) reads (<= {BUNDLE_VERSION}); upgrade emovox"
        )
    return config


def _labels(config: dict) -> list[str]:
    labels = config["labels"]
    if not isinstance(labels, list) or len(labels) < 2:
        raise ValueError("labels must be a list of at least two class names")
    if not all(isinstance(c, str) and c for c in labels) or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct non-empty names, not {labels}")
    return list(labels)


def _dimensions(value) -> list[str]:
    """The model's dimension names: none, or :data:`DIMENSIONS` as saved."""
    if value is None:
        return []
    if value != list(DIMENSIONS):
        raise ValueError(f"model dimensions must be {list(DIMENSIONS)}, not {value!r}")
    return list(value)


def _in_shape(value) -> tuple[int, int]:
    ok = isinstance(value, list) and len(value) == 2
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError(f"model in_shape must be two positive integers, not {value!r}")
    return (value[0], value[1])


def check_inference(inference: dict) -> None:
    """Check a bundle's ``inference`` settings (``test_crops``, ``crop_frames``,
    ``speaker_norm``).

    Raises:
        ValueError: a value of the wrong type or out of range.
    """
    if not isinstance(inference, dict):
        raise ValueError(f"inference must be an object, not {inference!r}")
    crops = inference.get("test_crops", 1)
    if not isinstance(crops, int) or isinstance(crops, bool) or crops < 1:
        raise ValueError(f"inference test_crops must be a positive integer, not {crops!r}")
    frames = inference.get("crop_frames")
    if frames is not None and (not isinstance(frames, int) or isinstance(frames, bool)):
        raise ValueError(f"inference crop_frames must be an integer, not {frames!r}")
    if crops > 1 and (frames is None or frames < 1):
        raise ValueError(f"inference test_crops {crops} needs crop_frames >= 1, not {frames!r}")
    if not isinstance(inference.get("speaker_norm", False), bool):
        raise ValueError("inference speaker_norm must be true or false")


DRY_RUN_SECONDS = 1.0
"""Length of the quiet noise a loaded bundle is tried on."""


def _dry_run(model: SERModel, feature: Feature, n_labels: int, cfg_path: Path) -> None:
    """Run the feature and the model once on a second of quiet noise: the feature's shape must
    be the model's ``in_shape`` and the output finite, one score per label."""
    import numpy as np

    wave = np.random.default_rng(0).normal(0, 0.01, int(DRY_RUN_SECONDS * feature.sample_rate))
    try:
        x = feature([wave.astype(np.float32)])[0]
    except Exception as exc:  # a feature setting that cannot compute
        raise BundleError(f"{cfg_path}: the feature cannot be computed ({exc})") from exc
    if tuple(x.shape[:2]) != tuple(model.in_shape):
        raise BundleError(
            f"{cfg_path}: the feature gives arrays of shape {list(x.shape[:2])} (streams, bins) "
            f"but the model was trained on {list(model.in_shape)}"
        )
    from emovox.inference.predict import predict_logits

    try:
        out = predict_logits(model, [x])
    except Exception as exc:
        raise BundleError(f"{cfg_path}: the model cannot run on its feature ({exc})") from exc
    if out.shape != (1, n_labels) or not np.isfinite(out).all():
        raise BundleError(f"{cfg_path}: the model gives no finite score per label")
