"""emovox.audio: reading any container/channel layout/rate, and failing with clear errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import make_speech, peak_frequency, tone, write_tone

from emovox.audio import (
    MIN_DURATION,
    SAMPLE_RATE,
    AudioError,
    LongAudio,
    audio_info,
    load_audio,
    prepare_array,
)

# -- containers -----------------------------------------------------------------------------------

CONTAINERS = [
    ("wav", "WAV", "PCM_16"),
    ("flac", "FLAC", "PCM_16"),
    ("ogg", "OGG", "VORBIS"),
    ("aiff", "AIFF", "PCM_16"),
]


@pytest.mark.parametrize(("ext", "fmt", "subtype"), CONTAINERS)
def test_reads_container(tmp_path, ext, fmt, subtype):
    path = write_tone(tmp_path / f"a.{ext}", seconds=1.0, freq=440.0, fmt=fmt, subtype=subtype)
    x = load_audio(path)
    assert x.dtype == np.float32
    assert x.ndim == 1
    assert x.shape == (SAMPLE_RATE,)
    assert peak_frequency(x, SAMPLE_RATE) == pytest.approx(440.0, abs=2.0)
    assert 0.4 < np.abs(x).max() < 0.6  # the tone's amplitude, scaled to [-1, 1]


def _write_mp3(tmp_path):
    """An mp3 of a 440 Hz tone: with soundfile when its libsndfile can, else with sox."""
    path = tmp_path / "a.mp3"
    if "MP3" in sf.available_formats():
        write_tone(path, seconds=1.0, freq=440.0, fmt="MP3", subtype="MPEG_LAYER_III")
        return path
    if shutil.which("sox") is None:
        pytest.skip("neither soundfile nor sox can write mp3 here")
    src = write_tone(tmp_path / "src.wav", seconds=1.0, freq=440.0)
    done = subprocess.run(["sox", str(src), str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"sox cannot write mp3 here: {done.stderr.decode(errors='replace')[-200:]}")
    return path


def test_reads_mp3(tmp_path):
    x = load_audio(_write_mp3(tmp_path))
    assert x.dtype == np.float32 and x.ndim == 1
    # mp3 encoders may add a few ms of padding
    assert abs(len(x) - SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert peak_frequency(x, SAMPLE_RATE) == pytest.approx(440.0, abs=2.0)


@pytest.mark.parametrize("fake_ext", [".mp3", ".bin", ".dat"])
def test_container_is_detected_from_content(tmp_path, fake_ext):
    wav = write_tone(tmp_path / "a.wav", freq=330.0)
    renamed = tmp_path / f"really_a_wav{fake_ext}"
    shutil.copy(wav, renamed)
    np.testing.assert_array_equal(load_audio(renamed), load_audio(wav))


def test_flac_named_wav_is_read(tmp_path):
    flac = write_tone(tmp_path / "a.flac", freq=330.0, fmt="FLAC")
    misnamed = tmp_path / "b.wav"
    shutil.copy(flac, misnamed)
    np.testing.assert_array_equal(load_audio(misnamed), load_audio(flac))


# -- channels ------------------------------------------------------------------------------------


def test_stereo_opposite_channels_cancel(tmp_path):
    y = tone(1.0, 16000, 300.0)
    path = tmp_path / "anti.wav"
    sf.write(path, np.stack([y, -y], axis=1), 16000, subtype="FLOAT")
    x = load_audio(path)
    assert x.shape == (16000,)
    assert np.abs(x).max() < 1e-6


def test_stereo_is_averaged(tmp_path):
    y = tone(1.0, 16000, 300.0)
    left, right = y, 0.5 * y
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), 0.75 * y, atol=1e-6)


def test_identical_channels_give_the_signal(tmp_path):
    mono = load_audio(write_tone(tmp_path / "m.wav", freq=250.0))
    for channels in (2, 6):
        multi = load_audio(write_tone(tmp_path / f"c{channels}.wav", freq=250.0, channels=channels))
        np.testing.assert_allclose(multi, mono, atol=1e-6)


# -- rates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("native_sr", [8000, 22050, 44100, 48000])
def test_resampled_to_16k(tmp_path, native_sr):
    path = write_tone(tmp_path / "r.wav", seconds=1.5, sr=native_sr, freq=1000.0)
    x = load_audio(path)
    assert abs(len(x) - int(1.5 * SAMPLE_RATE)) <= 1
    assert peak_frequency(x, SAMPLE_RATE) == pytest.approx(1000.0, abs=2.0)
    # the amplitude survives resampling (away from the edges)
    assert np.abs(x[2000:-2000]).max() == pytest.approx(0.5, abs=0.02)


def test_other_target_rate(tmp_path):
    path = write_tone(tmp_path / "r.wav", seconds=1.0, sr=48000, freq=500.0)
    x = load_audio(path, sr=8000)
    assert len(x) == 8000
    assert peak_frequency(x, 8000) == pytest.approx(500.0, abs=2.0)


def test_sr_none_keeps_native_rate(tmp_path):
    path = write_tone(tmp_path / "n.wav", seconds=1.0, sr=44100, freq=700.0)
    x = load_audio(path, sr=None)
    assert len(x) == 44100
    assert x.dtype == np.float32
    assert peak_frequency(x, 44100) == pytest.approx(700.0, abs=2.0)
    np.testing.assert_allclose(x, tone(1.0, 44100, 700.0), atol=1e-4)  # PCM_16 rounding


def test_audio_info(tmp_path):
    info = audio_info(write_tone(tmp_path / "i.flac", seconds=0.5, sr=48000, channels=2))
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, 24000)
    with pytest.raises(AudioError, match=r"nope\.wav"):
        audio_info(tmp_path / "nope.wav")


def test_a_file_longer_than_max_duration_raises_long_audio_unread(tmp_path, monkeypatch):
    path = write_tone(tmp_path / "long.wav", seconds=3.0, sr=8000)
    assert len(load_audio(path, max_duration=3.0)) == 3 * SAMPLE_RATE  # not longer: read
    decoded = []
    original = sf.SoundFile.read
    monkeypatch.setattr(
        sf.SoundFile, "read", lambda self, *a, **k: decoded.append(1) or original(self, *a, **k)
    )
    with pytest.raises(LongAudio) as err:
        load_audio(path, max_duration=2.5)
    assert err.value.seconds == pytest.approx(3.0) and "long.wav" in str(err.value)
    assert not decoded and not isinstance(err.value, AudioError)  # not a failure of the file


# -- offset / duration ---------------------------------------------------------------------------


def test_offset_and_duration(tmp_path):
    sr = 16000
    ramp = np.linspace(-0.9, 0.9, 2 * sr, dtype=np.float32)  # 2 s, every sample distinct
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, sr, subtype="FLOAT")
    x = load_audio(path, offset=0.5, duration=1.0)
    np.testing.assert_array_equal(x, ramp[sr // 2 : sr // 2 + sr])
    tail = load_audio(path, offset=1.5)
    np.testing.assert_array_equal(tail, ramp[int(1.5 * sr) :])
    head = load_audio(path, duration=0.25)
    np.testing.assert_array_equal(head, ramp[: sr // 4])
    # a duration past the end reads to the end
    assert len(load_audio(path, offset=1.0, duration=10.0)) == sr


def test_offset_and_duration_in_native_seconds_before_resampling(tmp_path):
    path = write_tone(tmp_path / "t.wav", seconds=3.0, sr=44100, freq=440.0)
    x = load_audio(path, offset=0.5, duration=2.0)
    assert abs(len(x) - 2 * SAMPLE_RATE) <= 1


def test_offset_past_end_is_an_audio_error(tmp_path):
    path = write_tone(tmp_path / "short_one.wav", seconds=0.5)
    with pytest.raises(AudioError, match=r"short_one\.wav.*offset"):
        load_audio(path, offset=2.0)


# -- errors --------------------------------------------------------------------------------------


def _assert_load_error(path: Path, *reason_words: str) -> None:
    """``load_audio(path)`` raises an :class:`AudioError` naming the file and saying why."""
    with pytest.raises(AudioError) as info:
        load_audio(path)
    exc, msg = info.value, str(info.value)
    assert path.name in msg, msg
    assert exc.reason and exc.reason in msg
    for word in reason_words:
        assert word in msg.lower(), msg


def test_missing_file(tmp_path):
    _assert_load_error(tmp_path / "missing_file.wav", "no such file")


def test_directory(tmp_path):
    d = tmp_path / "a_folder.wav"
    d.mkdir()
    _assert_load_error(d, "directory")


def test_empty_file(tmp_path):
    p = tmp_path / "zero_bytes.wav"
    p.touch()
    _assert_load_error(p, "empty")


def test_text_file_with_wav_extension(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio\n" * 20)
    _assert_load_error(p, "not a readable audio file")


def test_truncated_wav_header(tmp_path):
    wav = write_tone(tmp_path / "whole.wav")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[:20])
    _assert_load_error(cut)


def test_too_short_file(tmp_path):
    p = write_tone(tmp_path / "blip.wav", seconds=MIN_DURATION / 2)
    _assert_load_error(p, "shorter than the minimum")
    # the limit is adjustable, and a file just above it reads
    assert len(load_audio(p, min_duration=0.01)) == int(MIN_DURATION / 2 * SAMPLE_RATE)
    assert len(load_audio(write_tone(tmp_path / "ok.wav", seconds=MIN_DURATION * 1.5))) > 0


def test_audio_error_is_a_value_error():
    err = AudioError("x.wav", "some reason")
    assert isinstance(err, ValueError)
    assert (err.path, err.reason, str(err)) == ("x.wav", "some reason", "x.wav: some reason")


# -- prepare_array -------------------------------------------------------------------------------


def test_prepare_array_int16():
    y = tone(1.0, 16000, 440.0)
    pcm = np.round(y * 32767).astype(np.int16)
    x = prepare_array(pcm, 16000)
    assert x.dtype == np.float32 and x.shape == (16000,)
    np.testing.assert_allclose(x, y, atol=1e-4)


def test_prepare_array_channels_first_and_last():
    y = tone(1.0, 16000, 440.0)
    stereo_last = np.stack([y, 0.5 * y], axis=1)  # (frames, channels)
    stereo_first = stereo_last.T  # (channels, frames)
    expected = 0.75 * y
    np.testing.assert_allclose(prepare_array(stereo_last, 16000), expected, atol=1e-6)
    np.testing.assert_allclose(prepare_array(stereo_first, 16000), expected, atol=1e-6)
    np.testing.assert_allclose(prepare_array(y[None, :], 16000), y, atol=1e-6)


def test_prepare_array_resamples():
    y = tone(1.0, 48000, 600.0).astype(np.float64)
    x = prepare_array(y, 48000)
    assert x.dtype == np.float32 and len(x) == 16000
    assert peak_frequency(x, 16000) == pytest.approx(600.0, abs=2.0)
    assert len(prepare_array(y, 48000, target_sr=24000)) == 24000


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (np.zeros((2, 3, 16000), np.float32), "shape"),
        (np.zeros(0, np.float32), "no audio"),
        (np.zeros(100, np.float32), "shorter"),
        (np.full(16000, np.nan, np.float32), "nan"),
        (np.concatenate([np.zeros(15999, np.float32), [np.inf]]), "infinite"),
    ],
)
def test_prepare_array_rejects_bad_input(bad, words):
    with pytest.raises(AudioError) as info:
        prepare_array(bad, 16000)
    assert words in str(info.value).lower()
    assert "<array>" in str(info.value)


def test_nan_in_file_is_an_error(tmp_path):
    y = tone(1.0, 16000, 440.0)
    y[100] = np.nan
    p = tmp_path / "nan.wav"
    sf.write(p, y, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav.*NaN"):
        load_audio(p)


# -- real speech (espeak-ng) ---------------------------------------------------------------------


def test_espeak_speech_loads_at_16k(tmp_path):
    path = make_speech(tmp_path / "hello.wav", "Kids are talking by the door.")
    native = sf.info(str(path))
    x = load_audio(path)
    expected = native.frames * SAMPLE_RATE / native.samplerate
    assert abs(len(x) - expected) <= 1
    assert x.dtype == np.float32 and np.abs(x).max() > 0.01
