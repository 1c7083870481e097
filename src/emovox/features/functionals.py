"""``functionals``: fast utterance functionals of pitch, loudness, voice quality and spectral shape.

A torch-native stand-in for openSMILE's eGeMAPS (Eyben et al., 2016) that is about ten times
faster (a few milliseconds per 3-s utterance on one core, against ~50 ms), so that a model that
reads an utterance-level view can still answer in real time. The signal is read in 10-ms frames:

* **pitch**: normalised autocorrelation of 40-ms Hann frames (the window's own autocorrelation
  divided out, as Boersma (1993) does), the best lag between 60 and 500 Hz with a small octave
  cost in favour of higher candidates, refined by parabolic interpolation; a frame is voiced when
  its peak correlation passes 0.45 and it is within 35 dB of the loudest frame;
* **loudness**: the sum of mel-band powers raised to 0.3 (a Stevens-like compression), and the
  frame energy in dB;
* **voice quality**: harmonics-to-noise ratio from the correlation peak, frame-to-frame period
  and amplitude perturbation of consecutive voiced frames (frame-level analogues of jitter and
  shimmer, not cycle-to-cycle measures), H1-H2 from a 1024-point spectrum;
* **spectral balance**: alpha ratio (50-1000 Hz over 1-5 kHz), Hammarberg index, spectral slopes
  0-500 Hz and 500-1500 Hz, centroid, flux, MFCC 1-4;
* **rhythm**: voiced share of the speech, voiced segments per second, lengths of voiced and
  unvoiced segments, loudness peaks per second (rates per second of the span from the first to
  the last speech frame);
* **spectral envelope**: mean and standard deviation of each log-mel band over the speech frames
  (after removing the utterance's mean level).

Functionals: mean and standard deviation of every LLD (over voiced frames for pitch and voice
quality, over speech frames for loudness; spectral LLDs over voiced frames, with their mean over
unvoiced speech frames too), percentiles 20/50/80, their range and the mean absolute deviation of
pitch and loudness, and the mean and standard deviation of their rising and falling slopes.

Everything is computed on the waveform scaled to a fixed RMS level (``level_db``), so no value moves
with the recording's gain, except one on purpose: ``level_dbfs``, the recording's own RMS level.
That one carries the loudness of a voice relative to the same speaker's other recordings once
per-speaker normalisation is applied (``speaker_norm``), and only then is it independent of the
microphone's gain; models meant for single utterances without their speaker's statistics should
not rely on it.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch

from emovox.features import spectral
from emovox.features.logmel import LogMelWithFunctionals
from emovox.features.utterance import UtteranceFeature

HOP = 160
"""10 ms at 16 kHz: one LLD frame."""
SPEC_FFT, SPEC_WIN = 512, 400
PITCH_FFT, PITCH_WIN = 1024, 640
F0_MIN, F0_MAX = 60.0, 500.0
VOICING_THRESHOLD = 0.45
OCTAVE_COST = 0.01
"""Praat's default: a candidate loses this much correlation per octave below the highest."""
SPEECH_RANGE_DB = 35.0
"""Frames within this many dB of the loudest frame are speech; quieter ones are silence."""
N_MELS = 64
LEVEL_DB = -20.0
DB_FLOOR = 1e-10

SPECTRAL_LLDS = (
    "alpha_ratio",
    "hammarberg",
    "slope_0_500",
    "slope_500_1500",
    "centroid_khz",
    "flux",
    "mfcc1",
    "mfcc2",
    "mfcc3",
    "mfcc4",
)
_CONTOUR = ("mean", "std", "p20", "p50", "p80", "range_20_80", "mad")
_SLOPES = ("rise_mean", "rise_std", "fall_mean", "fall_std")
_PAIR = ("mean", "std")


def functional_names(n_mels: int = N_MELS) -> list[str]:
    """The names of the values :func:`utterance_functionals` returns, in order."""
    names = [f"f0_semitone_{s}" for s in _CONTOUR + _SLOPES]
    names += [f"loudness_{s}" for s in _CONTOUR + _SLOPES]
    for lld in ("energy_db", "hnr_db", "period_perturbation", "amplitude_perturbation_db", "h1_h2"):
        names += [f"{lld}_{s}" for s in _PAIR]
    for lld in SPECTRAL_LLDS:
        names += [f"{lld}_voiced_mean", f"{lld}_voiced_std", f"{lld}_unvoiced_mean"]
    names += [
        "voiced_ratio",
        "voiced_segments_per_s",
        "voiced_segment_s_mean",
        "voiced_segment_s_std",
        "unvoiced_segment_s_mean",
        "unvoiced_segment_s_std",
        "loudness_peaks_per_s",
        "level_dbfs",
    ]
    names += [f"mel{i}_mean" for i in range(n_mels)] + [f"mel{i}_std" for i in range(n_mels)]
    return names


FUNCTIONALS_DIM = len(functional_names())


# -- frame-level descriptors -------------------------------------------------------------------
@lru_cache(maxsize=4)
def _pitch_window(sr: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """The pitch analysis window, its normalised autocorrelation and the lag range (samples)."""
    win = round(PITCH_WIN * sr / 16000)
    nfft = 1 << math.ceil(math.log2(win + sr / F0_MIN + 2))
    w = torch.hann_window(win, periodic=False)
    spec = torch.fft.rfft(w, nfft)
    acw = torch.fft.irfft(spec.real.square() + spec.imag.square(), nfft)[:win]
    lo, hi = int(sr / F0_MAX), math.ceil(sr / F0_MIN)
    return w, acw / acw[0], lo, hi


def _frames(x: torch.Tensor, win: int, hop: int, n: int) -> torch.Tensor:
    """``n`` centred frames of ``win`` samples every ``hop`` (zero-padded): ``[n, win]``."""
    pad = win // 2
    need = (n - 1) * hop + win
    xp = torch.nn.functional.pad(x, (pad, max(0, need - len(x) - pad)))
    return xp.unfold(0, win, hop)[:n]


def pitch_track(
    x: torch.Tensor, sr: int, frames: torch.Tensor, n_frames: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F0 (Hz), peak normalised correlation and the 1024-point power spectrum of the frames
    ``frames`` (indices into the ``n_frames`` 10-ms frames of ``x``)."""
    window, acw, lo, hi = _pitch_window(sr)
    win = len(window)
    hop = round(HOP * sr / 16000)
    fr = _frames(x, win, hop, n_frames)[frames]
    fr = (fr - fr.mean(dim=1, keepdim=True)) * window
    nfft = 1 << math.ceil(math.log2(win + hi + 2))
    spec = torch.fft.rfft(fr, nfft)
    power = spec.real.square() + spec.imag.square()
    ac = torch.fft.irfft(power, nfft)[:, : hi + 2]
    rn = ac / ac[:, :1].clamp_min(1e-12) / acw[: hi + 2]
    lags = torch.arange(hi + 2, dtype=x.dtype)
    score = rn - OCTAVE_COST * torch.log2((lags * F0_MIN / sr).clamp_min(1e-3))
    best = score[:, lo : hi + 1].argmax(dim=1, keepdim=True) + lo
    ym, y0, yp = rn.gather(1, best - 1), rn.gather(1, best), rn.gather(1, best + 1)
    den = ym - 2 * y0 + yp
    shift = torch.where(den.abs() > 1e-9, 0.5 * (ym - yp) / den, torch.zeros_like(den))
    lag = best.to(x.dtype) + shift.clamp(-1.0, 1.0)
    return (sr / lag)[:, 0], y0[:, 0], power


def _db(power: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(power.clamp_min(DB_FLOOR))


def _slope(db: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Least-squares slope (dB per kHz) of each row of ``db`` over ``freqs`` (Hz)."""
    fc = freqs / 1000.0 - (freqs / 1000.0).mean()
    return ((db - db.mean(dim=1, keepdim=True)) * fc).sum(dim=1) / (fc * fc).sum()


# -- functionals -------------------------------------------------------------------------------
def _pair(v: np.ndarray) -> list[float]:
    return [float(v.mean()), float(v.std())] if v.size >= 2 else [0.0, 0.0]


def _contour(v: np.ndarray) -> list[float]:
    """Mean, std, percentiles 20/50/80, their range and the mean absolute deviation."""
    if v.size < 2:
        return [0.0] * len(_CONTOUR)
    p20, p50, p80 = np.percentile(v, (20, 50, 80))
    mean = float(v.mean())
    return [mean, float(v.std()), p20, p50, p80, p80 - p20, float(np.abs(v - mean).mean())]


def _slopes(v: np.ndarray, pairs: np.ndarray) -> list[float]:
    """Mean and std of the rising and of the falling frame-to-frame changes (per second)."""
    d = (v[1:] - v[:-1])[pairs] * 100.0
    return _pair(d[d > 0]) + _pair(d[d < 0])


def _segments(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths (frames) of the runs of True and of False in ``mask``."""
    if mask.size == 0:
        return np.zeros(0), np.zeros(0)
    edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [mask.size]])
    lengths = np.diff(bounds)
    starts_true = mask[bounds[:-1]]
    return lengths[starts_true], lengths[~starts_true]


def utterance_functionals(
    audio: np.ndarray | torch.Tensor, sr: int = 16000, level_db: float = LEVEL_DB
) -> np.ndarray:
    """The :data:`FUNCTIONALS_DIM` functionals of one mono waveform (always finite).

    Args:
        audio: the waveform (float), at ``sr`` Hz.
        sr: its sample rate.
        level_db: RMS level (dBFS) the waveform is scaled to first (less where its peak would
            pass 0 dBFS), which makes every value but ``level_dbfs`` independent of the gain.
    """
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    rms = float(x.square().mean().sqrt()) if x.numel() else 0.0
    peak = float(x.abs().max()) if x.numel() else 0.0
    level_dbfs = 20.0 * math.log10(max(rms, 1e-10))
    if rms > 0 and peak > 0:
        x = x * min(10.0 ** (level_db / 20.0) / rms, 0.999 / peak)
    hop = round(HOP * sr / 16000)
    n_fft = 1 << math.ceil(math.log2(SPEC_WIN * sr / 16000))
    power = spectral.power_spectrogram(x[None], n_fft, hop, round(SPEC_WIN * sr / 16000))[0]
    n_frames = power.shape[1]
    freqs = torch.arange(power.shape[0], dtype=x.dtype) * sr / n_fft
    energy = 10.0 * torch.log10(power.sum(dim=0).clamp_min(DB_FLOOR))
    speech = energy > energy.max() - SPEECH_RANGE_DB
    mel = spectral.apply_mel(power, sr, n_fft, N_MELS)
    log_mel = 10.0 * torch.log10(mel.clamp_min(DB_FLOOR))
    loudness = mel.pow(0.3).sum(dim=0)
    mfcc = spectral.mfcc_from_log_mel(log_mel[None], 5)[0, 1:5]

    def band(lo: float, hi: float) -> torch.Tensor:
        return (freqs >= lo) & (freqs < hi)

    low, high = band(50, 1000), band(1000, 5000)
    alpha = 10.0 * torch.log10(
        power[low].sum(dim=0).clamp_min(DB_FLOOR) / power[high].sum(dim=0).clamp_min(DB_FLOOR)
    )
    hammarberg = _db(power[band(0, 2000)].amax(dim=0)) - _db(power[band(2000, 5000)].amax(dim=0))
    slope_low = _slope(_db(power[band(0, 500)].T), freqs[band(0, 500)])
    slope_mid = _slope(_db(power[band(500, 1500)].T), freqs[band(500, 1500)])
    mag = power.sqrt().T
    mag = mag / mag.sum(dim=1, keepdim=True).clamp_min(DB_FLOOR)
    flux = torch.cat([torch.zeros(1), (mag[1:] - mag[:-1]).square().sum(dim=1)])
    centroid = (mag * freqs).sum(dim=1) / 1000.0

    speech_idx = torch.nonzero(speech).flatten()
    f0 = torch.zeros(n_frames)
    corr = torch.zeros(n_frames)
    h1h2 = torch.zeros(n_frames)
    f0_s, corr_s, pitch_power = pitch_track(x, sr, speech_idx, n_frames)
    f0[speech_idx], corr[speech_idx] = f0_s, corr_s
    nfft_p = 2 * (pitch_power.shape[1] - 1)

    def harmonic(mult: float) -> torch.Tensor:
        """The level (dB) of the strongest bin around ``mult`` x F0."""
        k = (mult * f0_s * nfft_p / sr).round().long().clamp(1, pitch_power.shape[1] - 2)
        return _db(pitch_power.gather(1, torch.stack([k - 1, k, k + 1], dim=1)).amax(dim=1))

    h1h2[speech_idx] = harmonic(1.0) - harmonic(2.0)
    voiced = (corr > VOICING_THRESHOLD) & speech

    # to numpy for the functionals (many small reductions: numpy's per-call cost is lower)
    v, s = voiced.numpy(), speech.numpy()
    semitone = (12.0 * torch.log2(f0.clamp_min(1.0) / 27.5)).numpy()
    loud, e_db = loudness.numpy(), energy.numpy()
    both_voiced = v[1:] & v[:-1]
    both_speech = s[1:] & s[:-1]
    period = 1.0 / np.maximum(f0.numpy(), 1.0)
    rc = corr.clamp(1e-3, 0.999).numpy()
    hnr = 10.0 * np.log10(rc / (1.0 - rc))
    out = _contour(semitone[v]) + _slopes(semitone, both_voiced)
    out += _contour(loud[s]) + _slopes(loud, both_speech)
    out += _pair(e_db[s]) + _pair(hnr[v])
    mean_period = float(period[v].mean()) if v.any() else 1.0
    out += _pair((np.abs(np.diff(period)) / mean_period)[both_voiced])
    out += _pair(np.abs(np.diff(e_db))[both_voiced])
    out += _pair(h1h2.numpy()[v])
    unvoiced = s & ~v
    llds = torch.stack([alpha, hammarberg, slope_low, slope_mid, centroid, flux, *mfcc]).numpy()
    for lld in llds:
        out += [*_pair(lld[v]), float(lld[unvoiced].mean()) if unvoiced.any() else 0.0]
    if s.any():  # rates are per second of the speech span, pauses inside it included
        first, last = np.flatnonzero(s)[[0, -1]]
        on, off = _segments(v[first : last + 1])
    else:
        first, last, on, off = 0, -1, np.zeros(0), np.zeros(0)
    seconds = max(float(last + 1 - first) * hop / sr, 0.1)
    frame_s = hop / sr
    peaks = (loud[1:-1] > loud[:-2]) & (loud[1:-1] >= loud[2:]) & s[1:-1]
    out += [
        float(v.sum()) / max(float(s.sum()), 1.0),
        on.size / seconds,
        *(_pair(on * frame_s) if on.size >= 2 else [float(on.sum()) * frame_s, 0.0]),
        *(_pair(off * frame_s) if off.size >= 2 else [float(off.sum()) * frame_s, 0.0]),
        float(peaks.sum()) / seconds,
        level_dbfs,
    ]
    lm = log_mel[:, speech] if s.any() else log_mel
    lm = lm - lm.mean()
    out += lm.mean(dim=1).tolist() + (lm.std(dim=1) if lm.shape[1] > 1 else 0 * lm[:, 0]).tolist()
    vec = np.asarray(out, dtype=np.float32)
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)


def functionals_of_waves(waves: list[np.ndarray], sr: int, level_db: float) -> np.ndarray:
    """``[B, FUNCTIONALS_DIM]``: :func:`utterance_functionals` of each waveform."""
    return np.stack([utterance_functionals(w, sr, level_db) for w in waves])


@dataclasses.dataclass
class Functionals(UtteranceFeature):
    """Fast pitch / loudness / voice-quality / spectral functionals, shape ``[1, 198, 1]``."""

    name: ClassVar[str] = "functionals"
    revision: ClassVar[int] = 1
    dim: ClassVar[int] = FUNCTIONALS_DIM
    level_db: float = LEVEL_DB
    """RMS level (dBFS) every waveform is scaled to before analysis."""

    @property
    def feature_names(self) -> list[str]:
        """The names of the values, in order."""
        return functional_names()

    def vector(self, audio: np.ndarray) -> np.ndarray:
        """The functionals of one waveform."""
        return utterance_functionals(audio, self.sample_rate, self.level_db)


@dataclasses.dataclass
class LogMelFunctionals(LogMelWithFunctionals):
    """Log-mel bins over the fast :class:`Functionals`: ``[1 + deltas, n_mels + 198, T]``, the
    input of ``cnn-functionals``."""

    name: ClassVar[str] = "logmel-functionals"
    revision: ClassVar[int] = 1
    functionals: ClassVar[int] = FUNCTIONALS_DIM
    functionals_label: ClassVar[str] = "fast functionals"
    functionals_level_db: float = LEVEL_DB
    """RMS level (dBFS) every waveform is scaled to before its functionals are computed."""

    def functional_vectors(self, waves: list[np.ndarray]) -> np.ndarray:
        """The functionals of each waveform."""
        return functionals_of_waves(waves, self.sample_rate, self.functionals_level_db)
