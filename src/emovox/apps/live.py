"""Live emotion recognition: audio blocks in, one prediction per utterance out.

:class:`LiveSession` consumes blocks of audio (from :class:`MicrophoneSource`, a
``sounddevice.InputStream``, or from :func:`file_blocks`, a file played at real-time pace),
finds the utterances with the segmentation every other path uses (:mod:`emovox.segmentation`),
and predicts each utterance when the detector decides it has ended. With ``window``/``hop`` it
also predicts the last ``window`` seconds every ``hop`` seconds during long speech.
:class:`LiveDisplay` shows the results in the terminal (a rich ``Live`` that updates in place;
plain lines when the output is not a terminal)
and :func:`run_live` ties the three together and measures the latency: from the moment the
block that let the VAD decide "the utterance ended" arrived, to the printed prediction.
"""

from __future__ import annotations

import dataclasses
import queue
import statistics
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from emovox.audio import load_audio
from emovox.inference.recognizer import Recognizer
from emovox.segmentation import Segment, SegmentationConfig, SegmentStream

LATENCY_TARGET_MS = 150.0
"""The latency emovox aims for, from the end of an utterance to its printed prediction."""

BLOCK_SECONDS = 0.02
"""Length of the audio blocks read from the microphone or a file."""


class NoInputDevice(RuntimeError):
    """There is no microphone to listen to (or no PortAudio to reach one)."""


@dataclasses.dataclass
class LiveResult:
    """One prediction of the live mode.

    Attributes:
        index: the utterance number, from 1.
        final: ``True`` for the prediction of a whole utterance, ``False`` for a rolling one
            (``window``/``hop``) made while the speech goes on.
        start, end: the stretch of the stream predicted (seconds).
        label, probabilities: the prediction.
        decided_at: ``time.perf_counter()`` when the block that ended the utterance arrived.
        latency_ms: from ``decided_at`` to the prediction being printed (set by :func:`run_live`).
        saved: the WAV file written with ``save_dir``.
        revised: this prediction replaces an earlier one of the same utterance (a short piece of
            speech that followed was merged into it, or it was cut in two), exactly as the
            offline segmentation of the same recording shapes it.
        arousal, valence: the scores in [-1, 1] of a model trained with ``dimensions``.
    """

    index: int
    final: bool
    start: float
    end: float
    label: str | None
    probabilities: dict[str, float]
    decided_at: float
    latency_ms: float | None = None
    saved: Path | None = None
    revised: bool = False
    arousal: float | None = None
    valence: float | None = None


class LiveSession:
    """Turns a stream of audio blocks into per-utterance predictions.

    The utterances are the segments of :class:`~emovox.segmentation.SegmentStream`, the path
    ``predict --segments`` and the server use, so a file played through ``live --input`` gives
    the same segments and labels. An utterance is predicted as soon as the detector says it
    ended; if the next piece of speech is short and close enough to be merged into it (or a long
    one is cut in two), a revised prediction of that utterance follows.

    Args:
        recognizer: the model; blocks must be at ``recognizer.sample_rate``.
        window: with ``hop``, predict the last ``window`` seconds every ``hop`` seconds once an
            utterance is longer than ``window``.
        hop: see ``window``.
        save_dir: write each utterance there as ``utterance_NNN.wav``.
        vad: ``auto`` (silero when installed), ``silero`` or ``energy``.
        config: the segmentation settings.
        one_speaker: the session is one speaker: each utterance is adapted to the session's
            utterances so far (itself included; a ``speaker_norm`` model standardises it with
            their statistics, any other balances its prediction with their mean prediction),
            as far as the recognizer's guard allows (none below its minimum of utterances, then
            more as they vary).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        window: float | None = None,
        hop: float | None = None,
        save_dir: str | Path | None = None,
        vad: str | SegmentationConfig = "auto",
        config: SegmentationConfig | None = None,
        one_speaker: bool = False,
    ) -> None:
        if (window is None) != (hop is None) and hop is not None:
            raise ValueError("--hop needs --window")
        if window is not None:
            hop = hop or window / 2
            if window <= 0 or hop <= 0:
                raise ValueError("window and hop must be positive")
        if isinstance(vad, SegmentationConfig):  # emovox 0.1 passed the settings as ``vad``
            vad, config = "energy", vad
        self.recognizer = recognizer
        self.sr = recognizer.sample_rate
        self.window, self.hop = window, hop
        self.stream = SegmentStream(self.sr, vad, config, keep_seconds=window or 0.0)
        self.save_dir = Path(save_dir) if save_dir is not None else None
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
        self._fed = 0  # samples fed so far
        self._last_roll = 0.0
        self._shown: tuple[Segment, int] | None = None  # the held-back segment shown, its index
        self.utterances: dict[int, LiveResult] = {}
        """The latest prediction of every utterance, by index."""
        self.one_speaker = one_speaker
        self._session: dict[int, np.ndarray] = {}  # features of the utterances, by index
        self.count = 0
        # the first prediction pays for lazy initialisation: pay it now, not after an utterance
        recognizer.predict_batch([np.zeros(self.sr, dtype=np.float32)], sr=self.sr)

    @property
    def in_utterance(self) -> bool:
        return self.stream.open_start is not None

    @property
    def utterance_seconds(self) -> float:
        """How long the open utterance has lasted so far (0 when there is none)."""
        start = self.stream.open_start
        return 0.0 if start is None else max(0.0, self._fed / self.sr - start)

    def feed(self, block: np.ndarray, arrived: float | None = None) -> list[LiveResult]:
        """Take the next block (1-D float at ``sample_rate``) and return the predictions it ends.

        ``arrived`` is when the block arrived (``time.perf_counter()``; now when ``None``).
        """
        arrived = time.perf_counter() if arrived is None else arrived
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._fed += block.size
        out = [r for piece in self.stream.feed(block) for r in self._release(*piece, arrived)]
        out += self._show_pending(arrived)
        out += self._rolling(arrived)
        return out

    def close(self, arrived: float | None = None) -> list[LiveResult]:
        """End of the stream: predict what is still open or held back."""
        arrived = time.perf_counter() if arrived is None else arrived
        return [r for piece in self.stream.finish() for r in self._release(*piece, arrived)]

    # -- internals -----------------------------------------------------------------------------
    def _show_pending(self, arrived: float) -> list[LiveResult]:
        """Predict the segment the shaper holds back as soon as it exists (or has grown)."""
        seg = self.stream.pending
        if seg is None or (self._shown is not None and self._shown[0] == seg):
            return []
        revises = self._shown is not None and self._shown[0].start == seg.start
        index = self._shown[1] if revises else self._next_index()
        self._shown = (seg, index)
        audio = self.stream.audio(seg.start, seg.end)
        return [self._utterance(seg, audio, index, arrived, revises)]

    def _release(self, seg: Segment, audio: np.ndarray, arrived: float) -> list[LiveResult]:
        """A segment that can no longer change: confirm what was shown, or predict it."""
        shown = self._shown
        out: list[LiveResult] = []
        if shown is not None and shown[0] == seg:
            res = self.utterances[shown[1]]
        else:
            piece_of_shown = shown is not None and shown[0].start <= seg.start < shown[0].end
            revises = piece_of_shown and shown[0].start == seg.start
            index = shown[1] if revises else self._next_index()
            res = self._utterance(seg, audio, index, arrived, revises)
            out.append(res)
        if shown is not None and seg.end >= shown[0].end - 1e-9:
            self._shown = None
        if self.save_dir is not None and audio.size:
            import soundfile as sf

            res.saved = self.save_dir / f"utterance_{res.index:03d}.wav"
            sf.write(str(res.saved), audio, self.sr, subtype="PCM_16")
        return out

    def _rolling(self, arrived: float) -> list[LiveResult]:
        start = self.stream.open_start
        if self.window is None or self.hop is None or start is None:
            return []
        now = self._fed / self.sr
        if now - start < self.window or now - self._last_roll < self.hop:
            return []
        self._last_roll = now
        audio = self.stream.audio(now - self.window, now)
        pred = self.recognizer.predict_batch([audio], sr=self.sr)[0]
        return [
            LiveResult(
                self.count + 1, False, now - self.window, now, pred.label, pred.probabilities,
                arrived, arousal=pred.arousal, valence=pred.valence,
            )
        ]

    def _next_index(self) -> int:
        self.count += 1
        return self.count

    def _utterance(
        self, seg: Segment, audio: np.ndarray, index: int, arrived: float, revised: bool
    ) -> LiveResult:
        pred = self._predict_adapted(audio, index) if self.one_speaker else None
        if pred is None:
            pred = self.recognizer.predict_batch([audio], sr=self.sr)[0]
        res = LiveResult(
            index, True, seg.start, seg.end, pred.label, pred.probabilities, arrived,
            revised=revised, arousal=pred.arousal, valence=pred.valence,
        )
        self.utterances[index] = res
        return res


    def _predict_adapted(self, audio: np.ndarray, index: int):
        """The utterance adapted to the session so far (``None``: too short to make features
        of)."""
        rec = self.recognizer
        try:
            (feat,) = rec.feature([audio])
        except ValueError:
            return None
        self._session[index] = feat  # a revised utterance replaces its earlier piece
        while len(self._session) > SESSION_UTTERANCES:
            del self._session[min(self._session)]
        stats = rec.stats_of_features(list(self._session.values()))
        return rec.predict_features([feat], [f"utterance {index}"], speaker_stats=stats)[0]


SESSION_UTTERANCES = 200
"""The most recent utterances whose statistics a one-speaker live session adapts to."""


# -- sources --------------------------------------------------------------------------------------


def file_blocks(
    path: str | Path, sr: int, block: float = BLOCK_SECONDS, speed: float = 1.0
) -> Iterator[tuple[np.ndarray, float]]:
    """Play a file as ``(block, arrival time)`` pairs at real-time pace (``speed`` times faster).

    ``speed=0`` delivers the blocks as fast as they are taken. Each block "arrives" when its last
    sample would have been recorded, as from a microphone.

    Raises:
        AudioError: the file cannot be read.
    """
    audio = load_audio(path, sr=sr)
    n = max(1, round(block * sr))
    t0 = time.perf_counter()
    for i in range(0, audio.size, n):
        chunk = audio[i : i + n]
        if speed > 0:
            due = t0 + (i + chunk.size) / sr / speed
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        yield chunk, time.perf_counter()


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the module is there, the PortAudio library is not
        raise NoInputDevice(
            f"no audio input: {exc} (on Debian/Ubuntu: apt-get install libportaudio2)"
        ) from exc
    return sounddevice


def check_input_device(device: int | str | None = None) -> str:
    """The name of the input device that would be used.

    Raises:
        NoInputDevice: no PortAudio, or no device that can record.
    """
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as exc:
        raise NoInputDevice(
            f"no audio input device found ({exc}); use --input FILE to play a file instead"
        ) from exc
    if not info or info.get("max_input_channels", 0) < 1:
        raise NoInputDevice("no audio input device found; use --input FILE to play a file instead")
    return str(info.get("name", device))


class MicrophoneSource:
    """Blocks from the microphone (``sounddevice.InputStream``) as ``(block, arrival time)``.

    Use as a context manager; iterate to get blocks until :meth:`stop` or Ctrl-C.
    """

    def __init__(self, sr: int, block: float = BLOCK_SECONDS, device: int | str | None = None):
        self.sr, self.device = sr, device
        self.blocksize = max(1, round(block * sr))
        self._queue: queue.Queue[tuple[np.ndarray, float]] = queue.Queue()
        self._stream = None
        self.overflows = 0
        self._running = False

    def __enter__(self) -> MicrophoneSource:
        sd = _sounddevice()
        check_input_device(self.device)

        resampler = None

        def callback(indata, frames, time_info, status) -> None:
            if status.input_overflow:
                self.overflows += 1
            block = indata[:, 0].copy()
            if resampler is not None:
                block = resampler.resample_chunk(block)
            self._queue.put((block, time.perf_counter()))

        def open_stream(rate: float, blocksize: int):
            return sd.InputStream(
                samplerate=rate,
                channels=1,
                dtype="float32",
                blocksize=blocksize,
                device=self.device,
                callback=callback,
            )

        try:
            self._stream = open_stream(self.sr, self.blocksize)
        except sd.PortAudioError:  # the device cannot record at the model's rate: resample
            import soxr

            rate = float(sd.query_devices(self.device, kind="input")["default_samplerate"])
            resampler = soxr.ResampleStream(rate, self.sr, 1, dtype="float32")
            self._stream = open_stream(rate, max(1, round(self.blocksize * rate / self.sr)))
        self._stream.start()
        self._running = True
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop recording; iteration ends."""
        self._running = False
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        while self._running:
            try:
                yield self._queue.get(timeout=0.1)
            except queue.Empty:
                continue


# -- display --------------------------------------------------------------------------------------


def _bar(p: float, width: int) -> str:
    full = max(0, min(width, round(p * width)))
    return "█" * full + "·" * (width - full)


class LiveDisplay:
    """The terminal view: the listening state and the last prediction, a bar for every class.

    On a terminal a rich ``Live`` redraws in place; otherwise every final prediction is printed
    as plain lines (rolling ones as a single line).
    """

    def __init__(self, labels: list[str], console=None, bar_width: int = 30) -> None:
        from rich.console import Console

        self.labels = labels
        self.console = console or Console()
        self.bar_width = bar_width
        self._live = None
        self._status = "listening…"
        self._last: LiveResult | None = None

    def __enter__(self) -> LiveDisplay:
        if self.console.is_terminal:
            from rich.live import Live

            self._live = Live(
                self._render(), console=self.console, auto_refresh=False, transient=False
            )
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def status(self, text: str) -> None:
        """Update the status line (e.g. ``"speech 1.2 s"``); only redrawn on a terminal."""
        if text != self._status:
            self._status = text
            if self._live is not None:
                self._live.update(self._render(), refresh=True)

    def show(self, res: LiveResult) -> None:
        """Show a prediction (final: for its utterance; otherwise rolling)."""
        self._last = res
        if self._live is not None:
            if res.final:
                self._live.console.print(self._line(res), highlight=False, soft_wrap=True)
            self._live.update(self._render(), refresh=True)
            return
        if res.final:
            self.console.print(self._line(res), highlight=False, soft_wrap=True)
            for line in self._bars(res):
                self.console.print(line, highlight=False, soft_wrap=True)
        else:
            self.console.print(self._line(res), highlight=False, soft_wrap=True)

    def _line(self, res: LiveResult) -> str:
        what = f"utterance {res.index}" if res.final else f"  … utterance {res.index} (rolling)"
        if res.revised:
            what += " (revised)"
        p = res.probabilities.get(res.label, 0.0) if res.label else 0.0
        lat = f"  latency {res.latency_ms:.0f} ms" if res.final and res.latency_ms else ""
        dims = "".join(
            f"  {name} {value:+.2f}"
            for name, value in (("arousal", res.arousal), ("valence", res.valence))
            if value is not None
        )
        return (
            f"{what}  {res.start:6.2f}–{res.end:6.2f} s  {res.label} ({p:.2f}){dims}{lat}"
            + (f"  saved {res.saved}" if res.saved else "")
        )

    def _bars(self, res: LiveResult) -> list[str]:
        width = max(len(c) for c in self.labels)
        return [
            f"    {c:<{width}} {_bar(res.probabilities.get(c, 0.0), self.bar_width)} "
            f"{res.probabilities.get(c, 0.0):.2f}"
            for c in self.labels
        ]

    def _render(self):
        from rich.text import Text

        lines = [f"[{self._status}]"]
        if self._last is not None:
            lines.append(self._line(self._last))
            lines.extend(self._bars(self._last))
        return Text("\n".join(lines))


# -- the loop -------------------------------------------------------------------------------------


def latency_summary(latencies_ms: list[float]) -> dict:
    """Count, median, p95 and max of latencies (ms), and whether the target is met."""
    if not latencies_ms:
        return {"count": 0}
    xs = sorted(latencies_ms)
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return {
        "count": len(xs),
        "median_ms": round(statistics.median(xs), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(xs[-1], 2),
        "target_ms": LATENCY_TARGET_MS,
        "meets_target": xs[-1] <= LATENCY_TARGET_MS,
    }


def run_live(
    session: LiveSession,
    blocks: Iterable[tuple[np.ndarray, float]],
    display: LiveDisplay | None = None,
) -> dict:
    """Feed ``blocks`` to ``session``, show every prediction, and measure the latency.

    Returns:
        ``{"utterances": [...final results as dicts...], "latency": latency_summary(...)}``.
    """
    first_latency: dict[int, float] = {}  # when each utterance's first prediction was shown

    def handle(batch: list[LiveResult]) -> None:
        for res in batch:
            if res.final:
                # one latency per utterance, its first prediction's: the one printed with it,
                # in the JSON and in the summary (a revision prints none)
                if res.index in first_latency:
                    res.latency_ms = None
                else:
                    res.latency_ms = (time.perf_counter() - res.decided_at) * 1000
                    first_latency[res.index] = res.latency_ms
            if display is not None:
                display.show(res)

    try:
        for block, arrived in blocks:
            handle(session.feed(block, arrived))
            if display is not None:
                secs = session.utterance_seconds
                display.status(f"speech {secs:.1f} s" if secs else "listening…")
    except KeyboardInterrupt:
        pass
    handle(session.close())
    results = [session.utterances[i] for i in sorted(session.utterances)]
    latencies = [first_latency.get(r.index, 0.0) for r in results]
    return {
        "utterances": [
            {
                "index": r.index,
                "start": round(r.start, 3),
                "end": round(r.end, 3),
                "label": r.label,
                "probabilities": r.probabilities,
                "arousal": r.arousal,
                "valence": r.valence,
                "latency_ms": round(lat, 2),
                "saved": str(r.saved) if r.saved else None,
            }
            for r, lat in zip(results, latencies, strict=True)
        ],
        "latency": latency_summary(latencies),
    }
