import io
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import (LONG_SIZE, encode_audio, ganclip_cli, probe_video, two_part_song,
                      video_shape)
from ganclip.cli import build_parser, main
from media import decode_frames


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_render_end_to_end(song, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    code, stdout, err = run(["render", str(song), "-o", str(out), "--fps", "12", "--size", "40",
                             "--types", "2", "--quiet"], capsys)
    assert code == 0, err
    assert "wrote" in stdout and "36 frames" in stdout
    frames, video_s, audio_s, codecs = probe_video(out)
    assert (frames, codecs) == (36, ("h264", "aac")) and abs(audio_s - video_s) <= 1 / 12


def test_default_output_is_song_stem_in_current_folder(song, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = run(["render", str(song), "--fps", "5", "--size", "16", "-q"], capsys)
    assert code == 0, err
    assert (work / "song.mp4").is_file()


def test_auto_model_says_which_generator_in_one_line(song, tmp_path, capsys):
    code, _, err = run(["render", str(song), "-o", str(tmp_path / "a.mp4"), "--fps", "5",
                        "--size", "16"], capsys)
    assert code == 0
    assert [line for line in err.splitlines() if "cppn" in line] == [
        "note: model auto: no BigGAN weights are cached, using the built-in 'cppn' generator"]


def test_types_lists_the_built_ins_and_a_users_file(tmp_path, capsys):
    extra = tmp_path / "mine.toml"
    extra.write_text('[[type]]\nname = "my goldfish"\nclasses = [["goldfish", 1]]\n')
    code, out, _ = run(["types", "--types-file", str(extra)], capsys)
    assert code == 0
    assert "coral reef" in out and "my goldfish" in out and "goldfish 1.00" in out
    code, out, _ = run(["types", "--classes"], capsys)
    assert out.splitlines()[1] == "   1  goldfish" and len(out.splitlines()) == 1000


def test_help_documents_every_render_flag():
    parser = build_parser()
    render = parser._subparsers._group_actions[0].choices["render"]
    text = render.format_help()
    for action in render._actions:
        for flag in action.option_strings:
            assert flag in text
        assert action.help, action.dest


def bad_inputs(tmp_path, song):
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 50)
    mp3 = encode_audio(tmp_path / "real.mp3", two_part_song(seconds=4.0))
    truncated = tmp_path / "cut.mp3"
    truncated.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    types = tmp_path / "types.toml"
    types.write_text('[[type]]\nname = "x"\nclasses = [["not a class", 1]]\n')
    out = str(tmp_path / "out.mp4")
    return {
        "missing file": (["render", str(tmp_path / "nope.wav"), "-o", out], "nope.wav"),
        # a folder is its songs, each to its own video: -o must then name a folder
        "directory": (["render", str(tmp_path), "-o", out], "-o names a folder"),
        "text as mp3": (["render", str(text), "-o", out], "notes.mp3"),
        "truncated mp3": (["render", str(truncated), "-o", out], "truncated"),
        "empty file": (["render", str(empty), "-o", out], "empty"),
        "fps 0": (["render", str(song), "-o", out, "--fps", "0"], "--fps"),
        "fps -3": (["render", str(song), "-o", out, "--fps", "-3"], "--fps"),
        "fps 500": (["render", str(song), "-o", out, "--fps", "500"], "--fps"),
        "fps abc": (["render", str(song), "-o", out, "--fps", "abc"], "--fps"),
        "size 0": (["render", str(song), "-o", out, "--size", "0"], "--size"),
        "size 100000": (["render", str(song), "-o", out, "--size", "100000"], "--size"),
        "types 0": (["render", str(song), "-o", out, "--types", "0"], "--types"),
        "types 10000": (["render", str(song), "-o", out, "--types", "10000"], "--types"),
        "transitions -1": (["render", str(song), "-o", out, "--transitions", "-1"],
                           "--transitions"),
        "missing output folder": (["render", str(song), "-o", str(tmp_path / "no" / "o.mp4")],
                                  "does not exist"),
        "unknown model": (["render", str(song), "-o", out, "--model", "bigan-256"],
                          "unknown model 'bigan-256'"),
        "malformed types file": (["render", str(song), "-o", out, "--types-file", str(types)],
                                 "types.toml"),
        "unknown type name": (["render", str(song), "-o", out, "--type-names", "coral reef,zz"],
                              "zz"),
    }


CASES = [
    "missing file", "directory", "text as mp3", "truncated mp3", "empty file", "fps 0",
    "fps -3", "fps 500", "fps abc", "size 0", "size 100000", "types 0", "types 10000",
    "transitions -1", "missing output folder", "unknown model", "malformed types file",
    "unknown type name"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_error_line_and_no_file(case, tmp_path, song, capsys):
    argv, needle = bad_inputs(tmp_path, song)[case]
    before = set(os.listdir(tmp_path))
    code, out, err = run(argv, capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    assert "Traceback" not in err
    assert set(os.listdir(tmp_path)) == before  # no video, no temporary file


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_no_arguments_in_a_terminal_asks_like_the_seed(tmp_path, monkeypatch, capsys):
    import soundfile as sf

    (tmp_path / "audioFiles").mkdir()
    sf.write(tmp_path / "audioFiles" / "tune.wav", two_part_song(seconds=2.0), 22050)
    monkeypatch.chdir(tmp_path)
    # a bad track number, then 1; a bad fps, then 10; 2 types; default transitions; a bad
    # size, then 32x24; a bad camera, then still
    answers = "7\n1\nabc\n10\n2\n\n1920x\n32x24\nfast\n0\n"
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answers))
    code, out, err = run([], capsys)
    assert code == 0, err
    assert "1. tune.wav" in out and out.count("try again") == 4
    assert "a number from 1 to 120, e.g. 30; try again" in out
    assert "invalid literal" not in out and "could not convert" not in out
    assert "landscape" in out  # the presets are offered
    frames, *_ = probe_video(tmp_path / "tune.mp4")
    assert (frames, video_shape(tmp_path / "tune.mp4")) == (20, (32, 24))


def test_no_arguments_without_a_terminal_prints_usage(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, out, err = run([], capsys)
    assert code == 2 and err.startswith("usage: ganclip")


def test_python_dash_m_runs_the_same_cli(song, tmp_path):
    bad = subprocess.run([sys.executable, "-m", "ganclip", "render", str(song), "--fps", "abc"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: argument --fps: invalid float value: 'abc'")
    ok = subprocess.run([sys.executable, "-m", "ganclip", "render", str(song), "-o",
                         str(tmp_path / "m.mp4"), "--fps", "4", "--size", "16"],
                        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert ok.returncode == 0, ok.stderr
    assert np.isclose(probe_video(tmp_path / "m.mp4")[1], 3.0)


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stopped_render_keeps_its_segments_and_resumes(sig, code, long_song, reference,
                                                         tmp_path):
    import signal
    import time

    # the shared reference's plan: the analysis is not what is stopped here
    args = ("render", long_song, "-o", tmp_path / "v.mp4", "--plan-in", reference.plan,
            "--size", LONG_SIZE, "-q")
    proc = subprocess.Popen(ganclip_cli(*args, delay=0.08), stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    parts = tmp_path / "v.mp4.parts"
    deadline = time.monotonic() + 120
    while not list(parts.glob("segment_00001.mp4")) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until a segment is finished and the next is being drawn
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: interrupted ({sig})") and "v.mp4.parts" in last
    assert "--resume" in last and "Traceback" not in err
    assert not (tmp_path / "v.mp4").exists()
    kept = sorted(p.name for p in parts.iterdir())
    assert "plan.npz" in kept and "segment_00001.mp4" in kept
    assert "segment_00003.mp4" not in kept  # stopped before the end
    assert not [n for n in kept if n.startswith(".")]  # no half-written segment
    again = subprocess.run(ganclip_cli(*args), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr
    assert not parts.exists()
    frames, video_s, audio_s, _ = probe_video(tmp_path / "v.mp4")
    assert frames == 160 and np.isclose(video_s, 16.0) and abs(audio_s - video_s) < 0.1
    ours = np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(tmp_path / "v.mp4")])
    assert np.array_equal(ours, reference.frames)


def test_verbose_says_what_is_happening(song, tmp_path, capsys):
    code, out, err = run(["render", str(song), "-o", str(tmp_path / "v.mp4"), "--size", "16",
                          "--fps", "10", "-v"], capsys)
    assert code == 0, err
    for said in ("note: probe", "soundfile", "analysis: ", "tempo confidence", "plan: 30 frames",
                 "generator cppn on cpu, precision auto", "segment 1/1 done",
                 "joining 1 segment into"):
        assert said in err, said
    code, out, err = run(["render", str(song), "-o", str(tmp_path / "v.mp4"), "--size", "16",
                          "--fps", "10"], capsys)
    assert "segment 1/1" not in err and "probe" not in err  # not without --verbose


def test_web_without_gradio_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now fails
    code, _, err = run(["web"], capsys)
    assert code == 2
    assert err == "error: 'ganclip web' needs Gradio: pip install 'ganclip[web]' (or pip " \
                  "install gradio)\n"
