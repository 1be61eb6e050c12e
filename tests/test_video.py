"""ganclip.video: H.264 + AAC written as frames arrive, decoded back with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np
import pytest

from ganclip.audio import probe
from ganclip.errors import BadInputError
from ganclip.timebase import frame_rate as rate_fraction
from ganclip.video import VideoWriter, aac_rate, check_output, container_format
from media import (decode_audio, decode_frames, envelope, first_above, peak_frequency,
                   write_soundfile)
from synth import tone

SIZE = 64
RED = (200, 30, 90)


def solid(n: int, colour=RED, side: int = SIZE) -> np.ndarray:
    """``n`` frames of one colour [shape=(n, side, side, 3)], uint8."""
    return np.broadcast_to(np.array(colour, np.uint8), (n, side, side, 3)).copy()


def pulsing_song(tmp_path, seconds: float = 2.0, sr: int = 44100, name: str = "song.wav"):
    """Stereo 440 Hz that is on for 0.25 s and off for 0.25 s: an envelope to recognise."""
    x = tone(440, seconds, sr, amp=0.5, channels=2)
    t = np.arange(x.shape[1]) / sr
    x *= (t % 0.5 < 0.25).astype(np.float32)
    return write_soundfile(tmp_path / name, x, sr), x


def write_video(path, frames, *, fps, size=SIZE, **kw):
    with VideoWriter(path, fps=fps, size=size, **kw) as writer:
        writer.write(frames)
        return writer.close()


def streams(path):
    with av.open(str(path)) as container:
        video = [(s.codec_context.name, s.codec_context.pix_fmt, s.codec_context.width,
                  s.codec_context.height, s.average_rate) for s in container.streams.video]
        audio = [(s.codec_context.name, s.codec_context.sample_rate, s.codec_context.channels)
                 for s in container.streams.audio]
        durations = [None if s.duration is None else float(s.duration * s.time_base)
                     for s in container.streams.audio]
        return container.format.name, video, audio, durations


def video_span(frames, fps) -> float:
    """Seconds from the first frame to the end of the last, from decoded timestamps."""
    return frames[-1].time - frames[0].time + 1 / fps


def test_mp4_has_the_frames_and_the_song(tmp_path):
    song, x = pulsing_song(tmp_path)
    fps, n = 24, 48  # exactly the song's 2 s
    out = write_video(tmp_path / "clip.mp4", solid(n), fps=fps, audio=probe(song))

    fmt, video, audio, durations = streams(out)
    assert "mp4" in fmt.split(",")
    assert video == [("h264", "yuv420p", SIZE, SIZE, Fraction(fps))]
    assert audio == [("aac", 44100, 2)]

    frames = decode_frames(out)
    assert len(frames) == n
    assert video_span(frames, fps) == pytest.approx(n / fps, abs=1e-3)
    assert [f.time for f in frames] == pytest.approx([i / fps for i in range(n)], abs=1e-3)
    assert durations[0] == pytest.approx(2.0, abs=1 / fps)

    muxed, rate = decode_audio(out)
    # Decoding keeps up to one AAC frame (1024 samples) of encoder padding at the end.
    assert muxed.shape[1] / rate == pytest.approx(2.0, abs=1 / fps + 1024 / rate)
    mono, source = muxed.mean(axis=0), x.mean(axis=0)
    assert peak_frequency(mono[:len(source)], rate) == pytest.approx(440, abs=1)
    # Same loud and quiet stretches at the same times (10 ms windows).
    a, b = envelope(mono, rate), envelope(source, rate)
    assert np.corrcoef(a[:len(b)], b)[0, 1] > 0.95
    # And the waveform itself lines up: AAC's priming delay is compensated.
    n_cmp = min(len(mono), len(source))
    assert np.corrcoef(mono[:n_cmp], source[:n_cmp])[0, 1] > 0.9


def test_song_is_encoded_alongside_the_frames(tmp_path):
    # Streaming: after each batch the song has been fed up to the video's time, not held
    # back until close (the feed hands out source blocks of up to 65536 samples).
    song, _ = pulsing_song(tmp_path, seconds=6.0, sr=44100)
    fps = 4
    with VideoWriter(tmp_path / "clip.mp4", fps=fps, size=32, audio=probe(song)) as writer:
        for batch in range(1, 5):
            writer.write(solid(fps, side=32))  # one second of video
            assert batch * 44100 <= writer.feed.sent < batch * 44100 + 65536


@pytest.mark.parametrize("fps, n, rate", [
    (29.97, 30, Fraction(30000, 1001)),
    (23.976, 24, Fraction(24000, 1001)),
    (1, 2, Fraction(1)),
    (120, 120, Fraction(120)),
])
def test_frame_rates(tmp_path, fps, n, rate):
    song, _ = pulsing_song(tmp_path, seconds=n / fps)
    out = write_video(tmp_path / "clip.mp4", solid(n, side=32), fps=fps, size=32,
                      audio=probe(song))
    _, video, audio, durations = streams(out)
    assert video[0][4] == rate
    frames = decode_frames(out)
    assert len(frames) == n
    assert video_span(frames, float(rate)) == pytest.approx(n / float(rate), abs=1e-3)
    assert durations[0] == pytest.approx(n / fps, abs=1 / fps)


def test_rate_fraction():
    assert rate_fraction(30) == 30 and rate_fraction(30.0) == Fraction(30)
    assert rate_fraction(29.97) == Fraction(30000, 1001)
    assert rate_fraction(59.94) == Fraction(60000, 1001)
    assert rate_fraction(23.976) == Fraction(24000, 1001)
    assert rate_fraction(12.5) == Fraction(25, 2)
    assert rate_fraction(1) == 1 and rate_fraction(120) == 120


def test_aac_rate():
    assert [aac_rate(r) for r in (8000, 22050, 44100, 48000)] == [8000, 22050, 44100, 48000]
    assert aac_rate(7000) == 8000 and aac_rate(46000) == 48000
    assert aac_rate(96000) == 48000 and aac_rate(192000) == 48000


def test_container_format():
    assert container_format("a.mp4") == "mp4" and container_format("A.MP4") == "mp4"
    assert container_format("a.mkv") == "matroska" and container_format("a.mov") == "mov"
    with pytest.raises(BadInputError, match="a.avi"):
        container_format("a.avi")


def test_audio_start_and_duration_cut_the_song(tmp_path):
    # Silence, a tone from 1.0 s to 3.0 s.
    x = tone(440, 3.0, 44100, amp=0.5, channels=2, onset=1.0)
    song = write_soundfile(tmp_path / "song.wav", x, 44100)
    fps, n = 10, 10
    out = write_video(tmp_path / "clip.mp4", solid(n), fps=fps, audio=probe(song),
                      audio_start=0.5, audio_duration=1.0)
    *_, durations = streams(out)
    assert durations[0] == pytest.approx(1.0, abs=1 / fps)
    muxed, rate = decode_audio(out)
    mono = muxed.mean(axis=0)
    assert len(mono) / rate == pytest.approx(1.0, abs=1 / fps + 1024 / rate)
    assert first_above(mono, rate) == pytest.approx(0.5, abs=0.01)  # 1.0 s in the song
    assert np.abs(mono[:int(0.45 * rate)]).max() < 0.02


def test_mkv(tmp_path):
    song, _ = pulsing_song(tmp_path, seconds=1.0)
    fps, n = 25, 25
    out = write_video(tmp_path / "clip.mkv", solid(n), fps=fps, audio=probe(song))
    fmt, video, audio, _ = streams(out)
    assert fmt.startswith("matroska")
    assert [v[:4] for v in video] == [("h264", "yuv420p", SIZE, SIZE)]
    assert audio == [("aac", 44100, 2)]
    frames = decode_frames(out)
    assert len(frames) == n and video_span(frames, fps) == pytest.approx(1.0, abs=1e-3)
    muxed, rate = decode_audio(out)
    assert muxed.shape[1] / rate == pytest.approx(1.0, abs=1 / fps + 1024 / rate)


def test_without_audio(tmp_path):
    out = write_video(tmp_path / "clip.mp4", solid(5), fps=5)
    _, video, audio, _ = streams(out)
    assert len(video) == 1 and audio == []
    assert len(decode_frames(out)) == 5


# --- refusing bad output, and never leaving half a file ---------------------------------


@pytest.mark.parametrize("name", ["clip.avi", "clip", "clip.gif"])
def test_unknown_extension(tmp_path, name):
    with pytest.raises(BadInputError, match="mp4"):
        VideoWriter(tmp_path / name, fps=10, size=SIZE)
    assert os.listdir(tmp_path) == []


def test_missing_output_folder(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        VideoWriter(tmp_path / "nope" / "clip.mp4", fps=10, size=SIZE)
    with pytest.raises(BadInputError, match="does not exist"):
        check_output(tmp_path / "nope" / "clip.mp4")
    assert os.listdir(tmp_path) == []


def test_output_is_a_directory(tmp_path):
    (tmp_path / "clip.mp4").mkdir()
    with pytest.raises(BadInputError, match="directory"):
        VideoWriter(tmp_path / "clip.mp4", fps=10, size=SIZE)


@pytest.mark.parametrize("size, fps", [(63, 10), (0, 10), (64, 0), (64, -5)])
def test_bad_size_or_rate(tmp_path, size, fps):
    with pytest.raises(BadInputError):
        VideoWriter(tmp_path / "clip.mp4", fps=fps, size=size)
    assert os.listdir(tmp_path) == []


def test_exception_inside_with_leaves_nothing(tmp_path):
    song, _ = pulsing_song(tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(RuntimeError, match="generator broke"):
        with VideoWriter(folder / "clip.mp4", fps=10, size=SIZE, audio=probe(song)) as writer:
            writer.write(solid(7))
            assert len(os.listdir(folder)) == 1  # the temporary file, being written
            raise RuntimeError("generator broke")
    assert os.listdir(folder) == []


def test_leaving_with_finishes_the_file(tmp_path):
    with VideoWriter(tmp_path / "clip.mp4", fps=10, size=SIZE) as writer:
        writer.write(solid(3))
        writer.write(solid(4))
    assert os.listdir(tmp_path) == ["clip.mp4"]
    assert len(decode_frames(tmp_path / "clip.mp4")) == 7
    # Closing inside the block as well (what render does) is harmless.
    with VideoWriter(tmp_path / "again.mp4", fps=10, size=SIZE) as writer:
        writer.write(solid(2))
        assert writer.close() == tmp_path / "again.mp4"
    assert sorted(os.listdir(tmp_path)) == ["again.mp4", "clip.mp4"]


def test_output_has_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        out = write_video(tmp_path / "clip.mp4", solid(2), fps=10)
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o644  # not the temporary file's private 0600


# --- pictures -----------------------------------------------------------------------------


def test_resize_and_colour(tmp_path):
    colours = [(200, 30, 90), (20, 220, 40), (128, 128, 128)]
    frames = np.concatenate([solid(1, c, side=64) for c in colours])
    out = write_video(tmp_path / "clip.mp4", frames, fps=10, size=96)
    decoded = decode_frames(out)
    assert len(decoded) == 3
    for frame, colour in zip(decoded, colours):
        assert (frame.width, frame.height) == (96, 96)
        rgb = frame.to_ndarray(format="rgb24").astype(int)
        middle = rgb[8:-8, 8:-8].reshape(-1, 3)
        assert np.abs(middle - colour).max() <= 6


@pytest.mark.parametrize("side", [64, 96], ids=["resized", "at-size"])
def test_frames_dir_pngs(tmp_path, side):
    n, size, fps = 5, 96, 10
    frames = np.concatenate([solid(1, (10 * i, 200, 255 - 10 * i), side=side) for i in range(n)])
    out = write_video(tmp_path / "clip.mp4", frames, fps=fps, size=size,
                      frames_dir=tmp_path / "pngs")
    pngs = sorted((tmp_path / "pngs").iterdir())
    assert [p.name for p in pngs] == [f"frame_{i:06d}.png" for i in range(n)]
    for i, png in enumerate(pngs):
        with av.open(str(png)) as container:
            image = next(container.decode(video=0))
        assert (image.width, image.height) == (size, size)
        rgb = image.to_ndarray(format="rgb24").astype(int)
        assert np.abs(rgb - (10 * i, 200, 255 - 10 * i)).max() <= 1
    # Writing the PNGs must not disturb the video's timing.
    decoded = decode_frames(out)
    assert len(decoded) == n
    assert [f.time for f in decoded] == pytest.approx([i / fps for i in range(n)], abs=1e-3)


def test_surround_192k_becomes_48k_stereo(tmp_path):
    sr = 192000
    x = np.zeros((6, sr), np.float32)  # 1 s of 5.1: FL FR FC LFE BL BR
    x[0] = tone(440, 1.0, sr, amp=0.5)
    x[1] = tone(660, 1.0, sr, amp=0.5)
    song = write_soundfile(tmp_path / "surround.wav", x, sr)
    fps = 10
    out = write_video(tmp_path / "clip.mp4", solid(10), fps=fps, audio=probe(song))
    _, _, audio, durations = streams(out)
    assert audio == [("aac", 48000, 2)]
    assert durations[0] == pytest.approx(1.0, abs=1 / fps)
    muxed, rate = decode_audio(out)
    assert rate == 48000 and muxed.shape[0] == 2
    # Front left stays left and front right stays right in the downmix.
    body = muxed[:, int(0.1 * rate):int(0.9 * rate)]
    assert peak_frequency(body[0], rate) == pytest.approx(440, abs=2)
    assert peak_frequency(body[1], rate) == pytest.approx(660, abs=2)
