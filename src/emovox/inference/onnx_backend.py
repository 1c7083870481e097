"""ONNX export of a model bundle and prediction with onnxruntime.

:func:`export_onnx` writes the model as an ONNX graph that maps features ``[B, S, F, T]`` (the
``features`` input) to ``logits`` and ``probabilities`` (softmax), and for a model with the
dimensions head to ``dimensions`` too (arousal and valence in [-1, 1]), with a dynamic batch axis
and, for variable-length features, a dynamic time axis. The labels, the feature configuration and
the model description travel in the file's ``metadata_props`` (``emovox.*`` keys), so a file can be
checked against a bundle or used on its own.

The graph is the model's *unmasked* forward pass. Padding a shorter utterance would change what
the ``cnn`` model's convolutions see, so :class:`OnnxModel` never pads: it runs utterances of the
same number of frames together and the others one group at a time, which gives exactly the
probabilities the masked torch path gives.

onnxruntime, onnx and onnxscript are the optional extra ``emovox[onnx]`` (part of ``[dev]``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from emovox.inference.bundle import Bundle, BundleError, load_bundle

_log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
"""Where :func:`export_onnx` writes inside the bundle folder when no ``out`` is given."""

INT8_FILE = "model.int8.onnx"
"""Where :func:`export_onnx` writes the int8 model inside the bundle folder."""

META_PREFIX = "emovox."
INPUT_NAME = "features"
OUTPUT_NAMES = ("logits", "probabilities")
DIMENSIONS_OUTPUT = "dimensions"
DEFAULT_OPSET = 18

INSTALL_HINT = 'pip install "emovox[onnx]"  (onnx, onnxruntime, onnxscript)'


class OnnxUnavailable(RuntimeError):
    """onnxruntime (or, for export, onnx/onnxscript) is not installed."""


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OnnxUnavailable(
            f"the ONNX backend needs the Python package {module!r}, which is not installed; "
            f"install it with: {INSTALL_HINT}"
        ) from exc


class _WithProbabilities(torch.nn.Module):
    """The model's unmasked forward, returning logits and their softmax (and the dimension
    scores of a model with the dimensions head)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.dimensions = model.has_dimensions()

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.dimensions:
            logits, dims = self.model.forward_with_dimensions(features)
            return logits, torch.softmax(logits, dim=-1), dims
        logits = self.model(features)
        return logits, torch.softmax(logits, dim=-1)


def weights_digest(model_dir: str | os.PathLike) -> str:
    """The SHA-256 of a bundle's ``model.safetensors``: recorded in every export, so that an
    ONNX file left beside retrained weights can be told apart."""
    import hashlib

    return hashlib.sha256((Path(model_dir) / "model.safetensors").read_bytes()).hexdigest()


def _metadata(bundle: Bundle) -> dict[str, str]:
    spec = bundle.config.get("model", {})
    weights = bundle.path is not None and (Path(bundle.path) / "model.safetensors").is_file()
    return {
        f"{META_PREFIX}format": "emovox-onnx",
        f"{META_PREFIX}weights_sha256": weights_digest(bundle.path) if weights else "",
        f"{META_PREFIX}labels": json.dumps(list(bundle.labels)),
        f"{META_PREFIX}feature": json.dumps(bundle.feature.to_dict(), sort_keys=True),
        f"{META_PREFIX}sample_rate": str(bundle.feature.sample_rate),
        f"{META_PREFIX}inference": json.dumps(bundle.config.get("inference") or {}),
        f"{META_PREFIX}model": json.dumps(
            {
                "name": spec.get("name"),
                "params": spec.get("params"),
                "in_shape": spec.get("in_shape"),
            }
        ),
    }


def export_onnx(
    model_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    example_frames: int = 128,
    quantize: str | None = None,
    calibrate: Sequence[str | os.PathLike] | None = None,
) -> Path:
    """Export a bundle's model to ONNX (``<model_dir>/model.onnx``, or ``model.int8.onnx`` with
    ``quantize="int8"``, unless ``out`` is given).

    Args:
        model_dir: the bundle folder.
        out: the ``.onnx`` file to write (atomically).
        opset: the ONNX opset.
        example_frames: length of the example input used for tracing (the axis stays dynamic).
        quantize: ``"int8"``: onnxruntime's static quantisation of the float graph
            (:mod:`emovox.inference.quantize`), calibrated on ``calibrate``.
        calibrate: audio files whose features calibrate the int8 activation ranges (unreadable
            ones are skipped); none: synthetic speech.

    Returns:
        The path written.

    Raises:
        BundleError: the bundle cannot be loaded.
        OnnxUnavailable: onnx or onnxscript is missing.
        ValueError: an unknown ``quantize``, or no readable calibration file.
    """
    if quantize is not None and quantize not in ("int8",):
        raise ValueError(f"quantize must be 'int8' or None, not {quantize!r}")
    bundle = load_bundle(model_dir)
    default = INT8_FILE if quantize else ONNX_FILE
    out = Path(out) if out is not None else Path(model_dir) / default
    out.parent.mkdir(parents=True, exist_ok=True)
    if quantize is None:
        return _export_float(bundle, out, opset, example_frames)
    from emovox.inference.quantize import quantize_int8

    feats, what = _calibration_features(bundle, calibrate)
    tmp_float = out.with_name(f".{out.name}.{os.getpid()}.float.onnx")
    try:
        _export_float(bundle, tmp_float, opset, example_frames)
        quantize_int8(tmp_float, out, feats, what, INPUT_NAME, META_PREFIX)
    finally:
        tmp_float.unlink(missing_ok=True)
    return out


def _calibration_features(
    bundle: Bundle, files: Sequence[str | os.PathLike] | None
) -> tuple[list[np.ndarray], str]:
    """Feature arrays to calibrate int8 ranges on, and what they are of."""
    from emovox.audio import AudioError
    from emovox.inference.quantize import CALIBRATION_ITEMS, synthetic_calibration

    if not files:
        return bundle.feature(synthetic_calibration(bundle.feature.sample_rate)), "synthetic speech"
    files = list(files)
    step = max(1, len(files) // CALIBRATION_ITEMS)
    waves = []
    for f in files[::step][:CALIBRATION_ITEMS]:
        try:
            waves.append(bundle.feature.load(f))
        except AudioError as exc:
            _log.warning("calibration: %s skipped (%s)", f, exc.reason)
    if not waves:
        raise ValueError("int8 calibration: none of the files given could be read")
    return bundle.feature(waves), f"{len(waves)} of {len(files)} files given"


def _export_float(bundle: Bundle, out: Path, opset: int, example_frames: int) -> Path:
    """The float export of :func:`export_onnx`: traced, checked and verified against torch."""
    onnx = _require("onnx")
    _require("onnxscript")
    s, f = bundle.model.in_shape
    frames = bundle.feature.n_frames if bundle.feature.fixed_length else example_frames
    example = torch.zeros(2, s, f, frames)
    wrapper = _WithProbabilities(bundle.model).eval()
    dynamic = {0: "batch"} if bundle.feature.fixed_length else {0: "batch", 3: "frames"}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    outputs = list(OUTPUT_NAMES) + ([DIMENSIONS_OUTPUT] if wrapper.dimensions else [])
    try:
        proto = _export_proto(onnx, wrapper, example, dynamic, opset, tmp, outputs)
        for key, value in _metadata(bundle).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "emovox"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        _verify(tmp, bundle, example_frames)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _export_proto(
    onnx, wrapper, example, dynamic: dict, opset: int, tmp: Path, outputs: Sequence[str]
):
    """Export with the torch.export-based exporter, or the TorchScript one if that fails."""
    import logging
    import warnings

    log = logging.getLogger("torch.onnx")  # quiet "torchvision is not installed" notices
    level = log.level
    log.setLevel(logging.ERROR)
    axes = {INPUT_NAME: dynamic, **{name: {0: "batch"} for name in outputs}}
    common = {
        "input_names": [INPUT_NAME],
        "output_names": list(outputs),
        "dynamic_axes": axes,
        "opset_version": opset,
    }
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                external_data=False,
                verify=False,
                verbose=False,
                **common,
            )
        log.setLevel(level)
        return program.model_proto
    except Exception as first:
        log.setLevel(level)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(wrapper, (example,), str(tmp), dynamo=False, **common)
            return onnx.load(str(tmp))
        except Exception as exc:
            raise RuntimeError(
                f"ONNX export failed: {_first_line(first)}; legacy exporter: {_first_line(exc)}"
            ) from exc


def _verify(path: Path, bundle: Bundle, frames: int) -> None:
    """Check the exported graph against torch on other batch sizes and lengths (atol 1e-4)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    s, f = bundle.model.in_shape
    if bundle.feature.fixed_length:
        lengths = [bundle.feature.n_frames] * 2
    else:
        lengths = [frames // 2 + 3, 2 * frames + 1]
    rng = np.random.default_rng(0)
    for batch, t in zip((1, 3), lengths, strict=True):
        x = rng.standard_normal((batch, s, f, t)).astype(np.float32)
        got = _scores(session, x, bundle.model.has_dimensions())
        with torch.no_grad():
            ref = _WithProbabilities(bundle.model).eval()(torch.from_numpy(x))
            ref = torch.cat([ref[1], *ref[2:]], dim=1).numpy()
        if got.shape != ref.shape or not np.allclose(got, ref, atol=1e-4):
            raise RuntimeError(
                f"{path}: the exported graph differs from the torch model on input "
                f"{list(x.shape)} (max difference {float(np.max(np.abs(got - ref))):.2e})"
            )


def _scores(session, batch: np.ndarray, dimensions: bool) -> np.ndarray:
    """The probabilities of a batch, followed by its dimension scores when asked."""
    if not dimensions:
        (proba,) = session.run(["probabilities"], {INPUT_NAME: batch})
        return proba
    proba, dims = session.run(["probabilities", DIMENSIONS_OUTPUT], {INPUT_NAME: batch})
    return np.concatenate([proba, dims], axis=1)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``emovox.*`` metadata of an ONNX file (keys without the prefix)."""
    ort = _require("onnxruntime")
    path = Path(path)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BundleError(f"{path}: not a readable ONNX model ({_first_line(exc)})") from exc
    return _session_metadata(session)


def _session_metadata(session) -> dict[str, str]:
    props = session.get_modelmeta().custom_metadata_map
    return {k[len(META_PREFIX) :]: v for k, v in props.items() if k.startswith(META_PREFIX)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def onnx_file_for(
    model_dir: str | os.PathLike, onnx_path: str | os.PathLike | None, int8: bool = False
) -> Path:
    """The ONNX file of a bundle: ``onnx_path``, else ``<model_dir>/model.onnx`` (with ``int8``:
    ``model.int8.onnx``); for the default model bundled with emovox (whose folder belongs to the
    installed package), an export kept in the user's cache (``~/.cache/emovox/onnx``, or
    ``$EMOVOX_CACHE``), written once on first use (int8: calibrated on synthetic speech), so
    that nothing is written into the package.

    Raises:
        OnnxUnavailable: the bundled model's ONNX must be exported and onnx is missing.
    """
    if onnx_path is not None:
        return Path(onnx_path)
    own = Path(model_dir) / (INT8_FILE if int8 else ONNX_FILE)
    if own.is_file() or not _is_packaged(Path(model_dir)):
        return own
    from emovox.features.cache import DEFAULT_CACHE_DIR

    digest = weights_digest(model_dir)
    suffix = ".int8.onnx" if int8 else ".onnx"
    cached = DEFAULT_CACHE_DIR / "onnx" / f"{Path(model_dir).name}-{digest[:16]}{suffix}"
    if not cached.is_file():
        _log.info("exporting the bundled model to ONNX once: %s", cached)
        export_onnx(model_dir, cached, quantize="int8" if int8 else None)
    return cached


def _is_packaged(model_dir: Path) -> bool:
    import emovox

    package = Path(emovox.__file__).resolve().parent
    return package in model_dir.resolve().parents


class OnnxModel:
    """An exported model run by onnxruntime: feature arrays in, probabilities out.

    Args:
        path: the ``.onnx`` file.
        bundle: when given, the file must have been exported from a bundle with the same labels,
            feature configuration and input shape, or :class:`BundleError` is raised.
        threads: onnxruntime intra-op threads (``None``: torch's current thread count).
    """

    def __init__(
        self, path: str | os.PathLike, bundle: Bundle | None = None, threads: int | None = None
    ) -> None:
        ort = _require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            where = (
                f" (write it with `emovox export {bundle.path} --out {self.path}"
                f"{' --quantize int8' if self.path.name.endswith('.int8.onnx') else ''}`, or give "
                "the file of an earlier export with --onnx FILE)"
                if (bundle is not None and bundle.path is not None)
                else ""
            )
            raise BundleError(f"{self.path}: no such ONNX file{where}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise BundleError(
                f"{self.path}: not a readable ONNX model ({_first_line(exc)})"
            ) from exc
        self.metadata = _session_metadata(self.session)
        if self.metadata.get("format") != "emovox-onnx":
            raise BundleError(
                f"{self.path}: not an emovox ONNX export (no emovox metadata); "
                "write one with `emovox export MODEL_DIR --format onnx`"
            )
        try:
            self.labels: list[str] = [str(x) for x in json.loads(self.metadata["labels"])]
            self.feature_config: dict = json.loads(self.metadata["feature"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise BundleError(f"{self.path}: damaged emovox metadata ({exc})") from exc
        inputs = self.session.get_inputs()
        names = [o.name for o in self.session.get_outputs()]
        if [i.name for i in inputs] != [INPUT_NAME] or "probabilities" not in names:
            raise BundleError(
                f"{self.path}: expected one input {INPUT_NAME!r} and a 'probabilities' output"
            )
        self.input_shape = inputs[0].shape  # [batch, S, F, frames or T]
        self.quantization: str | None = self.metadata.get("quantization")
        self.has_dimensions = DIMENSIONS_OUTPUT in names
        self.n_dimensions = 0
        if self.has_dimensions:
            out = next(o for o in self.session.get_outputs() if o.name == DIMENSIONS_OUTPUT)
            width = out.shape[-1] if out.shape else None
            self.n_dimensions = width if isinstance(width, int) else 2
        if bundle is not None:
            self.check_fits(bundle)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def check_fits(self, bundle: Bundle) -> None:
        """Raise :class:`BundleError` unless this file was exported from ``bundle``'s model."""
        where = f"{self.path} does not fit the model in {bundle.path}"
        if self.labels != list(bundle.labels):
            raise BundleError(f"{where}: labels {self.labels} != {list(bundle.labels)}")
        if self.feature_config != json.loads(json.dumps(bundle.feature.to_dict())):
            raise BundleError(f"{where}: the feature configurations differ")
        s, f = bundle.model.in_shape
        got = self.input_shape[1:3]
        if all(isinstance(d, int) for d in got) and tuple(got) != (s, f):
            raise BundleError(f"{where}: input streams x bins {tuple(got)} != {(s, f)}")
        if self.has_dimensions != bundle.model.has_dimensions():
            say = "has" if self.has_dimensions else "lacks"
            raise BundleError(
                f"{where}: the file {say} the arousal and valence output; export the model again"
            )

    def predict_proba(self, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Probabilities ``[N, n_classes]`` for ``[S, F, T_i]`` feature arrays.

        Arrays with the same number of frames run together (in batches of ``batch_size``);
        nothing is padded, so each result equals the torch model's on that utterance alone.
        """
        return self.predict_scores(xs, batch_size)[:, : self.n_classes]

    def predict_scores(self, xs: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """As :func:`emovox.inference.predict.predict_scores`: probabilities ``[N, C]``,
        followed by the dimension scores ``[N, D]`` of a model that has them."""
        out = np.zeros((len(xs), self.n_classes + self.n_dimensions), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, x in enumerate(xs):
            groups.setdefault(int(x.shape[-1]), []).append(i)
        for idx_all in groups.values():
            for s in range(0, len(idx_all), batch_size):
                idx = idx_all[s : s + batch_size]
                batch = np.stack([np.asarray(xs[i], dtype=np.float32) for i in idx])
                out[idx] = _scores(self.session, batch, self.has_dimensions)
        return out
