"""Many songs in one command: a video each, a broken one reported, the others made."""

import pytest

from conftest import probe_video, two_part_song
from ganclip.cli import main
from ganclip.render import render_many


def test_three_songs_one_broken(write_wav, tmp_path, capsys):
    a = write_wav(two_part_song(), name="a.wav")
    c = write_wav(two_part_song(seconds=2.0), name="c.wav")
    (tmp_path / "b.wav").write_text("not audio")
    out = tmp_path / "out"
    out.mkdir()
    code = main(["render", str(a), str(tmp_path / "b.wav"), str(c), "-o", str(out), "--fps",
                 "10", "--size", "16", "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "c.mp4"]
    assert probe_video(out / "a.mp4")[0] == 30 and probe_video(out / "c.mp4")[0] == 20
    errors = captured.err.strip().splitlines()
    assert errors[0].startswith(f"error: {tmp_path / 'b.wav'}: could not decode")
    assert errors[-1] == "error: 1 of 3 songs failed"
    assert captured.out.count("wrote ") == 2


def test_a_folder_of_songs(write_wav, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "album"
    folder.mkdir()
    for name in ("one", "two"):
        (folder / f"{name}.wav").write_bytes(write_wav(two_part_song(seconds=1.0),
                                                       name=f"{name}.wav").read_bytes())
    (folder / "cover.jpg").write_bytes(b"jpeg")
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(folder), "--fps", "5", "--size", "16", "-q"]) == 0
    assert (tmp_path / "one.mp4").is_file() and (tmp_path / "two.mp4").is_file()


def test_many_songs_refuse_what_is_for_one(write_wav, tmp_path, capsys):
    a, b = write_wav(two_part_song(), name="a.wav"), write_wav(two_part_song(), name="b.wav")
    assert main(["render", str(a), str(b), "--plan-out", str(tmp_path / "p.npz")]) == 2
    assert "--plan-out is for one song; 2 were given" in capsys.readouterr().err
    assert main(["render", str(a), str(b), "-o", str(tmp_path / "nowhere")]) == 2
    assert "names a folder" in capsys.readouterr().err
    (tmp_path / "x").mkdir()
    same = write_wav(two_part_song(), name="x/a.wav")
    with pytest.raises(Exception, match="several songs would make a.mp4"):
        render_many([a, same], output_dir=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["render", str(empty)]) == 2
    assert "holds no audio files" in capsys.readouterr().err


def test_an_unwritable_folder_is_refused_with_ray_before_any_song(write_wav, tmp_path, capsys,
                                                         monkeypatch):
    import os

    a, b = write_wav(two_part_song(), name="a.wav"), write_wav(two_part_song(), name="b.wav")
    out = tmp_path / "out"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(out)
                        else real_access(path, mode))
    assert main(["render", str(a), str(b), "-o", str(out), "--ray"]) == 2
    assert capsys.readouterr().err == f"error: -o {out}: this folder is not writable; " \
                                      "choose another\n"
    assert main(["render", str(a), "-o", str(out / "a.mp4"), "--ray"]) == 2  # one song
    assert capsys.readouterr().err == f"error: output folder {out} is not writable; choose " \
                                      "another --output\n"
    assert list(out.iterdir()) == []
