"""Waveform augmentation, reproducible by seed, and the test conditions of robustness reports.

Pure functions on float32 numpy audio; randomness only from an explicit
``np.random.Generator``. :func:`random_augment` chains them for training copies
(``TrainConfig.augment``); :class:`Condition` is a fixed change for ``evaluate --condition``;
:class:`WaveTransform` wraps either for :func:`emovox.features.extract_files`, which caches the
features of each variant apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emovox.audio import SAMPLE_RATE, resample


def speed_perturb(audio: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Play ``audio`` ``factor`` times faster (tempo and pitch together, as Kaldi's speed
    perturbation): 1.1 gives a 10 % shorter, 10 % higher-pitched copy."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0:
        return audio
    return resample(audio, round(sr * factor), sr).astype(np.float32, copy=False)


# -- constants -----------------------------------------------------------------------------------

AUGMENT_KINDS = ("noise", "gain", "pitch", "reverb", "telephone", "codec", "clip")
"""The augmentations :func:`random_augment` knows (``TrainConfig.augment`` takes a subset)."""

CHAIN_ORDER = ("pitch", "reverb", "noise", "gain", "telephone", "codec", "clip")
"""The order in which chosen augmentations are applied: the voice (pitch), then the room
(reverb), then the background (noise), then the recording level (gain, which clips), then the
line (a telephone band) and the file (a lossy codec), and last a saturating stage (clip: a
playback or re-recording driven past full scale). New kinds go at the end, so the chains of the
older kinds draw the same numbers as before."""

TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
"""Narrow-band telephony: 8 kHz sampling and the 300-3400 Hz pass band (ITU-T G.712)."""

BAND_ORDER = 4
"""Order of the Butterworth high- and low-pass filters of :func:`band_limit`."""

MP3_BITRATES_KBPS = (16, 24, 32, 48, 64)
"""The constant bitrates the ``codec`` augmentation draws from (kbit/s)."""

NOISE_KINDS = ("white", "speech")
"""Noise colours of :func:`add_noise`."""

AUGMENT_VERSION = "1"
"""Part of every augmentation cache key; bump it when an algorithm or default range changes."""

ACTIVE_RANGE_DB = 40.0
"""Frames quieter than the loudest frame by more than this count as silence (not speech)."""

SPEECH_KNEE_HZ = 500.0
SPEECH_SLOPE_DB = 9.0
"""Speech-shaped noise: flat up to :data:`SPEECH_KNEE_HZ`, then falling
:data:`SPEECH_SLOPE_DB` dB per octave (the shape of the long-term average speech spectrum)."""

REVERB_DRR_DB = 3.0
"""Default direct-to-reverberant energy ratio of :func:`room_impulse_response`."""

_LN_1000 = float(np.log(1000.0))  # an amplitude 60 dB down: exp(-ln(1000))


# -- measuring -----------------------------------------------------------------------------------


def active_speech_power(
    audio: np.ndarray,
    sr: int = SAMPLE_RATE,
    frame_seconds: float = 0.02,
    range_db: float = ACTIVE_RANGE_DB,
) -> float:
    """Mean power of the active frames of ``audio``: the 20 ms frames within ``range_db`` dB of
    the loudest one. Leading, trailing and inner silences therefore do not lower it, so an SNR
    relative to it means the same for an utterance with or without long pauses. 0 for silence."""
    x = np.asarray(audio, dtype=np.float64).ravel()
    if not len(x):
        return 0.0
    n = max(1, round(frame_seconds * sr))
    k = len(x) // n
    frames = x[None, :] if k == 0 else x[: k * n].reshape(k, n)
    power = np.mean(frames**2, axis=1)
    peak = float(power.max())
    if peak <= 0.0:
        return 0.0
    return float(power[power >= peak * 10.0 ** (-range_db / 10.0)].mean())


def stable_hash(text: str | os.PathLike) -> int:
    """A 64-bit hash of ``text`` that is the same in every process and on every machine (unlike
    :func:`hash`), for seeding per-file random generators."""
    return int.from_bytes(hashlib.sha256(str(text).encode()).digest()[:8], "little")


def file_key(path: str | os.PathLike) -> str:
    """What identifies a file for its augmentation seeds: its folder's name and its own name.

    Not the whole path, so that a corpus moved or mounted elsewhere gets the same noise; the
    folder keeps ``happy/001.wav`` and ``sad/001.wav`` apart."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


# -- single augmentations ------------------------------------------------------------------------


def speech_spectrum(freqs: np.ndarray) -> np.ndarray:
    """Amplitude response of speech-shaped noise at ``freqs`` (Hz): 1 up to
    :data:`SPEECH_KNEE_HZ`, then -:data:`SPEECH_SLOPE_DB` dB per octave.

    A fixed shape, not the utterance's own long-term spectrum: the noise must not carry the
    spectral tilt of the emotion it masks (angry speech has more high-frequency energy), and a
    fixed shape makes ``speech:10`` the same condition for every file and corpus."""
    octaves = np.log2(
        np.maximum(np.asarray(freqs, dtype=np.float64), SPEECH_KNEE_HZ) / SPEECH_KNEE_HZ
    )
    return 10.0 ** (-SPEECH_SLOPE_DB * octaves / 20.0)


def make_noise(n: int, kind: str, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``n`` samples of Gaussian noise, ``"white"`` or ``"speech"``-shaped (float64, unscaled)."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    if kind == "white":
        return rng.standard_normal(n)
    import scipy.fft  # slow to import: only where needed

    m = scipy.fft.next_fast_len(max(n, 1), real=True)
    spec = scipy.fft.rfft(rng.standard_normal(m))
    spec *= speech_spectrum(scipy.fft.rfftfreq(m, 1.0 / sr))
    return scipy.fft.irfft(spec, m)[:n]


def add_noise(
    audio: np.ndarray,
    snr_db: float,
    kind: str,
    rng: np.random.Generator,
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """``audio`` plus ``kind`` noise (``"white"`` or ``"speech"``-shaped) at ``snr_db`` dB below
    the utterance's active-speech power (:func:`active_speech_power`).

    The sum is not clipped. Silent audio (no speech to measure against) is returned unchanged.
    """
    x = np.asarray(audio, dtype=np.float32)
    noise = make_noise(len(x), kind, rng, sr)
    signal_power = active_speech_power(x, sr)
    noise_power = float(np.mean(noise**2)) if len(noise) else 0.0
    if signal_power <= 0.0 or noise_power <= 0.0:
        return x.copy()
    noise *= np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (x + noise).astype(np.float32)


def hard_clip(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """``audio`` clipped to [-1, 1] (float32) and the number of samples that were outside."""
    x = np.asarray(audio, dtype=np.float32)
    clipped = int(np.count_nonzero(np.abs(x) > 1.0))
    return (np.clip(x, -1.0, 1.0) if clipped else x.copy()), clipped


def gain(audio: np.ndarray, db: float) -> tuple[np.ndarray, int]:
    """``audio`` scaled by ``db`` decibels and hard-clipped to [-1, 1], as a recorder whose level
    is set too high; returns the audio and the number of clipped samples."""
    x = np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (db / 20.0))
    return hard_clip(x)


def overdrive(audio: np.ndarray, over_db: float) -> tuple[np.ndarray, int]:
    """``audio`` driven ``over_db`` decibels past full scale and hard-clipped to [-1, 1]: its peak
    is scaled to ``10 ** (over_db / 20)`` first, so the amount of clipping is the same for a
    quiet and a loud recording (unlike :func:`gain`, whose clipping depends on the recorded
    level). Returns the audio and the number of clipped samples; silence is returned unchanged.
    """
    x = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak <= 0.0:
        return x.copy(), 0
    return hard_clip(x * np.float32(10.0 ** (over_db / 20.0) / peak))


def pitch_shift(audio: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """``audio`` with its pitch moved by ``semitones`` and its duration kept (librosa's phase
    vocoder and resampling); about 25 ms per 3 s at 16 kHz on one CPU thread."""
    x = np.asarray(audio, dtype=np.float32)
    if semitones == 0 or not len(x):
        return x.copy()
    import librosa

    n_fft = 2048
    padded = np.pad(x, (0, max(0, n_fft - len(x))))  # short clips: no n_fft warning
    y = librosa.effects.pitch_shift(padded, sr=sr, n_steps=float(semitones), n_fft=n_fft)
    return np.asarray(y[: len(x)], dtype=np.float32)


def room_impulse_response(
    sr: int, rt60: float, rng: np.random.Generator, drr_db: float = REVERB_DRR_DB
) -> np.ndarray:
    """A synthetic room impulse response (float64, ``rt60`` seconds long).

    A unit direct-path impulse, then 4-8 early reflections at 3-40 ms and a diffuse tail of
    Gaussian noise, all under an envelope falling 60 dB in ``rt60`` seconds; the reflections and
    the tail together carry ``drr_db`` dB less energy than the direct path.
    """
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    n = max(2, round(rt60 * sr))
    envelope = np.exp(-_LN_1000 * np.arange(n) / (rt60 * sr))
    late = rng.standard_normal(n) * envelope
    n_early = int(rng.integers(4, 9))
    lo, hi = max(1, round(0.003 * sr)), max(2, min(n, round(0.040 * sr)))
    delays = rng.integers(lo, hi, size=n_early)
    amps = rng.uniform(2.0, 5.0, size=n_early) * rng.choice([-1.0, 1.0], size=n_early)
    np.add.at(late, delays, amps * envelope[delays])
    late[:lo] = 0.0  # nothing arrives before the first reflection
    late *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(late**2))
    late[0] = 1.0
    return late


def reverb(
    audio: np.ndarray,
    sr: int,
    rt60: float,
    rng: np.random.Generator,
    drr_db: float = REVERB_DRR_DB,
) -> np.ndarray:
    """``audio`` in a synthetic room (:func:`room_impulse_response`): convolved, cut to the input
    length (the tail past the end is dropped) and scaled back to its active-speech power."""
    x = np.asarray(audio, dtype=np.float32)
    if not len(x):
        return x.copy()
    import scipy.signal  # slow to import: only where needed

    rir = room_impulse_response(sr, rt60, rng, drr_db)
    y = scipy.signal.fftconvolve(x.astype(np.float64), rir)[: len(x)]
    before, after = active_speech_power(x, sr), active_speech_power(y, sr)
    if after > 0.0:
        y *= np.sqrt(before / after)
    return y.astype(np.float32)


def band_limit(
    audio: np.ndarray,
    sr: int,
    low_hz: float = TELEPHONE_BAND_HZ[0],
    high_hz: float = TELEPHONE_BAND_HZ[1],
    rate: int = TELEPHONE_RATE,
) -> np.ndarray:
    """``audio`` as a telephone line carries it: resampled to ``rate``, band-passed to
    ``low_hz``-``high_hz`` (causal Butterworth filters of :data:`BAND_ORDER` on each side) and
    resampled back to ``sr``. The length is kept.

    Raises:
        ValueError: the band is empty or ``high_hz`` is not below ``rate / 2``.
    """
    if not 0.0 <= low_hz < high_hz < rate / 2:
        raise ValueError(
            f"band {low_hz:g}-{high_hz:g} Hz must be increasing and below {rate / 2:g} Hz"
        )
    x = np.asarray(audio, dtype=np.float32)
    if len(x) < 32:
        return x.copy()
    import scipy.signal  # slow to import: only where needed

    narrow = resample(x, sr, rate).astype(np.float64)
    sos = scipy.signal.butter(BAND_ORDER, high_hz, "lowpass", fs=rate, output="sos")
    if low_hz > 0:
        high_pass = scipy.signal.butter(BAND_ORDER, low_hz, "highpass", fs=rate, output="sos")
        sos = np.vstack([sos, high_pass])
    narrow = scipy.signal.sosfilt(sos, narrow)  # causal, as a line is
    y = resample(narrow.astype(np.float32), rate, sr)
    out = np.zeros(len(x), dtype=np.float32)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def _mp3_level(sr: int, kbps: float) -> float:
    """libsndfile's compression level (0-1) for a constant ``kbps`` at ``sr``: the level spans
    the bitrates of the MPEG version that ``sr`` belongs to, highest at 0."""
    low, high = (32, 320) if sr >= 32000 else (8, 160) if sr >= 16000 else (8, 64)
    if not low <= kbps <= high:
        raise ValueError(f"an MP3 at {sr} Hz takes {low}-{high} kbit/s, not {kbps:g}")
    return (high - kbps) / (high - low)


MP3_MAX_DELAY = 2 * 1152
"""The longest encoder + decoder delay :func:`mp3_roundtrip` looks for (samples)."""


def mp3_roundtrip(audio: np.ndarray, sr: int, kbps: float) -> np.ndarray:
    """``audio`` encoded as a constant-bitrate MP3 of ``kbps`` kbit/s and decoded again
    (libsndfile's LAME and mpg123, in memory), realigned to the input and cut to its length.

    The decoder may keep the encoder's delay (about 1105 samples at 16 kHz); it is found by
    correlation with the input (0 to :data:`MP3_MAX_DELAY` samples) and removed.

    Raises:
        ValueError: ``kbps`` is outside what an MP3 at ``sr`` can carry.
    """
    import io

    import soundfile as sf

    x = np.asarray(audio, dtype=np.float32)
    level = _mp3_level(sr, kbps)
    if not len(x):
        return x.copy()
    buf = io.BytesIO()
    with sf.SoundFile(
        buf,
        "w",
        sr,
        1,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=level,
        bitrate_mode="CONSTANT",
    ) as f:
        f.write(np.clip(x, -1.0, 1.0))
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32", always_2d=False)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    lag = _delay(x, y, MP3_MAX_DELAY)
    out = np.zeros(len(x), dtype=np.float32)
    part = y[lag : lag + len(x)]
    out[: len(part)] = part
    return out


def _delay(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """The lag in ``0..max_lag`` at which ``y`` best matches ``x`` (0 when ``x`` is silent)."""
    import scipy.signal

    n = min(len(x), len(y) - max_lag, 5 * SAMPLE_RATE)
    if n <= 0 or not np.any(x[:n]):
        return 0
    c = scipy.signal.correlate(
        y[: n + max_lag].astype(np.float64), x[:n].astype(np.float64), "valid"
    )
    return int(np.argmax(c))


# -- random chains (training) --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AugmentRanges:
    """Where :func:`random_augment` draws its parameters (uniformly) from.

    Attributes:
        p: the chance of each requested kind being applied (at least one always is).
        snr_db: noise SNR against active speech; the noise is white or speech-shaped (even odds).
        gain_db: level change, clipped to [-1, 1] afterwards (+20 dB clips most utterances).
        low_hz, high_hz: the edges of a telephone band (at 8 kHz).
        mp3_kbps: the MP3 bitrates a ``codec`` copy is drawn from (one of them, even odds).
        semitones: pitch shift.
        rt60: reverberation time in seconds.
        drr_db: direct-to-reverberant ratio.
        over_db: how far past full scale a ``clip`` copy drives its peak (:func:`overdrive`).
    """

    p: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-20.0, 20.0)
    semitones: tuple[float, float] = (-2.0, 2.0)
    rt60: tuple[float, float] = (0.2, 0.8)
    drr_db: tuple[float, float] = (0.0, 10.0)
    low_hz: tuple[float, float] = (200.0, 400.0)
    high_hz: tuple[float, float] = (3000.0, 3800.0)
    mp3_kbps: tuple[int, ...] = MP3_BITRATES_KBPS
    over_db: tuple[float, float] = (0.0, 30.0)


DEFAULT_RANGES = AugmentRanges()


def check_kinds(kinds: str | Sequence[str]) -> tuple[str, ...]:
    """Augmentation names (a sequence or a comma list) checked and in :data:`AUGMENT_KINDS`
    order, without repeats; an unknown name raises :class:`ValueError` naming it."""
    if isinstance(kinds, str):
        kinds = kinds.split(",")
    names = [str(k).strip().lower() for k in kinds if str(k).strip()]
    unknown = [k for k in names if k not in AUGMENT_KINDS]
    if unknown:
        raise ValueError(
            f"unknown augmentation(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(AUGMENT_KINDS)}"
        )
    return tuple(k for k in AUGMENT_KINDS if k in names)


def draw_augment(
    kinds: Sequence[str], rng: np.random.Generator, ranges: AugmentRanges = DEFAULT_RANGES
) -> dict[str, dict[str, float | str]]:
    """Random parameters for a chain of ``kinds``: each is chosen with chance ``ranges.p`` (one
    drawn at random when none was), in :data:`CHAIN_ORDER`. Deterministic for a given ``rng``."""
    wanted = [k for k in CHAIN_ORDER if k in check_kinds(kinds)]
    if not wanted:
        return {}
    chosen = [k for k in wanted if rng.random() < ranges.p]
    if not chosen:
        chosen = [wanted[int(rng.integers(len(wanted)))]]
    params: dict[str, dict[str, float | str]] = {}
    for k in chosen:
        if k == "pitch":
            params[k] = {"semitones": float(rng.uniform(*ranges.semitones))}
        elif k == "reverb":
            params[k] = {
                "rt60": float(rng.uniform(*ranges.rt60)),
                "drr_db": float(rng.uniform(*ranges.drr_db)),
            }
        elif k == "noise":
            params[k] = {
                "kind": NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))],
                "snr_db": float(rng.uniform(*ranges.snr_db)),
            }
        elif k == "telephone":
            params[k] = {
                "low_hz": float(rng.uniform(*ranges.low_hz)),
                "high_hz": float(rng.uniform(*ranges.high_hz)),
            }
        elif k == "codec":
            params[k] = {"kbps": float(ranges.mp3_kbps[int(rng.integers(len(ranges.mp3_kbps)))])}
        elif k == "clip":
            params[k] = {"over_db": float(rng.uniform(*ranges.over_db))}
        else:
            params[k] = {"db": float(rng.uniform(*ranges.gain_db))}
    return params


def apply_augment(
    audio: np.ndarray, sr: int, params: dict[str, dict], rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Apply a chain from :func:`draw_augment`; returns the audio and its clipped samples."""
    y = np.asarray(audio, dtype=np.float32)
    clipped = 0
    for k in CHAIN_ORDER:
        p = params.get(k)
        if p is None:
            continue
        if k == "pitch":
            y = pitch_shift(y, sr, p["semitones"])
        elif k == "reverb":
            y = reverb(y, sr, p["rt60"], rng, p["drr_db"])
        elif k == "noise":
            y = add_noise(y, p["snr_db"], p["kind"], rng, sr)
        elif k == "telephone":
            y = band_limit(y, sr, p["low_hz"], p["high_hz"])
        elif k == "codec":
            y = mp3_roundtrip(y, sr, p["kbps"])
        elif k == "clip":
            y, n = overdrive(y, p["over_db"])
            clipped += n
        else:
            y, clipped = gain(y, p["db"])
    return y, clipped


def random_augment(
    audio: np.ndarray,
    sr: int,
    kinds: Sequence[str],
    rng: np.random.Generator,
    ranges: AugmentRanges = DEFAULT_RANGES,
) -> np.ndarray:
    """A randomly augmented copy of ``audio``: a random subset of ``kinds`` with random
    parameters from ``ranges`` (:func:`draw_augment`, :func:`apply_augment`). The same ``rng``
    state gives the same copy."""
    return apply_augment(audio, sr, draw_augment(kinds, rng, ranges), rng)[0]


# -- test conditions (robustness) ----------------------------------------------------------------

CONDITION_KINDS = {
    "clean": "",
    "white": "SNR in dB",
    "speech": "SNR in dB",
    "gain": "dB",
    "pitch": "semitones",
    "reverb": "RT60 in seconds",
    "telephone": "",
    "mp3": "kbit/s",
}
"""Test conditions of ``emovox evaluate --condition KIND:VALUE`` and what VALUE means."""


@dataclasses.dataclass(frozen=True)
class Condition:
    """A fixed test condition, e.g. ``white:20`` (white noise at 20 dB SNR) or ``gain:-20``.

    Applying it always ends with a hard clip to [-1, 1], as a recording would."""

    kind: str
    value: float = 0.0

    @property
    def name(self) -> str:
        """The canonical spelling, e.g. ``"speech:10"``, ``"clean"`` or ``"telephone"``."""
        return self.kind if not CONDITION_KINDS[self.kind] else f"{self.kind}:{self.value:g}"

    def apply(self, audio: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """The audio under this condition and its number of clipped samples."""
        y = np.asarray(audio, dtype=np.float32)
        if self.kind in NOISE_KINDS:
            y = add_noise(y, self.value, self.kind, rng, sr)
        elif self.kind == "gain":
            y = y * np.float32(10.0 ** (self.value / 20.0))
        elif self.kind == "pitch":
            y = pitch_shift(y, sr, self.value)
        elif self.kind == "reverb":
            y = reverb(y, sr, self.value, rng)
        elif self.kind == "telephone":
            y = band_limit(y, sr)
        elif self.kind == "mp3":
            y = mp3_roundtrip(y, sr, self.value)
        return hard_clip(y)


def parse_condition(spec: str) -> Condition:
    """``"white:20"`` -> ``Condition("white", 20.0)``; ``"clean"`` -> the clean condition.

    Raises :class:`ValueError` naming the spec and the known kinds when it is malformed."""
    kind, sep, value = str(spec).strip().lower().partition(":")
    kind = kind.strip()
    known = ", ".join(f"{k}:VALUE ({v})" if v else k for k, v in CONDITION_KINDS.items())
    if kind not in CONDITION_KINDS:
        raise ValueError(f"unknown test condition {spec!r}; use one of {known}")
    if not CONDITION_KINDS[kind]:
        if sep:
            raise ValueError(f"test condition {spec!r}: '{kind}' takes no value")
        return Condition(kind)
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            f"test condition {spec!r} needs a number after '{kind}:' ({CONDITION_KINDS[kind]})"
        ) from None
    if not np.isfinite(number):
        raise ValueError(f"test condition {spec!r}: the value must be finite")
    if kind == "reverb" and number <= 0:
        raise ValueError(f"test condition {spec!r}: RT60 must be positive")
    if kind == "mp3":
        try:
            _mp3_level(SAMPLE_RATE, number)
        except ValueError as e:
            raise ValueError(f"test condition {spec!r}: {e}") from None
    return Condition(kind, number)


# -- waveform transforms for feature extraction --------------------------------------------------

TransformFn = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, int]]
"""``(audio, sample_rate, rng) -> (audio, clipped_samples)``."""


@dataclasses.dataclass(frozen=True)
class WaveTransform:
    """A waveform change applied before feature extraction, cached under its own ``variant``.

    File ``path`` is transformed with ``np.random.default_rng([seed, copy, stable_hash(key)])``
    (``key`` from :func:`file_key`), so the result depends on the seed, the copy and the file,
    never on the order of files or the number of worker threads.
    """

    fn: TransformFn
    variant: str
    seed: int = 0
    copy: int = 0

    def __post_init__(self) -> None:
        if not self.variant:
            raise ValueError("a waveform transform needs a non-empty cache variant")
        if self.seed < 0 or self.copy < 0:
            raise ValueError(f"seed and copy must be >= 0, got {self.seed} and {self.copy}")

    def rng(self, path: str | os.PathLike) -> np.random.Generator:
        """The random generator of ``path``."""
        return np.random.default_rng([self.seed, self.copy, stable_hash(file_key(path))])

    def __call__(
        self, audio: np.ndarray, sr: int, path: str | os.PathLike
    ) -> tuple[np.ndarray, int]:
        y, clipped = self.fn(audio, sr, self.rng(path))
        return np.asarray(y, dtype=np.float32), int(clipped)


def speed_transform(factor: float) -> WaveTransform:
    """:func:`speed_perturb` as a transform (cache variant ``speed<factor>``, as before)."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    return WaveTransform(lambda x, sr, _rng: (speed_perturb(x, sr, factor), 0), f"speed{factor:g}")


def augment_variant(
    kinds: Sequence[str], seed: int, copy: int, ranges: AugmentRanges = DEFAULT_RANGES
) -> str:
    """The cache variant of augmented copy ``copy``: kinds, seed, copy and
    :data:`AUGMENT_VERSION` (and a hash of ``ranges`` when they are not the defaults)."""
    key = f"aug{AUGMENT_VERSION}-{'+'.join(check_kinds(kinds))}-s{seed}-c{copy}"
    if ranges != DEFAULT_RANGES:
        key += f"-r{stable_hash(repr(ranges)) % 16**8:08x}"
    return key


def augment_transform(
    kinds: Sequence[str], seed: int, copy: int, ranges: AugmentRanges = DEFAULT_RANGES
) -> WaveTransform:
    """The transform making augmented copy ``copy`` of each file (:func:`random_augment`)."""
    chosen = check_kinds(kinds)
    if not chosen:
        raise ValueError("no augmentation kind given")

    def fn(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        return apply_augment(x, sr, draw_augment(chosen, rng, ranges), rng)

    return WaveTransform(fn, augment_variant(chosen, seed, copy, ranges), seed, copy)


CONDITION_SEED = 0
"""Seed of the test conditions' noise and rooms (fixed, so every model meets the same noise)."""


def condition_transform(condition: Condition | str, seed: int = CONDITION_SEED) -> WaveTransform:
    """The transform of a test condition (cache variant ``cond<version>-<kind>_<value>``)."""
    cond = parse_condition(condition) if isinstance(condition, str) else condition
    if cond.kind == "clean":
        raise ValueError("the clean condition needs no transform")
    return WaveTransform(
        cond.apply, f"cond{AUGMENT_VERSION}-{cond.name.replace(':', '_')}-s{seed}", seed, 0
    )
