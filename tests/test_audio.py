"""ganclip.audio: decoding every supported format to mono float32 at a chosen rate."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ganclip import audio
from ganclip.audio import (ANALYSIS_RATE, AudioInfo, load_audio, probe, source_blocks,
                           stream_mono)
from ganclip.errors import AudioError, BadInputError, GanclipError
from media import SHARED_AUDIO, encode, first_above, peak_frequency, write_soundfile
from synth import tone

SR = ANALYSIS_RATE
SECONDS = 2.0
ONSET = 0.5  # s of silence before the tone in every synthetic file

# name, how to write it, source rate, channels, tone frequency, lossy, expected backend
CASES = [
    ("wav-44k-stereo", "wav", 44100, 2, 440.0, False, "soundfile"),
    ("wav-8k-mono", "wav", 8000, 1, 440.0, False, "soundfile"),
    ("wav-192k-6ch", "wav", 192000, 6, 1000.0, False, "soundfile"),
    ("flac-48k-stereo", "flac", 48000, 2, 440.0, False, "soundfile"),
    ("flac-192k-6ch", "flac", 192000, 6, 1000.0, False, "soundfile"),
    ("ogg-vorbis-44k-stereo", "ogg", 44100, 2, 440.0, True, "soundfile"),
    ("ogg-vorbis-8k-mono", "ogg", 8000, 1, 440.0, True, "soundfile"),
    ("opus-48k-stereo", "opus", 48000, 2, 440.0, True, "soundfile"),
    ("mp3-44k-stereo", "mp3", 44100, 2, 440.0, True, "pyav"),
    ("mp3-8k-mono", "mp3", 8000, 1, 440.0, True, "pyav"),
    ("m4a-44k-stereo", "m4a", 44100, 2, 440.0, True, "pyav"),
    ("m4a-8k-mono", "m4a", 8000, 1, 440.0, True, "pyav"),
    ("m4a-48k-6ch", "m4a", 48000, 6, 1000.0, True, "pyav"),
    ("mp4-video-aac-44k-stereo", "mp4", 44100, 2, 440.0, True, "pyav"),
]


def make(tmp_path, kind: str, x: np.ndarray, sr: int, name: str = "song"):
    """Write ``x`` [channels, n] at ``sr`` Hz as a file of ``kind``."""
    path = tmp_path / f"{name}.{kind}"
    if kind in ("wav", "flac"):
        return write_soundfile(path, x, sr)
    if kind == "ogg":
        return write_soundfile(path, x, sr, format="OGG", subtype="VORBIS")
    codec = {"opus": "libopus", "mp3": "libmp3lame", "m4a": "aac", "mp4": "aac"}[kind]
    fmt = "ipod" if kind == "m4a" else None
    return encode(path, x, sr, codec, fmt=fmt, video_fps=10 if kind == "mp4" else None)


def one_line_naming(exc: AudioError, path) -> str:
    message = str(exc)
    assert "\n" not in message
    assert path.name in message
    return message


@pytest.mark.parametrize("name, kind, sr, channels, freq, lossy, backend", CASES,
                         ids=[c[0] for c in CASES])
def test_decodes_to_mono_at_analysis_rate(tmp_path, name, kind, sr, channels, freq, lossy, backend):
    x = tone(freq, SECONDS, sr, amp=0.5, channels=channels, onset=ONSET)
    if channels == 6:
        x[3] = 0  # AAC low-passes the LFE channel (5.1's fourth), which would eat the tone
    path = make(tmp_path, kind, x, sr)

    info = probe(path)
    assert (info.backend, info.sample_rate, info.channels) == (backend, sr, channels)
    assert info.duration == pytest.approx(SECONDS, abs=0.01)

    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    # Lossy codecs pad and prime; what reaches the caller must still be the song's length.
    assert abs(len(y) - SECONDS * SR) <= (0.005 * SR if lossy else 2)
    assert np.abs(y[:int((ONSET - 0.01) * SR)]).max() < 0.02  # the silence stays silent
    assert first_above(y, SR) == pytest.approx(ONSET, abs=0.003)
    body = y[int((ONSET + 0.1) * SR):int((SECONDS - 0.1) * SR)]
    assert peak_frequency(body, SR) == pytest.approx(freq, abs=1.0)
    # The mono mix is the mean of the channels, each a 0.5 sine or (the LFE) silent.
    rms = 0.5 / np.sqrt(2) * (5 / 6 if channels == 6 else 1)
    assert np.sqrt(np.mean(body ** 2)) == pytest.approx(rms, rel=0.1 if lossy else 0.01)


def test_mono_mix_is_the_channel_mean(tmp_path):
    x = np.zeros((6, 48000), np.float32)
    x[0] = tone(300, 1.0, 48000, amp=0.6)
    x[4] = tone(2000, 1.0, 48000, amp=0.3)
    y = load_audio(write_soundfile(tmp_path / "six.wav", x, 48000), sr=48000)  # no resampling
    np.testing.assert_allclose(y, x.mean(axis=0), atol=1e-4)


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
def test_output_rate_is_the_one_asked(tmp_path, sr):
    path = write_soundfile(tmp_path / "a.wav", tone(1000, 1.0, 44100, amp=0.5, channels=1),
                           44100)
    y = load_audio(path, sr=sr)
    assert abs(len(y) - sr) <= 1
    assert peak_frequency(y, sr) == pytest.approx(1000, abs=1.5)


@pytest.mark.parametrize("kind", ["wav", "mp3", "m4a"])
def test_start_and_duration_cut_the_right_samples(tmp_path, kind):
    # Silent, then a tone from 1.0 s to 2.0 s, silent again until 3 s.
    x = tone(440, 3.0, 44100, amp=0.5, channels=2, onset=1.0, end=2.0)
    path = make(tmp_path, kind, x, 44100)
    full = load_audio(path)

    y = load_audio(path, start=0.75, duration=1.5)
    assert len(y) == round(1.5 * SR)
    assert first_above(y, SR) == pytest.approx(0.25, abs=0.003)
    # ...and stops 0.25 s before the end.
    assert first_above(y[::-1], SR) == pytest.approx(0.25, abs=0.005)
    skip = round(0.75 * SR)
    np.testing.assert_array_equal(y, full[skip:skip + len(y)])

    rest = load_audio(path, start=2.5)
    assert len(rest) == len(full) - round(2.5 * SR)
    assert np.abs(rest).max() < 0.02

    past_end = load_audio(path, start=2.5, duration=10.0)
    np.testing.assert_array_equal(past_end, rest)


def test_resampling_removes_what_the_new_rate_cannot_carry(tmp_path):
    # 15 kHz is above 22.05 kHz's Nyquist limit; a poor resampler folds it down to 7050 Hz.
    path = write_soundfile(tmp_path / "high.wav",
                           tone(15000, 1.0, 44100, amp=0.5, channels=1), 44100)
    y = load_audio(path)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 1e-3


def test_start_past_the_end_gives_nothing(tmp_path):
    path = write_soundfile(tmp_path / "a.wav", tone(440, 1.0, 8000, amp=0.5, channels=1), 8000)
    assert load_audio(path, start=5.0).shape == (0,)


def test_source_blocks_are_the_whole_file_at_the_source_rate(tmp_path):
    x = tone(440, 2.0, 44100, amp=0.5, channels=2)
    x[1] *= -1  # tell the channels apart
    info = probe(write_soundfile(tmp_path / "a.wav", x, 44100, subtype="FLOAT"))
    blocks = list(source_blocks(info))
    assert all(b.dtype == np.float32 and b.shape[0] == 2 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), x)


# --- errors -----------------------------------------------------------------------------


def _missing(tmp_path):
    return tmp_path / "nowhere.wav"


def _directory(tmp_path):
    path = tmp_path / "folder.wav"
    path.mkdir()
    return path


def _empty(tmp_path):
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    return path


def _text_as_mp3(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("this is a shopping list, not a song\n" * 40)
    return path


def _truncated_mp3(tmp_path):
    whole = make(tmp_path, "mp3", tone(440, 2.0, 44100, amp=0.5, channels=2), 44100,
                 name="whole")
    path = tmp_path / "half.mp3"
    data = whole.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


@pytest.mark.parametrize("make_bad, words", [
    (_missing, "not found"),
    (_directory, "directory"),
    (_empty, "empty (0 bytes)"),
    (_text_as_mp3, "could not decode"),
    (_truncated_mp3, "truncated"),
], ids=["missing", "directory", "empty", "text-as-mp3", "truncated-mp3"])
def test_bad_files_raise_one_line_audio_error(tmp_path, make_bad, words):
    path = make_bad(tmp_path)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    message = one_line_naming(caught.value, path)
    assert words in message
    assert isinstance(caught.value, BadInputError) and isinstance(caught.value, GanclipError)


def test_undecodable_file_reports_every_backend(tmp_path):
    path = _text_as_mp3(tmp_path)
    with pytest.raises(AudioError) as caught:
        probe(path)
    message = one_line_naming(caught.value, path)
    assert "soundfile:" in message and "PyAV:" in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads any file; permissions cannot be tested")
def test_unreadable_file(tmp_path):
    path = write_soundfile(tmp_path / "locked.wav", tone(440, 0.5, 8000, amp=0.5, channels=1),
                           8000)
    path.chmod(0)
    try:
        with pytest.raises(AudioError) as caught:
            load_audio(path)
        assert "permission" in one_line_naming(caught.value, path)
    finally:
        path.chmod(0o644)


# --- streaming --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wav", "m4a"])
def test_stream_mono_concatenated_is_load_audio(tmp_path, kind):
    x = tone(440, 3.0, 44100, amp=0.5, channels=2, onset=0.3)
    path = make(tmp_path, kind, x, 44100)
    for cut in ({}, {"start": 0.4, "duration": 1.7}):
        blocks = list(stream_mono(path, **cut))
        assert len(blocks) > 1
        np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path, **cut))
    info = probe(path)
    np.testing.assert_array_equal(np.concatenate(list(stream_mono(path, info=info))),
                                  load_audio(path))


@pytest.mark.parametrize("kind, source_rate", [("wav", 44100), ("m4a", 44100)])
def test_blocks_are_bounded(tmp_path, kind, source_rate):
    seconds = 30.0 if kind == "wav" else 8.0
    x = tone(440, seconds, source_rate, amp=0.5, channels=1)
    path = make(tmp_path, kind, x, source_rate)
    lengths = [len(b) for b in stream_mono(path)]
    assert sum(lengths) == pytest.approx(seconds * SR, abs=2)
    # At most one source block (resampled) at a time, never the whole song.
    bound = audio.BLOCK * SR / source_rate + 4096
    assert max(lengths) <= bound
    assert len(lengths) >= seconds * SR / bound


# --- real recordings --------------------------------------------------------------------

needs_shared = pytest.mark.skipif(not SHARED_AUDIO.is_dir(), reason=f"{SHARED_AUDIO} absent")


@needs_shared
def test_flac_and_m4a_of_the_same_excerpt_agree():
    flac = load_audio(SHARED_AUDIO / "madmom_stereo_sample.flac")
    m4a = load_audio(SHARED_AUDIO / "madmom_stereo_sample.m4a")
    assert abs(len(flac) - len(m4a)) / SR < 0.05
    assert len(flac) / SR == pytest.approx(4.15, abs=0.05)
    n = min(len(flac), len(m4a))
    # Same music, sample-aligned: AAC keeps the waveform, not just the length.
    assert np.corrcoef(flac[:n], m4a[:n])[0, 1] > 0.95


@needs_shared
def test_long_ogg_decodes_in_many_blocks():
    path = SHARED_AUDIO / "vibe_ace.ogg"
    info = probe(path)
    assert isinstance(info, AudioInfo) and info.sample_rate == 44100 and info.channels == 2
    lengths = [len(b) for b in stream_mono(path, info=info)]
    assert sum(lengths) / SR == pytest.approx(61.46, abs=0.5)
    assert len(lengths) >= 20 and max(lengths) < 5 * SR


@needs_shared
def test_mono_wav_recording():
    y = load_audio(SHARED_AUDIO / "madmom_sample.wav")
    assert len(y) / SR == pytest.approx(2.8, abs=0.01)
    assert 0.1 < np.abs(y).max() <= 1.0
