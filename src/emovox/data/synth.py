"""Synthetic emotional speech, for the demo and the tests (no real corpus needed).

Each "emotion" is a prosody setting (speaking rate, pitch, pitch movement), each "speaker" a voice.
With ``espeak-ng`` on the PATH the utterances are real synthetic speech; otherwise a numpy source
(a glottal pulse train through vowel formants, with syllable-rate amplitude modulation) stands in.
Files are named like RAVDESS files, so the RAVDESS recipe reads the result.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from emovox.audio import load_audio
from emovox.data.corpora.ravdess import EMOTIONS

EMOTION_CODES = {name: code for code, name in EMOTIONS.items()}
SENTENCES = ("Kids are talking by the door", "Dogs are sitting by the door")
VOICES = ("en+m1", "en+f2", "en+m3", "en+f4", "en+m7", "en+f3", "en+m2", "en+f1")


@dataclass(frozen=True)
class Prosody:
    """espeak-ng style settings: words per minute, pitch (0-99), pitch range (0-99), gain."""

    speed: int
    pitch: int
    range: int
    gain: float


PROSODY = {
    "neutral": Prosody(165, 45, 40, 0.5),
    "calm": Prosody(140, 40, 25, 0.4),
    "happy": Prosody(195, 70, 85, 0.7),
    "sad": Prosody(115, 28, 12, 0.3),
    "angry": Prosody(210, 58, 70, 0.95),
    "fearful": Prosody(225, 80, 55, 0.5),
    "disgust": Prosody(130, 35, 60, 0.6),
    "surprised": Prosody(185, 85, 95, 0.7),
}


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str, p: Prosody, sr: int = 16000) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng, returned as float32 at ``sr``."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-m",
                "-v",
                voice,
                "-s",
                str(p.speed),
                "-p",
                str(p.pitch),
                "-w",
                str(wav),
                f'<speak><prosody range="{2 * p.range}%">{text}</prosody></speak>',
            ],
            check=True,
            capture_output=True,
        )
        audio = load_audio(wav, sr=sr)
    return audio / max(1e-6, float(np.abs(audio).max())) * p.gain


def numpy_voice(
    text: str, speaker: int, p: Prosody, sr: int = 16000, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A speech-like signal without espeak-ng: voiced syllables with a prosodic f0 contour."""
    rng = rng or np.random.default_rng(0)
    syllables = max(3, len(text) // 4)
    seconds = syllables * 60.0 / p.speed * 1.6
    n = int(seconds * sr)
    t = np.arange(n) / sr
    base = (110 if speaker % 2 == 0 else 200) * 2 ** ((p.pitch - 50) / 40)
    f0 = base * (1 + p.range / 200 * np.sin(2 * np.pi * t / seconds * 1.5 + rng.uniform(0, 6)))
    phase = np.cumsum(f0) / sr
    source = (np.mod(phase, 1.0) < 0.3).astype(float) - 0.3
    env = np.clip(np.sin(np.pi * t * syllables / seconds) ** 2, 0, 1)
    out = np.zeros(n)
    for f, bw in ((700 + 60 * speaker, 90), (1200 + 80 * (speaker % 3), 110), (2500, 160)):
        r = np.exp(-np.pi * bw / sr)
        a = [1, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
        out += lfilter([1 - r], a, source)
    out = out * env + 0.01 * rng.standard_normal(n)
    pad = np.zeros(int(0.3 * sr))
    out = np.concatenate([pad, out, pad])
    return (out / np.abs(out).max() * p.gain).astype(np.float32)


def make_corpus(
    root: str | Path,
    emotions: tuple[str, ...] = ("neutral", "happy", "sad", "angry"),
    n_speakers: int = 6,
    repetitions: int = 2,
    sr: int = 16000,
    seed: int = 0,
    engine: str = "auto",
) -> list[Path]:
    """Write a RAVDESS-named corpus of synthetic speech under ``root``/Actor_NN/.

    Args:
        engine: ``espeak`` (needs espeak-ng), ``numpy``, or ``auto`` (espeak when available).
    """
    if not 1 <= repetitions <= 2:
        raise ValueError("RAVDESS names allow repetitions 1 or 2")
    if not 1 <= n_speakers <= 24:
        raise ValueError("RAVDESS names allow actors 01-24")
    use_espeak = engine == "espeak" or (engine == "auto" and espeak_available())
    rng = np.random.default_rng(seed)
    root = Path(root)
    paths = []
    for spk in range(1, n_speakers + 1):
        actor_dir = root / f"Actor_{spk:02d}"
        actor_dir.mkdir(parents=True, exist_ok=True)
        # RAVDESS: odd actors are male; pick a voice of the matching gender.
        voices = [v for v in VOICES if ("+m" in v) == (spk % 2 == 1)]
        voice = voices[(spk // 2) % len(voices)]
        for emo in emotions:
            for s_idx, sentence in enumerate(SENTENCES, 1):
                for rep in range(1, repetitions + 1):
                    base = PROSODY[emo]
                    p = Prosody(
                        speed=int(base.speed * rng.uniform(0.92, 1.08)),
                        pitch=int(np.clip(base.pitch + rng.integers(-6, 7), 0, 99)),
                        range=int(np.clip(base.range + rng.integers(-8, 9), 0, 99)),
                        gain=float(base.gain * rng.uniform(0.8, 1.2)),
                    )
                    if use_espeak:
                        audio = speak(sentence, voice, p, sr)
                        audio = np.concatenate(
                            [np.zeros(int(0.25 * sr)), audio, np.zeros(int(0.25 * sr))]
                        )
                    else:
                        audio = numpy_voice(sentence, spk, p, sr, rng)
                    name = f"03-01-{EMOTION_CODES[emo]}-01-{s_idx:02d}-{rep:02d}-{spk:02d}.wav"
                    path = actor_dir / name
                    sf.write(path, audio.astype(np.float32), sr, subtype="PCM_16")
                    paths.append(path)
    return paths


# -- the demo clip ---------------------------------------------------------------------------------

DEMO_SCRIPT = (
    ("neutral", "en+m3", "The train to the city leaves at nine."),
    ("happy", "en+f2", "We won the match, what a wonderful day!"),
    ("sad", "en+m3", "I miss the old house where we grew up."),
    ("angry", "en+f2", "Stop that right now, I told you twice!"),
    ("surprised", "en+m3", "Really? You came all this way?"),
)
"""The demo clip's sentences: the prosody (an emotion of :data:`PROSODY`), the voice, the text."""


@dataclass(frozen=True)
class DemoClip:
    """A written demo clip: its file, length (s), voice engine and ``(start, end, emotion,
    text)`` of each sentence (seconds)."""

    path: Path
    duration: float
    engine: str
    sentences: tuple[tuple[float, float, str, str], ...]


def make_demo_clip(
    path: str | Path,
    engine: str = "auto",
    pause: float = 1.0,
    sr: int = 16000,
    seed: int = 0,
) -> DemoClip:
    """Write a short recording of a few synthetic sentences separated by pauses (a WAV file).

    Each sentence is spoken with the prosody of one emotion, so that ``emovox predict CLIP
    --segments`` finds one segment per sentence; the voices are synthetic, so the bundled model
    (trained on acted human speech) is not expected to name the intended emotions.

    Args:
        path: the WAV file to write (its folder is created).
        engine: ``espeak`` (needs espeak-ng), ``numpy`` (a speech-like signal), or ``auto``
            (espeak-ng when installed).
        pause: seconds of near-silence before, between and after the sentences.
        sr: sample rate of the file.
        seed: seed of the background noise (and of the numpy voice).

    Raises:
        ValueError: an unknown engine, ``espeak`` without espeak-ng installed, a negative pause.
    """
    if engine not in ("auto", "espeak", "numpy"):
        raise ValueError(f"engine must be auto, espeak or numpy, not {engine!r}")
    if engine == "espeak" and not espeak_available():
        raise ValueError("engine='espeak' needs the espeak-ng command (apt install espeak-ng)")
    if pause < 0:
        raise ValueError(f"pause must be >= 0 seconds, not {pause}")
    use_espeak = engine == "espeak" or (engine == "auto" and espeak_available())
    rng = np.random.default_rng(seed)
    gap = np.zeros(round(pause * sr), dtype=np.float32)
    parts: list[np.ndarray] = [gap]
    sentences: list[tuple[float, float, str, str]] = []
    t = pause
    for i, (emotion, voice, text) in enumerate(DEMO_SCRIPT):
        p = PROSODY[emotion]
        # numpy_voice's length follows the text's: a shorter text keeps each sentence near 2 s
        speech = speak(text, voice, p, sr) if use_espeak else numpy_voice(text[:14], i, p, sr, rng)
        speech = speech.astype(np.float32)
        sentences.append((round(t, 3), round(t + speech.size / sr, 3), emotion, text))
        parts += [speech, gap]
        t += (speech.size + gap.size) / sr
    audio = np.concatenate(parts)
    audio += (3e-4 * rng.standard_normal(audio.size)).astype(np.float32)  # a quiet room
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16")
    return DemoClip(
        path=path,
        duration=round(audio.size / sr, 3),
        engine="espeak-ng" if use_espeak else "numpy",
        sentences=tuple(sentences),
    )
