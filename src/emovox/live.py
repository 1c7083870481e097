"""Live emotion recognition: audio blocks in, one prediction per utterance out.

:class:`LiveSession` consumes blocks of audio (from :class:`MicrophoneSource`, a
``sounddevice.InputStream``, or from :func:`file_blocks`, a file played at real-time pace),
gates them with the streaming energy VAD of :mod:`emovox.segments`, and predicts each utterance
when the VAD decides it has ended. With ``window``/``hop`` it also predicts the last ``window``
seconds every ``hop`` seconds during long speech. :class:`LiveDisplay` shows the results in the
terminal (a rich ``Live`` that updates in place; plain lines when the output is not a terminal)
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
from emovox.recognizer import Recognizer
from emovox.segments import StreamingVad, VadConfig

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


class LiveSession:
    """Turns a stream of audio blocks into per-utterance predictions.

    Args:
        recognizer: the model; blocks must be at ``recognizer.sample_rate``.
        window: with ``hop``, predict the last ``window`` seconds every ``hop`` seconds once an
            utterance is longer than ``window``.
        hop: see ``window``.
        save_dir: write each utterance there as ``utterance_NNN.wav``.
        vad: settings of the energy VAD.
        max_utterance: an utterance is cut (and predicted) when it gets this long.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        window: float | None = None,
        hop: float | None = None,
        save_dir: str | Path | None = None,
        vad: VadConfig | None = None,
        max_utterance: float = 30.0,
    ) -> None:
        if (window is None) != (hop is None) and hop is not None:
            raise ValueError("--hop needs --window")
        if window is not None:
            hop = hop or window / 2
            if window <= 0 or hop <= 0:
                raise ValueError("window and hop must be positive")
        self.recognizer = recognizer
        self.sr = recognizer.sample_rate
        self.window, self.hop = window, hop
        self.cfg = vad or VadConfig()
        self.vad = StreamingVad(self.sr, self.cfg)
        self.max_utterance = max_utterance
        self.save_dir = Path(save_dir) if save_dir is not None else None
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
        self._chunks: list[np.ndarray] = []
        self._buf_start = 0  # stream sample index of self._chunks[0][0]
        self._fed = 0  # samples fed so far
        self._utt_start: int | None = None  # sample index where the open utterance starts
        self._last_roll = 0
        self.count = 0
        # the first prediction pays for lazy initialisation: pay it now, not after an utterance
        recognizer.predict_batch([np.zeros(self.sr, dtype=np.float32)], sr=self.sr)

    @property
    def in_utterance(self) -> bool:
        return self._utt_start is not None

    @property
    def utterance_seconds(self) -> float:
        """How long the open utterance has lasted so far (0 when there is none)."""
        return 0.0 if self._utt_start is None else (self._fed - self._utt_start) / self.sr

    def feed(self, block: np.ndarray, arrived: float | None = None) -> list[LiveResult]:
        """Take the next block (1-D float at ``sample_rate``) and return the predictions it ends.

        ``arrived`` is when the block arrived (``time.perf_counter()``; now when ``None``).
        """
        arrived = time.perf_counter() if arrived is None else arrived
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._chunks.append(block)
        self._fed += block.size
        out: list[LiveResult] = []
        pad = round(self.cfg.pad * self.sr)
        for ev in self.vad.feed(block):
            at = round(ev.time * self.sr)
            if ev.kind == "start" and self._utt_start is None:
                self._utt_start = max(self._buf_start, at - pad)
                self._last_roll = self._utt_start
            elif ev.kind == "end" and self._utt_start is not None:
                out.append(self._finish(min(self._fed, at + pad), arrived))
        if self._utt_start is not None:
            if self._fed - self._utt_start >= self.max_utterance * self.sr:
                out.append(self._finish(self._fed, arrived))
                self._utt_start = self._last_roll = self._fed
            elif self.window is not None:
                win, hop = round(self.window * self.sr), round(self.hop * self.sr)
                if self._fed - self._utt_start >= win and self._fed - self._last_roll >= hop:
                    self._last_roll = self._fed
                    out.append(self._predict(self._fed - win, self._fed, False, arrived))
        self._trim()
        return out

    def close(self, arrived: float | None = None) -> list[LiveResult]:
        """End of the stream: predict the utterance still open, if any."""
        if self._utt_start is None:
            return []
        return [self._finish(self._fed, time.perf_counter() if arrived is None else arrived)]

    # -- internals -----------------------------------------------------------------------------
    def _finish(self, end: int, arrived: float) -> LiveResult:
        self.count += 1
        res = self._predict(self._utt_start, end, True, arrived)
        if self.save_dir is not None:
            import soundfile as sf

            res.saved = self.save_dir / f"utterance_{self.count:03d}.wav"
            sf.write(str(res.saved), self._audio(self._utt_start, end), self.sr, subtype="PCM_16")
        self._utt_start = None
        return res

    def _predict(self, start: int, end: int, final: bool, arrived: float) -> LiveResult:
        audio = self._audio(start, end)
        pred = self.recognizer.predict_batch([audio], sr=self.sr)[0]
        return LiveResult(
            index=self.count if final else self.count + 1,
            final=final,
            start=start / self.sr,
            end=end / self.sr,
            label=pred.label,
            probabilities=pred.probabilities,
            decided_at=arrived,
        )

    def _audio(self, start: int, end: int) -> np.ndarray:
        data = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        self._chunks = [data]
        return data[max(0, start - self._buf_start) : max(0, end - self._buf_start)].copy()

    def _trim(self) -> None:
        """Forget audio no open utterance can need (keep one second of pre-roll)."""
        keep_from = self._fed - self.sr if self._utt_start is None else self._utt_start
        while self._chunks and self._buf_start + self._chunks[0].size < keep_from:
            self._buf_start += self._chunks.pop(0).size


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
        p = res.probabilities.get(res.label, 0.0) if res.label else 0.0
        lat = f"  latency {res.latency_ms:.0f} ms" if res.final and res.latency_ms else ""
        return (
            f"{what}  {res.start:6.2f}–{res.end:6.2f} s  {res.label} ({p:.2f}){lat}"
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
    results: list[LiveResult] = []

    def handle(batch: list[LiveResult]) -> None:
        for res in batch:
            if res.final:
                res.latency_ms = (time.perf_counter() - res.decided_at) * 1000
            if display is not None:
                display.show(res)
            if res.final:
                # the latency reported covers the printing too
                res.latency_ms = (time.perf_counter() - res.decided_at) * 1000
                results.append(res)

    try:
        for block, arrived in blocks:
            handle(session.feed(block, arrived))
            if display is not None:
                secs = session.utterance_seconds
                display.status(f"speech {secs:.1f} s" if secs else "listening…")
    except KeyboardInterrupt:
        pass
    handle(session.close())
    return {
        "utterances": [
            {
                "index": r.index,
                "start": round(r.start, 3),
                "end": round(r.end, 3),
                "label": r.label,
                "probabilities": r.probabilities,
                "latency_ms": round(r.latency_ms or 0.0, 2),
                "saved": str(r.saved) if r.saved else None,
            }
            for r in results
        ],
        "latency": latency_summary([r.latency_ms or 0.0 for r in results]),
    }
