"""Steady background noise taken out before features: a Wiener filter whose noise is the clip's
own quietest frames.

A recording made beside a fan, in a car or through a cheap microphone carries a noise floor that
the corpora a model learnt from did not have; it fills the quiet frames and the high bands where
breathiness and tension live. :func:`denoise` estimates that floor from the clip alone (no other
recording, no speaker statistics: a user's single clip is enough) and filters it out:

1. the short-time spectrum (:data:`FRAME` samples, hop :data:`HOP`, Hann window);
2. the noise power per frequency: the mean power of the quietest :data:`NOISE_SHARE` of the frames
   (at least :data:`MIN_NOISE_FRAMES`), ranked by their total power. Speech pauses are noise
   alone; a clip without pauses gives its weakest speech frames, so the floor is overestimated
   there and the gain floor below limits the harm;
3. a Wiener gain per frequency and frame from the a priori SNR, tracked "decision-directed"
   (Ephraim and Malah, 1984: :data:`SMOOTHING` of the previous frame's clean estimate, the rest
   from this frame's excess over the noise), which avoids the warbling ("musical noise") of plain
   spectral subtraction; never below :data:`GAIN_FLOOR` (the noise is lowered, not gated);
4. the filtered spectrum back to a waveform by overlap-add, the clip's length kept.

A clean studio recording, whose quiet frames are near silence, comes back all but unchanged
(its gains are near 1 wherever there is speech), and the gains depend on power ratios only, so
a recording's gain does not change what the filter does (the output scales with the input).
Stationary noise (hum, fans, hiss, white or speech-shaped) is what it removes; babble that comes
and goes, or music, it cannot tell from the voice.
"""

from __future__ import annotations

import numpy as np
import torch

METHODS = ("wiener",)
"""The ways :func:`denoise` filters a clip (``--feature-param denoise=wiener``)."""

FRAME = 512
"""Samples per analysis frame (32 ms at 16 kHz)."""

HOP = FRAME // 4
"""Samples between frames (8 ms at 16 kHz); with the Hann window, overlap-add gives the waveform
back exactly where the gain is 1."""

NOISE_SHARE = 0.1
"""The quietest share of the frames whose mean power is taken for the noise."""

MIN_NOISE_FRAMES = 5
"""At least this many frames go into the noise estimate."""

SMOOTHING = 0.98
"""Weight of the previous frame's clean estimate in the a priori SNR (decision-directed)."""

MIN_PRIOR_SNR = 10 ** (-25 / 10)
"""The a priori SNR is held at or above -25 dB, which bounds how far a frame is pulled down."""

GAIN_FLOOR = 10 ** (-20 / 20)
"""The smallest gain (-20 dB in amplitude): noise is lowered, speech in it never cut away."""

TINY = 1e-12
"""Power below which a frequency counts as silent (digital zeros)."""


def check_denoise(method: str) -> str:
    """``method`` if it is ``""`` (off) or one of :data:`METHODS`, else a ``ValueError`` that
    lists them."""
    if method and method not in METHODS:
        raise ValueError(f"denoise must be one of {', '.join(METHODS)}, not {method!r}")
    return method


def noise_power(power: np.ndarray) -> np.ndarray:
    """Noise power per frequency ``[F]`` of a power spectrogram ``[F, T]``: the mean over its
    quietest frames (:data:`NOISE_SHARE`, at least :data:`MIN_NOISE_FRAMES`)."""
    n_frames = power.shape[1]
    take = min(n_frames, max(MIN_NOISE_FRAMES, round(NOISE_SHARE * n_frames)))
    quietest = np.argsort(power.sum(axis=0), kind="stable")[:take]
    return power[:, quietest].mean(axis=1)


def wiener_gains(power: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Gains ``[F, T]`` in [:data:`GAIN_FLOOR`, 1) for a power spectrogram ``[F, T]`` and its
    noise power ``[F]``, the a priori SNR tracked decision-directed (:data:`SMOOTHING`); 1 at the
    frequencies without any noise (digital silence)."""
    silent = noise <= TINY
    # frames as rows ([T, F], contiguous): the recursion runs frame by frame
    post = np.ascontiguousarray((power / np.where(silent, 1.0, noise)[:, None]).T)
    gains = np.empty_like(post)
    previous = np.zeros(power.shape[0])  # |clean estimate|^2 / noise of the frame before
    excess = np.maximum(post - 1.0, 0.0)  # a posteriori SNR less one, floored at 0
    for t in range(post.shape[0]):
        prior = SMOOTHING * previous + (1 - SMOOTHING) * excess[t]
        np.maximum(prior, MIN_PRIOR_SNR, out=prior)
        g = prior / (1.0 + prior)
        previous = g * g * post[t]
        np.maximum(g, GAIN_FLOOR, out=gains[t])
    gains = gains.T
    gains[silent] = 1.0  # nothing to remove where there is no noise at all
    return gains


def denoise(samples: np.ndarray, method: str = "wiener") -> np.ndarray:
    """``samples`` (1-D) with their steady background noise filtered out by ``method`` (one of
    :data:`METHODS`), the same length and dtype; audio shorter than one frame, or silent, is
    returned unchanged (the same array)."""
    check_denoise(method)
    if not method:
        return samples
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"denoise expects 1-D audio, got shape {x.shape}")
    if len(x) < FRAME or not np.any(x):
        return samples
    window = torch.hann_window(FRAME, dtype=torch.float64)
    wave = torch.from_numpy(x.astype(np.float64))
    spec = torch.stft(wave, FRAME, HOP, window=window, center=True, return_complex=True)
    power = (spec.abs() ** 2).numpy()
    gains = wiener_gains(power, noise_power(power))
    out = torch.istft(
        spec * torch.from_numpy(gains), FRAME, HOP, window=window, center=True, length=len(x)
    )
    return out.numpy().astype(x.dtype, copy=False)
