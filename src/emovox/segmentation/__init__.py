"""Segmentation of recordings: voice activity, segment shaping and per-segment predictions.

One path for everyone: a recording is read in blocks (:mod:`~emovox.segmentation.blocks`), a
detector (:mod:`~emovox.segmentation.energy` or :mod:`~emovox.segmentation.silero`, chosen by
:func:`make_vad`) reports speech starts and ends, the
:class:`~emovox.segmentation.shaper.SegmentShaper` pads, merges and cuts them, and
:func:`predict_segments` predicts each finished segment. The CLI (``predict --segments``), the
server, ``live`` and :meth:`Recognizer.predict_segments` all go through
:class:`~emovox.segmentation.stream.SegmentStream` with one :class:`SegmentationConfig`.
"""

from emovox.segmentation.blocks import AudioBuffer, iter_array_blocks, iter_file_blocks
from emovox.segmentation.config import SegmentationConfig
from emovox.segmentation.energy import EnergyVad, frame_energy_db
from emovox.segmentation.events import Segment, VadEvent, VoiceActivityDetector
from emovox.segmentation.predict import predict_segments, segment_audio, segment_result
from emovox.segmentation.shaper import SegmentShaper, merge_segments, split_long
from emovox.segmentation.silero import SileroVad, silero_available, silero_weights
from emovox.segmentation.stream import SegmentStream
from emovox.segmentation.vad import VAD_CHOICES, make_vad, resolve_vad

VadConfig = SegmentationConfig
"""The name of the settings in emovox 0.1's energy VAD (one class now)."""
LongAudioConfig = SegmentationConfig
"""The name of the settings in emovox 0.1's long-audio reader (one class now)."""
StreamingVad = EnergyVad
"""The name of the energy detector in emovox 0.1."""

__all__ = [
    "VAD_CHOICES",
    "AudioBuffer",
    "EnergyVad",
    "LongAudioConfig",
    "Segment",
    "SegmentShaper",
    "SegmentStream",
    "SegmentationConfig",
    "SileroVad",
    "StreamingVad",
    "VadConfig",
    "VadEvent",
    "VoiceActivityDetector",
    "frame_energy_db",
    "iter_array_blocks",
    "iter_file_blocks",
    "make_vad",
    "merge_segments",
    "predict_segments",
    "resolve_vad",
    "segment_audio",
    "segment_result",
    "silero_available",
    "silero_weights",
    "split_long",
]
