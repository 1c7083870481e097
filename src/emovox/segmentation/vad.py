"""Choosing a voice-activity detector: ``energy``, ``silero`` or ``auto`` (silero if installed)."""

from __future__ import annotations

from emovox.segmentation.config import SegmentationConfig
from emovox.segmentation.energy import EnergyVad
from emovox.segmentation.events import VoiceActivityDetector
from emovox.segmentation.silero import SileroVad, silero_available

VAD_CHOICES = ("auto", "silero", "energy")


def resolve_vad(kind: str) -> str:
    """``silero`` or ``energy`` for ``kind`` (``auto``: silero when installed).

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in VAD_CHOICES:
        raise ValueError(f"vad must be one of {VAD_CHOICES}, not {kind!r}")
    if kind == "auto":
        return "silero" if silero_available() else "energy"
    return kind


def make_vad(kind: str, sr: int, config: SegmentationConfig | None = None) -> VoiceActivityDetector:
    """The detector ``kind`` (``auto``, ``silero``, ``energy``) for audio at ``sr`` Hz."""
    cfg = config or SegmentationConfig()
    if resolve_vad(kind) == "energy":
        return EnergyVad(sr, cfg)
    return SileroVad(sr, cfg)
