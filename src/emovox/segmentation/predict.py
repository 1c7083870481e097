"""From a recording to one prediction per speech segment: the one function every path uses."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from emovox.audio import MIN_DURATION, AudioError
from emovox.segmentation.blocks import iter_array_blocks, iter_file_blocks
from emovox.segmentation.config import SegmentationConfig
from emovox.segmentation.events import Segment
from emovox.segmentation.stream import Piece, SegmentStream

if TYPE_CHECKING:
    from emovox.inference.recognizer import Prediction, Recognizer

AudioSource = str | os.PathLike | np.ndarray


def segment_result(segment: Segment, prediction: Prediction) -> dict:
    """``{"start", "end", "label", "probabilities"}`` of one segment (seconds, rounded to ms),
    with ``arousal`` and ``valence`` when the model gives them."""
    out = {
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "label": prediction.label,
        "probabilities": prediction.probabilities,
    }
    if prediction.arousal is not None:
        out["arousal"] = prediction.arousal
    if prediction.valence is not None:
        out["valence"] = prediction.valence
    return out


def _long_enough(recognizer: Recognizer, pieces: Sequence[Piece]) -> list[Piece]:
    """The pieces not shorter than the model's minimum duration."""
    return [(s, a) for s, a in pieces if a.size >= MIN_DURATION * recognizer.sample_rate]


def _name(segment: Segment) -> str:
    return f"{segment.start:.3f}-{segment.end:.3f}"


def predict_pieces(recognizer: Recognizer, pieces: Sequence[Piece], batch_size: int) -> list[dict]:
    """Predict segments with their samples (at the model's rate); pieces shorter than the
    model's minimum duration are left out."""
    keep = _long_enough(recognizer, pieces)
    preds = recognizer.predict_waveforms(
        [a for _, a in keep], [_name(s) for s, _ in keep], batch_size
    )
    return [segment_result(s, p) for (s, _), p in zip(keep, preds, strict=True)]


class OneSpeakerSegments:
    """The segments of one recording kept as features, predicted together at the end with the
    recording's own material (a ``speaker_norm`` model standardises them with its statistics,
    any other balances its predictions with their mean; the recognizer's guard decides how far
    either is used). Features, not audio, are kept: about 26 kB per second of speech."""

    def __init__(self, recognizer: Recognizer, batch_size: int) -> None:
        self.recognizer, self.batch_size = recognizer, batch_size
        self.segments: list[Segment] = []
        self.feats: list[np.ndarray] = []

    def add(self, pieces: Sequence[Piece]) -> None:
        keep = _long_enough(self.recognizer, pieces)
        if keep:
            self.segments += [s for s, _ in keep]
            self.feats += self.recognizer.feature([a for _, a in keep])

    def results(self) -> list[dict]:
        if not self.feats:
            return []
        rec = self.recognizer
        stats = rec.stats_of_features(self.feats)
        names = [_name(s) for s in self.segments]
        preds = rec.predict_features(self.feats, names, self.batch_size, speaker_stats=stats)
        return [segment_result(s, p) for s, p in zip(self.segments, preds, strict=True)]


def audio_blocks(
    audio: AudioSource, sr: int | None, target_sr: int, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """Blocks at ``target_sr`` of a file (streamed) or of a waveform at ``sr``.

    Raises:
        AudioError: the file cannot be read, or a waveform comes without its rate.
    """
    if isinstance(audio, (str, os.PathLike)):
        return iter_file_blocks(audio, target_sr, block_seconds)
    if sr is None:
        raise AudioError(None, "an array needs its sample rate: predict_segments(array, sr=...)")
    return iter_array_blocks(audio, sr, target_sr, block_seconds)


def stream_segments(
    blocks: Iterable[np.ndarray],
    sr: int,
    vad: str = "auto",
    config: SegmentationConfig | None = None,
) -> Iterator[Piece]:
    """The finished segments of a stream of blocks, as they are found."""
    stream = SegmentStream(sr, vad, config)
    for block in blocks:
        yield from stream.feed(block)
    yield from stream.finish()


def segment_audio(
    audio: AudioSource,
    sr: int | None = None,
    config: SegmentationConfig | None = None,
    vad: str = "auto",
) -> list[Segment]:
    """The speech segments of a recording (seconds), without predicting them.

    Args:
        audio: a file (streamed) or a 1-D waveform at ``sr``.
        sr: the waveform's sample rate; a file is analysed at 16 kHz.
        config: segmentation settings.
        vad: ``auto``, ``silero`` or ``energy``.
    """
    if isinstance(audio, np.ndarray) and audio.size == 0:
        return []
    rate = 16000 if isinstance(audio, (str, os.PathLike)) or sr is None else sr
    blocks = audio_blocks(audio, sr, rate)
    return [s for s, _ in stream_segments(blocks, rate, vad, config)]


def predict_segments(
    recognizer: Recognizer,
    audio: AudioSource,
    sr: int | None = None,
    *,
    vad: str = "auto",
    config: SegmentationConfig | None = None,
    block_seconds: float = 30.0,
    batch_size: int = 16,
    stats: dict | None = None,
    one_speaker: bool = False,
) -> list[dict]:
    """Predict every speech segment of a recording, reading it in blocks.

    Args:
        recognizer: the model.
        audio: a file path (streamed, never decoded whole) or a waveform (``sr`` required).
        sr: the waveform's sample rate.
        vad: ``auto`` (silero when installed), ``silero`` or ``energy``.
        config: segmentation settings (:class:`SegmentationConfig` defaults when ``None``).
        block_seconds: seconds read at once.
        batch_size: segments predicted together.
        stats: when a dict, filled with ``duration``, ``vad`` and ``max_buffer_seconds``.
        one_speaker: the recording is one speaker: every segment is adapted to all of them (a
            ``speaker_norm`` model standardises it with their statistics, any other balances
            its prediction with their mean; speaker-adapted, guarded: see
            :mod:`emovox.inference.adaptation`), so the segments are predicted at the end.

    Returns:
        ``[{"start", "end", "label", "probabilities"}]`` in time order (seconds, rounded to ms).

    Raises:
        AudioError: the file cannot be read.
    """
    fsr = recognizer.sample_rate
    blocks = audio_blocks(audio, sr, fsr, block_seconds)
    stream = SegmentStream(fsr, vad, config)
    results: list[dict] = []
    queue: list[Piece] = []
    adapted = (
        OneSpeakerSegments(recognizer, batch_size)
        if one_speaker
        else None
    )
    for block in blocks:
        queue += stream.feed(block)
        if len(queue) >= batch_size:
            if adapted is not None:
                adapted.add(queue)
            else:
                results += predict_pieces(recognizer, queue, batch_size)
            queue = []
    if stream.samples_seen == 0:
        raise AudioError(None if isinstance(audio, np.ndarray) else str(audio), "no audio")
    if adapted is not None:
        adapted.add(queue + stream.finish())
        results = adapted.results()
    else:
        results += predict_pieces(recognizer, queue + stream.finish(), batch_size)
    if stats is not None:
        stats.update(
            duration=stream.samples_seen / fsr,
            vad=stream.vad_name,
            max_buffer_seconds=stream.max_buffer_seconds,
        )
    return results
