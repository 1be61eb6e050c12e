"""Odd audio that must render (or be refused in one line), through the CLI as a user runs it."""

import numpy as np
import pytest
import soundfile as sf

from conftest import probe_video, two_part_song
from ganclip.cli import main
from synth import tone

SR = 22050


def _short(tmp_path):
    return "short.wav", tone(440, 0.1), SR, 3  # 0.1 s at 30 fps: 3 frames


def _silent(tmp_path):
    return "silent.wav", np.zeros(2 * SR, np.float32), SR, 60


def _dc_offset(tmp_path):
    return "dc.wav", two_part_song(seconds=2.0) * 0.5 + 0.45, SR, 60


def _clipped(tmp_path):
    return "clipped.wav", np.clip(4 * two_part_song(seconds=2.0), -1, 1), SR, 60


def _8k_mono(tmp_path):
    return "phone.wav", tone(300, 2.0, 8000), 8000, 60


def _192k_six_channels(tmp_path):
    six = np.stack([tone(f, 2.0, 192000, amp=0.2) for f in (110, 220, 330, 440, 550, 60)],
                   axis=1)
    return "surround.wav", six, 192000, 60


def _unicode_name(tmp_path):
    return "my sóng – ünïcode 曲.wav", two_part_song(seconds=2.0), SR, 60


@pytest.mark.parametrize("make", [_short, _silent, _dc_offset, _clipped, _8k_mono,
                                  _192k_six_channels, _unicode_name],
                         ids=lambda f: f.__name__.strip("_"))
def test_odd_audio_renders_a_synced_video(make, tmp_path, capsys):
    name, signal, sr, frames = make(tmp_path)
    song = tmp_path / name
    sf.write(song, signal, sr, subtype="FLOAT")
    out = tmp_path / f"{song.stem} out.mp4"
    code = main(["render", str(song), "-o", str(out), "--size", "16", "--fps", "30", "-q"])
    _, err = capsys.readouterr()
    assert code == 0, err
    got, video_s, audio_s, codecs = probe_video(out)
    assert got == frames and codecs == ("h264", "aac")
    assert abs(audio_s - video_s) < 1 / 30 + 1e-3


def test_a_video_file_renders_from_its_sound(tmp_path, capsys):
    song = tmp_path / "song.wav"
    sf.write(song, two_part_song(seconds=2.0), SR)
    clip = tmp_path / "clip with sound.mp4"
    assert main(["render", str(song), "-o", str(clip), "--size", "16", "--fps", "10",
                 "-q"]) == 0
    out = tmp_path / "from video.mp4"
    code = main(["render", str(clip), "-o", str(out), "--size", "16", "--fps", "10", "-q"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert probe_video(out)[:1] == (20,)


def test_a_video_without_sound_is_one_line(tmp_path, capsys):
    from ganclip.video import VideoWriter

    silent_film = tmp_path / "film.mp4"
    with VideoWriter(silent_film, fps=10, size=16) as writer:
        writer.write(np.zeros((5, 16, 16, 3), np.uint8))
    code = main(["render", str(silent_film), "-o", str(tmp_path / "o.mp4"), "-q"])
    _, err = capsys.readouterr()
    assert code != 0 and err.startswith("error: ") and err.count("\n") == 1
    assert str(silent_film) in err and not (tmp_path / "o.mp4").exists()
