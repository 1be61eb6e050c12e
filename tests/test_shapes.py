"""Frames of any shape (--size WxH or a preset) and the camera that moves with the music."""

import logging

import numpy as np
import pytest

import ganclip
from conftest import probe_video, video_shape
from ganclip.camera import warp
from ganclip.cli import main
from ganclip.errors import BadInputError
from ganclip.generators.cppn import CPPN
from ganclip.imagetypes import BUILTIN_TYPES
from ganclip.options import SIZE_PRESETS, parse_size
from ganclip.plan import Plan
from synth import groove, pad

STILL = dict(pulse=0, motion=0, zoom=0, rotate=0, shake=0, flash=0, truncation_range=(1, 1),
             type_names=["coral reef"])  # nothing moves


def decode(path) -> np.ndarray:
    """Every frame of a video as float32 [T, H, W, 3]."""
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(
            np.float32)


def change_peaks(frames: np.ndarray, fps: float) -> np.ndarray:
    """Times (s) of the peaks of the frame-to-frame change, as benchmarks/sync.py finds them."""
    from scipy.signal import find_peaks

    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    floor, top = np.median(change), np.percentile(change, 99)
    peaks, _ = find_peaks(change, height=floor + 0.3 * (top - floor),
                          distance=max(1, round(0.1 * fps)))
    return (peaks + 1) / fps


@pytest.mark.parametrize("text, shape", [
    ("1920x1080", (1920, 1080)), ("1080X1920", (1080, 1920)), (" 640 x 360 ", (640, 360)),
    ("512", (512, 512)), (300, (300, 300)), ((1080, 1350), (1080, 1350)),
    ("landscape", (1920, 1080)), ("Portrait", (1080, 1920)), ("4k", (3840, 2160)),
    ("square", (1080, 1080)), ("16x4096", (16, 4096))])
def test_a_size_is_a_shape_a_side_or_a_preset(text, shape):
    assert parse_size(text) == shape


def test_an_odd_side_is_rounded_up_with_a_note(caplog):
    with caplog.at_level(logging.INFO, logger="ganclip.options"):
        assert parse_size("1921x1079") == (1922, 1080)
    assert "rounded up to 1922x1080" in caplog.text


@pytest.mark.parametrize("bad, said", [
    ("1920x", "give WxH"), ("x1080", "give WxH"), ("abc", "give WxH"), ("12.5x10", "give WxH"),
    ("0x100", "each side must be 16-4096"), ("5000x5000", "each side must be 16-4096"),
    ("-5", "give WxH"), ("8x8", "each side must be 16-4096")])
def test_a_bad_size_is_one_line_naming_the_flag_and_the_presets(bad, said, song, tmp_path,
                                                                capsys):
    with pytest.raises(BadInputError, match=said):
        parse_size(bad)
    out = tmp_path / "o.mp4"
    code = main(["render", str(song), "-o", str(out), "--size", bad, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("error: --size")
    assert "landscape" in err[0] or "16-4096" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


@pytest.mark.parametrize("flag, value", [("--zoom", "-1"), ("--zoom", "nan"),
                                         ("--shake", "inf"), ("--flash", "11")])
def test_a_bad_camera_knob_is_one_line(flag, value, song, tmp_path, capsys):
    code = main(["render", str(song), "-o", str(tmp_path / "o.mp4"), flag, value, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and err == [f"error: {flag} must be a number between 0 and 10; got "
                                 f"{value}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


@pytest.mark.parametrize("size, seconds", [("1920x1080", 0.5), ("1080x1920", 0.5),
                                           ("3840x2160", 0.2)])
def test_published_shapes_decode_back_at_their_size_and_in_sync(size, seconds, write_wav,
                                                               tmp_path):
    song = write_wav(groove(np.arange(0.05, 1, 0.25), 1.0) + pad([110], 1.0, amp=0.05))
    out = tmp_path / "v.mp4"
    frames_dir = tmp_path / "frames" if size == "1080x1920" else None
    result = ganclip.render(song, output=out, size=size, fps=10, duration=seconds,
                            frames_dir=frames_dir, plan_out=tmp_path / "p.npz", quiet=True)
    w, h = (int(v) for v in size.split("x"))
    frames, video_s, audio_s, _ = probe_video(out)
    assert video_shape(out) == (w, h) and frames == result.frames == round(seconds * 10)
    assert abs(video_s - audio_s) <= 1 / 10  # picture and sound end within a frame
    assert Plan.load(tmp_path / "p.npz").size == (w, h)
    if frames_dir is not None:
        import av

        pngs = sorted(frames_dir.glob("*.png"))
        with av.open(str(pngs[0])) as c:
            frame = next(c.decode(video=0))
        assert len(pngs) == frames and (frame.width, frame.height) == (w, h)


def test_cppn_composes_a_wide_frame_instead_of_stretching_a_square():
    z = np.random.default_rng(1).uniform(-1, 1, (1, 128)).astype(np.float32)
    y, t = BUILTIN_TYPES[3].class_vector()[None], np.float32([0.6])
    square = CPPN(size=(64, 64))(z, y, t)[0].astype(np.float32).mean(-1)
    wide = CPPN(size=(128, 64))(z, y, t)[0].astype(np.float32).mean(-1)
    assert wide.shape == (64, 128)
    # the wide frame's middle is the square frame (the scene goes on to the sides: a circle
    # stays round), not the square stretched to twice its width
    stretched = np.repeat(square, 2, axis=1)
    middle = wide[:, 32:96]
    same = np.corrcoef(middle.ravel(), square.ravel())[0, 1]
    assert same > 0.8 and same > np.corrcoef(wide.ravel(), stretched.ravel())[0, 1] + 0.2


def test_the_cppn_camera_moves_the_scene_exactly():
    gen = CPPN(size=(96, 64))
    z = np.random.default_rng(2).uniform(-1, 1, (1, 128)).astype(np.float32)
    y, t = BUILTIN_TYPES[0].class_vector()[None], np.float32([0.6])

    def at(zoom=1.0, angle=0.0, x=0.0, y_=0.0, flash=0.0):
        return gen(z, y, t, camera=np.float32([[zoom, angle, x, y_, flash]]))[0].astype(float)

    still = at()
    assert np.array_equal(still, gen(z, y, t)[0])  # a still camera is no camera
    # a shift of 8 pixels (8/32 frame heights) to the right shows the scene 8 pixels on;
    # the per-frame spread of the ramp differs a little with what is in view
    shifted = at(x=8 / 32)
    assert np.abs(shifted[:, :-8] - still[:, 8:]).mean() < 0.15 * np.abs(still[:, :-8]
                                                                          - still[:, 8:]).mean()
    assert np.abs(at(zoom=1.3) - still).mean() > 10 and np.abs(at(angle=0.3) - still).mean() > 10
    assert at(flash=1.0).mean() > still.mean() + 40  # the flash lifts towards white


def test_the_warp_mirrors_so_no_border_shows_and_a_still_camera_only_scales():
    rng = np.random.default_rng(0)
    frames = rng.integers(180, 256, (2, 32, 32, 3), dtype=np.uint8)
    out = warp(frames, np.float32([[0.5, 0.4, 0.3, 0.2, 0], [1, 0, 0, 0, 0]]), (64, 36))
    assert out.shape == (2, 36, 64, 3)
    assert out.min() >= 150  # zoomed out, turned, shifted: mirrored, never a black edge
    same = warp(frames, None, (32, 32))
    assert np.abs(same.astype(int) - frames).max() <= 1


def test_the_camera_alone_moves_the_picture_on_every_beat(write_wav, tmp_path):
    beats = np.arange(0.5, 11.5, 0.5)  # 120 BPM
    song = write_wav(groove(beats, 12.0) + pad([110, 165], 12.0, amp=0.06))
    out = tmp_path / "camera.mp4"
    ganclip.render(song, output=out, size="64x36", fps=30, model="cppn", quiet=True,
                   **{**STILL, "zoom": 1}, plan_out=tmp_path / "p.npz")
    plan = Plan.load(tmp_path / "p.npz")
    assert np.all(plan.flash == 0) and np.all(plan.angle == 0) and plan.zoom.max() > 1.04
    peaks = change_peaks(decode(out), 30)
    import mir_eval

    assert mir_eval.beat.f_measure(beats, peaks, f_measure_threshold=0.07) > 0.9
    # and with the camera off too, the picture stands still
    ganclip.render(song, output=tmp_path / "still.mp4", size="64x36", fps=30, model="cppn",
                   quiet=True, **STILL)
    assert np.abs(np.diff(decode(tmp_path / "still.mp4"), axis=0)).mean(axis=(1, 2, 3)).max() \
        < 0.05


def test_the_camera_is_the_same_at_any_frame_rate(write_wav, tmp_path):
    song = write_wav(groove(np.arange(0.25, 6, 0.5), 6.0) + pad([110], 6.0, amp=0.06))
    plans = [ganclip.analyze(song, fps=fps) for fps in (24, 48)]
    for name in ("zoom", "angle", "flash"):
        slow, fast = (getattr(p, name) for p in plans)
        # frame k at 24 fps ends where frame 2k + 1 at 48 fps ends
        assert np.abs(slow - fast[1::2]).max() < 1e-5, name
    assert np.abs(plans[0].shift - plans[1].shift[1::2]).max() < 1e-5
    assert plans[0].zoom.max() > 1.05 and np.abs(plans[0].angle).max() > 0
    shift = plans[0].shift  # jolts every way, not only right and up
    assert np.all(shift.min(axis=0) < -0.005) and np.all(shift.max(axis=0) > 0.005)


def test_presets_are_in_the_help_and_the_readme(capsys):
    from pathlib import Path

    assert main(["render", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name, (w, h) in SIZE_PRESETS.items():
        assert f"{name} ({w}x{h})" in text and f"`{name}`" in readme


def test_a_mirror_type_is_mirrored_and_a_symmetry_comes_in_gradually():
    gen = CPPN(size=(64, 48))
    z = np.random.default_rng(4).uniform(-1, 1, (3, 128)).astype(np.float32)
    y, t = np.repeat(BUILTIN_TYPES[0].class_vector()[None], 3, 0), np.full(3, 0.6, np.float32)
    frames = gen(z, y, t, symmetry=np.float32([[2, 1], [2, 0.5], [0, 0]])).astype(float)
    mirrored = np.abs(frames[0] - frames[0][:, ::-1]).mean()
    assert mirrored < 1.0 and np.abs(frames[2] - frames[2][:, ::-1]).mean() > 10
    assert np.abs(frames[1] - frames[1][:, ::-1]).mean() > mirrored + 2  # half folded
    six = gen(z[:1], y[:1], t[:1], symmetry=np.float32([[6, 1]]))[0].astype(float)
    assert np.abs(six - frames[2]).mean() > 10


def test_the_plan_folds_by_the_symmetric_type_that_weighs_most():
    n = 3
    plan = Plan(fps=10, times=np.arange(n) / 10, z=np.zeros((n, 4)),
                mix=np.float32([[1, 0, 0], [0.3, 0.7, 0], [0.2, 0.3, 0.5]]),
                classes=np.zeros((3, 0)), truncation=np.full(n, 0.5), look=np.zeros(n, int),
                type_names=("plain", "snow", "mirror"), symmetry=[0, 6, 2])
    assert plan.folds(0, n).tolist() == [[0, 0], [6, pytest.approx(0.7)],
                                         [2, pytest.approx(0.5)]]


def test_a_section_that_starts_much_louder_is_a_drop():
    from ganclip.choreography import drops
    from ganclip.features import song_features
    from synth import SR

    beats = np.arange(0.25, 20, 0.5)
    quiet = 0.15 * groove(beats[beats < 10], 10) + pad([110, 165], 10, amp=0.05)
    loud = groove(beats[beats >= 10] - 10, 10, seed=1, bright=True) + pad([220, 330], 10,
                                                                          amp=0.1)
    song = np.concatenate([quiet, loud]).astype(np.float32)
    found = drops(song_features([song], sr=SR))
    assert len(found) == 1 and abs(found[0] - 10) < 0.5


def test_the_drop_is_the_camera_s_biggest_push(write_wav):
    beats = np.arange(0.25, 20, 0.5)
    quiet = 0.15 * groove(beats[beats < 10], 10) + pad([110, 165], 10, amp=0.05)
    loud = groove(beats[beats >= 10] - 10, 10, seed=1, bright=True) + pad([220, 330], 10,
                                                                          amp=0.1)
    song = np.concatenate([quiet, loud])
    plan = ganclip.analyze(write_wav(0.8 * song / np.abs(song).max()), fps=30)
    peak = plan.times[np.argmax(plan.zoom)]
    assert abs(peak - 10) < 0.5
    after = plan.zoom[(plan.times > 12)]
    assert plan.zoom.max() - 1 > 1.3 * (after.max() - 1)  # beyond any beat after it

def test_a_wide_render_stopped_in_its_second_segment_resumes_at_its_shape(write_wav,
                                                                        tmp_path):
    song = write_wav(groove(np.arange(0.25, 9, 0.5), 9.0) + pad([110], 9.0, amp=0.05))
    output = tmp_path / "wide.mp4"

    def stop(done, total):
        if done >= 48:  # in the second 4 s segment at 10 fps
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ganclip.render(song, output=output, size="48x16", fps=10, batch=8, progress=stop,
                       quiet=True)
    assert (tmp_path / "wide.mp4.parts" / "segment_00000.mp4").exists()
    with pytest.raises(BadInputError, match="size"):  # another shape is another render
        ganclip.render(song, output=output, size="16x48", fps=10, quiet=True)
    ganclip.render(song, output=output, resume=True, quiet=True)
    frames, video_s, audio_s, _ = probe_video(output)
    assert video_shape(output) == (48, 16) and frames == 90 and abs(video_s - audio_s) <= 0.1
