"""int8 models: an exported ONNX graph quantised with onnxruntime's static quantisation.

Weights become int8 (one scale per output channel) and activations uint8, with quantise /
dequantise pairs around every quantised operator (the QDQ format), so onnxruntime runs the
convolutions and the classifier in integer arithmetic. The activation ranges are calibrated on
feature arrays of real recordings (``emovox export --quantize int8 --calibrate DATA``), or, when
none are given, of synthetic speech in every emotion's prosody at several levels
(:func:`synthetic_calibration`), which is enough for a first file but less faithful than the
user's own audio. The file keeps the emovox metadata of the float export and adds
``emovox.quantization`` and the calibration it was made with.

Measured on the bundled model (see benchmarks/README.md): about 1.7 times faster than float on
one core, with the same label for about 99 % of RAVDESS files.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

QUANTIZATIONS = ("int8",)
"""What ``emovox export --quantize`` knows."""

CALIBRATION_ITEMS = 64
"""Feature arrays used to calibrate the activation ranges (more cost time, rarely accuracy)."""


def synthetic_calibration(sample_rate: int = 16000, n: int = CALIBRATION_ITEMS) -> list[np.ndarray]:
    """``n`` waveforms of synthetic speech (:func:`emovox.data.synth.numpy_voice`): every
    emotion's prosody, both synthetic voices, levels from -30 to 0 dB of full scale."""
    from emovox.data.synth import PROSODY, SENTENCES, numpy_voice

    rng = np.random.default_rng(0)
    emotions = list(PROSODY)
    waves = []
    for i in range(n):
        p = PROSODY[emotions[i % len(emotions)]]
        x = numpy_voice(SENTENCES[i % len(SENTENCES)], i % 4, p, sample_rate, rng)
        level = 10 ** (-rng.uniform(0, 30) / 20)
        waves.append((x / max(float(np.abs(x).max()), 1e-6) * level).astype(np.float32))
    return waves


class _Reader:
    """onnxruntime's calibration data reader over feature arrays (one per call)."""

    def __init__(self, input_name: str, features: Sequence[np.ndarray]) -> None:
        self._items = iter([{input_name: np.asarray(f, np.float32)[None]} for f in features])

    def get_next(self):
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - not used by the min-max calibrator
        raise NotImplementedError


REDUCE_RANGE = True
"""Weights quantised to 7 bits. On x86 CPUs without VNNI instructions onnxruntime sums the uint8
x int8 products in pairs in 16 bits, which full-range 8-bit weights can overflow: the default
model's int8 file made with 8-bit weights kept 82.4 % of the float model's labels on an AVX2-only
AMD EPYC, and 98.8 % with 7-bit weights (``benchmarks/int8_agreement.py``)."""


def quantize_int8(
    float_path: str | os.PathLike,
    out: str | os.PathLike,
    features: Sequence[np.ndarray],
    calibration: str,
    input_name: str = "features",
    meta_prefix: str = "emovox.",
) -> Path:
    """Write the int8 version of the float ONNX file ``float_path`` to ``out``.

    Args:
        float_path: an emovox ONNX export (:func:`~emovox.inference.onnx_backend.export_onnx`).
        out: the file to write.
        features: feature arrays ``[S, F, T]`` to calibrate the activation ranges on.
        calibration: what they are of (kept in the file's metadata).
        input_name: the graph's input; meta_prefix: the prefix of the emovox metadata keys.

    Raises:
        ValueError: no calibration features.
    """
    if not len(features):
        raise ValueError("int8 quantisation needs calibration features (none were given)")
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    root = logging.getLogger()  # onnxruntime's advice to pre-process is logged on the root
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(
            str(float_path),
            str(tmp),
            _Reader(input_name, features),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            reduce_range=REDUCE_RANGE,
        )
        proto = onnx.load(str(tmp))
        extra = {
            f"{meta_prefix}quantization": "int8",
            f"{meta_prefix}calibration": json.dumps({"items": len(features), "of": calibration}),
        }
        for key, value in extra.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
        os.replace(tmp, out)
    finally:
        root.setLevel(level)
        tmp.unlink(missing_ok=True)
    return out
