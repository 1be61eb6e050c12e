"""Resumable renders: killed, interrupted, out of disk, and continued to the same video."""

import errno
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import ganclip
from conftest import LONG_FPS as FPS, LONG_SIZE as SIZE, ganclip_cli, probe_video
from ganclip.errors import BadInputError, EncodingError
from media import decode_frames

FRAMES = 160  # the long song (conftest): 16 s at 10 fps, 4 segments of 4 s


def decoded(path) -> np.ndarray:
    return np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(path)])


def psnr(a, b) -> np.ndarray:
    """Per-frame PSNR in dB of two stacks of frames [shape=(T, H, W, 3)]."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return 10 * np.log10(255 ** 2 / np.maximum(((a - b) ** 2).mean(axis=(1, 2, 3)), 1e-9))


def test_killed_renders_resume_to_exactly_the_uninterrupted_video(long_song, reference,
                                                                  tmp_path):
    args = ("render", long_song, "-o", tmp_path / "killed.mp4", "--fps", FPS, "--size", SIZE,
            "-q")
    output = tmp_path / "killed.mp4"
    parts = tmp_path / "killed.mp4.parts"
    rng = np.random.default_rng(7)
    kills = 0
    for wait_for in (1, 2):  # kill while segment `wait_for` is being drawn, at random
        proc = subprocess.Popen(ganclip_cli(*args, delay=0.08), stdin=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (parts / f"segment_{wait_for - 1:05d}.mp4").exists() \
                and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))  # a segment takes 0.4 s to draw
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        assert not output.exists() or proc.returncode == 0
    assert kills == 2  # the render was really cut off, twice
    final = subprocess.run(ganclip_cli(*args), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
    assert final.returncode == 0, final.stderr
    assert not parts.exists()

    frames, video_s, audio_s, codecs = probe_video(output)
    assert codecs == ("h264", "aac") and frames == FRAMES and np.isclose(video_s, 16.0)
    assert abs(audio_s - video_s) < 1 / FPS
    ours = decoded(output)
    assert ours.shape == reference.frames.shape and np.array_equal(ours, reference.frames)

    # and no glitch where the segments meet: every decoded frame is the frame the plan asks
    # for (a dropped or doubled frame would shift everything after it)
    from ganclip.generators import load_generator
    from ganclip.plan import Plan

    plan = Plan.load(reference.plan)
    drawn = load_generator("cppn", size=SIZE, seed=0)(*plan.batch(0, len(plan)))
    same = psnr(ours, drawn)
    joins = np.arange(40, FRAMES, 40)  # segments of 4 s
    assert same[joins].min() > np.median(same) - 6  # no damaged frame where segments meet
    times = np.array([f.time for f in decode_frames(output)])  # none dropped, doubled, mistimed
    assert np.allclose(times, np.arange(FRAMES) / FPS)


def test_a_full_disk_keeps_the_finished_segments_and_the_next_run_resumes(
        long_song, reference, tmp_path, monkeypatch):
    import av

    real, calls = av.VideoFrame.from_ndarray, []

    def fills_up(*args, **kwargs):
        calls.append(1)
        if len(calls) > 100:  # in the 3rd segment
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", fills_up)
    output = tmp_path / "full.mp4"
    with pytest.raises(EncodingError, match="disk full.*8 of 16 s.*kept in .*full.mp4.parts"):
        ganclip.render(long_song, output=output, fps=FPS, size=SIZE, quiet=True)
    parts = sorted(p.name for p in (tmp_path / "full.mp4.parts").iterdir())
    assert parts == ["plan.npz", "segment_00000.mp4", "segment_00001.mp4", "settings.json"]
    assert not output.exists()

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", real)  # space was freed
    calls.clear()
    ganclip.render(long_song, output=output, fps=FPS, size=SIZE, quiet=True)
    assert np.array_equal(decoded(output), reference.frames)
    assert not (tmp_path / "full.mp4.parts").exists()


def interrupted(song, output, monkeypatch, **options):
    """Start a render and stop it (as Ctrl-C does) once two segments are done."""
    from ganclip import video

    real, segments = video.VideoWriter.close, []

    def close(self):
        path = real(self)
        segments.append(path)
        if len(segments) == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(video.VideoWriter, "close", close)
    with pytest.raises(KeyboardInterrupt) as caught:
        ganclip.render(song, output=output, quiet=True, **options)
    monkeypatch.setattr(video.VideoWriter, "close", real)
    return caught.value


def test_an_interrupted_render_says_what_it_kept(long_song, tmp_path, monkeypatch):
    stop = interrupted(long_song, tmp_path / "v.mp4", monkeypatch, fps=FPS, size=SIZE)
    assert stop.kept.startswith("8 of 16 s of video (50 %) are kept in")


def test_other_settings_against_an_unfinished_render_are_refused_or_restarted(
        long_song, tmp_path, monkeypatch):
    output = tmp_path / "v.mp4"
    interrupted(long_song, output, monkeypatch, fps=FPS, size=SIZE, seed=1)
    with pytest.raises(BadInputError, match=r"other settings \(seed 1 there, 2 now\).*"
                                            r"--restart"):
        ganclip.render(long_song, output=output, fps=FPS, size=SIZE, seed=2, quiet=True)
    result = ganclip.render(long_song, output=output, fps=FPS, size=SIZE, seed=2,
                            restart=True, quiet=True)
    assert result.frames == FRAMES and not (tmp_path / "v.mp4.parts").exists()


def test_resume_takes_the_saved_settings(long_song, tmp_path, monkeypatch):
    output = tmp_path / "v.mp4"
    interrupted(long_song, output, monkeypatch, fps=5, size=16, seed=3)
    result = ganclip.render(long_song, output=output, resume=True, quiet=True)
    assert result.fps == 5 and result.frames == 80
    with pytest.raises(BadInputError, match="--resume: there is no unfinished render"):
        ganclip.render(long_song, output=output, resume=True, quiet=True)


def test_a_foreign_folder_in_the_way_is_refused(long_song, tmp_path):
    (tmp_path / "v.mp4.parts").mkdir()
    (tmp_path / "v.mp4.parts" / "notes.txt").write_text("mine")
    with pytest.raises(BadInputError, match="is not a ganclip render in progress.*--restart"):
        ganclip.render(long_song, output=tmp_path / "v.mp4", fps=FPS, size=SIZE, quiet=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders; see the test below")
def test_a_read_only_output_folder_is_refused_before_any_work(long_song, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(BadInputError, match="not writable"):
            ganclip.render(long_song, output=folder / "v.mp4", quiet=True)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def no_analysis(monkeypatch, why: str) -> None:
    """Make every way into the song's analysis fail the test, as render looks it up."""
    import ganclip.features
    import ganclip.render

    def fail(*args, **kwargs):
        pytest.fail(why)

    for name in ("reactive_plan", "classic_plan"):
        monkeypatch.setattr(f"ganclip.choreography.{name}", fail)
        monkeypatch.setattr(ganclip.render, name, fail, raising=False)  # imported by name
    for name in ("SongAnalyzer", "FrameSpectra"):
        if hasattr(getattr(ganclip.features, name, None), "finish"):
            monkeypatch.setattr(getattr(ganclip.features, name), "finish", fail)


def test_an_unwritable_output_folder_is_refused_before_the_analysis(long_song, tmp_path,
                                                                    monkeypatch, capsys):
    from ganclip.cli import main

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(tmp_path)
                        else real_access(path, mode))
    no_analysis(monkeypatch, "analysed before checking the output")
    code = main(["render", str(long_song), "-o", str(tmp_path / "v.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: output folder {tmp_path} is not writable; choose " \
                                "another --output\n"
    assert not (tmp_path / "v.mp4.parts").exists()


def stop_at(frames: int):
    """A ``progress`` callback that stops the render (as Ctrl-C does) once ``frames`` are
    drawn."""

    def progress(done, total):
        if done >= frames:
            raise KeyboardInterrupt

    return progress


def test_a_render_stopped_at_batch_8_finishes_at_batch_4_as_if_never_stopped(
        long_song, reference, tmp_path, capsys):
    from ganclip.cli import main

    output = tmp_path / "v.mp4"
    with pytest.raises(KeyboardInterrupt):  # in the second segment (frames 40-79)
        ganclip.render(long_song, output=output, fps=FPS, size=SIZE, batch=8,
                       progress=stop_at(48), quiet=True)
    assert (tmp_path / "v.mp4.parts" / "segment_00000.mp4").exists()
    code = main(["render", str(long_song), "-o", str(output), "--fps", str(FPS), "--size",
                 str(SIZE), "--batch", "4", "-q"])
    assert code == 0, capsys.readouterr().err
    assert not (tmp_path / "v.mp4.parts").exists()
    ours, theirs = decoded(output), reference.frames  # drawn 8 at a time
    assert ours.shape == theirs.shape
    assert np.array_equal(ours[:40], theirs[:40])  # the segment kept from the first run
    # the rest was drawn 4 at a time: a matrix product over another batch size rounds the
    # odd pixel one level off, and H.264 carries that into its predictions (here 15 frames
    # differ, by up to 26 levels at a pixel, 0.7 on average in the worst, 40 dB): the same
    # pictures, not the same bytes (neighbouring frames of this song are 26 dB apart in
    # the median)
    assert psnr(ours, theirs).min() > 30
    times = np.array([f.time for f in decode_frames(output)])
    assert np.allclose(times, np.arange(len(theirs)) / FPS)


def test_a_render_started_on_cpu_finishes_on_cpu_0(long_song, reference, tmp_path, capsys):
    from ganclip.cli import main

    output = tmp_path / "v.mp4"
    with pytest.raises(KeyboardInterrupt):
        ganclip.render(long_song, output=output, fps=FPS, size=SIZE, device="cpu",
                       progress=stop_at(48), quiet=True)
    code = main(["render", str(long_song), "-o", str(output), "--fps", str(FPS), "--size",
                 str(SIZE), "--device", "cpu:0", "-q"])
    assert code == 0, capsys.readouterr().err
    assert not (tmp_path / "v.mp4.parts").exists()
    assert np.array_equal(decoded(output), reference.frames)
