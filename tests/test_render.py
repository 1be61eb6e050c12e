import numpy as np
import pytest

import ganclip
from conftest import probe_video, two_part_song
from ganclip.choreography import Plan
from ganclip.errors import AudioError, BadInputError
from ganclip.timebase import frame_rate
from synth import tone


def test_render_makes_a_synced_video_with_sound(song, tmp_path):
    result = ganclip.render(song, output=tmp_path / "out.mp4", fps=10, size=32, quiet=True)
    frames, video_s, audio_s, codecs = probe_video(result.path)
    assert codecs == ("h264", "aac")
    assert frames == result.frames == 30  # round(3 s × 10 fps)
    assert abs(video_s - 3.0) < 1e-6
    assert abs(audio_s - 3.0) < 1 / 10  # within one frame
    assert result.model == "cppn" and result.realtime_factor > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "song.wav"]


@pytest.mark.parametrize("fps", [1, 23.976, 65, 120])
def test_any_frame_rate_gives_round_duration_times_fps(write_wav, tmp_path, fps):
    path = write_wav(two_part_song(seconds=2.05))
    result = ganclip.render(path, output=tmp_path / "v.mp4", fps=fps, size=16, quiet=True)
    frames, video_s, audio_s, codecs = probe_video(result.path)
    assert frames == round(2.05 * fps)
    assert abs(video_s - frames / float(frame_rate(fps))) < 1e-6  # 23.976 is 24000/1001
    # MP4's edit list trims the AAC priming and padding: the song's exact length
    assert abs(audio_s - 2.05) < 1e-3
    assert abs(audio_s - video_s) <= 0.5 / fps + 1e-3


def test_mkv_output(song, tmp_path):
    result = ganclip.render(song, output=tmp_path / "v.mkv", fps=10, size=16, quiet=True)
    frames, _, audio_s, codecs = probe_video(result.path)
    assert codecs == ("h264", "aac") and frames == 30
    # Matroska cannot trim AAC's last packet: up to one AAC frame (1024 samples) of padding
    assert 3.0 - 1e-3 <= audio_s <= 3.0 + 1024 / 22050 + 1e-3


def test_start_and_duration_render_a_part(song, tmp_path):
    result = ganclip.render(song, output=tmp_path / "part.mp4", fps=10, size=16, start=1.0,
                            duration=1.5, quiet=True)
    frames, _, audio_s, _ = probe_video(result.path)
    assert frames == 15 and abs(audio_s - 1.5) < 0.1


def test_plan_out_saves_the_plan_with_types_and_settings(song, tmp_path):
    ganclip.render(song, output=tmp_path / "o.mp4", fps=10, size=16, types=3, seed=4,
                   mode="classic", plan_out=tmp_path / "plan.npz", quiet=True)
    plan = Plan.load(tmp_path / "plan.npz")
    assert len(plan) == 30 and len(plan.type_names) == 3
    assert plan.settings["mode"] == "classic" and plan.settings["seed"] == 4
    assert plan.settings["transitions"] == 3  # fps / 3
    # the two halves of the song get different image types
    assert plan.look[2] != plan.look[-1]


def test_analyze_is_deterministic_and_seeded(song):
    a = ganclip.analyze(song, fps=10, seed=1)
    b = ganclip.analyze(song, fps=10, seed=1)
    c = ganclip.analyze(song, fps=10, seed=2)
    assert np.array_equal(a.z, b.z) and a.type_names == b.type_names
    assert a.type_names != c.type_names or not np.array_equal(a.z, c.z)


def test_type_names_pick_types(song):
    plan = ganclip.analyze(song, fps=10, type_names="coral reef, deep sea")
    assert plan.type_names == ("coral reef", "deep sea")


def test_a_silent_track_renders_calmly(write_wav, tmp_path):
    path = write_wav(np.zeros(22050 * 2, np.float32))
    plan = ganclip.analyze(path, fps=10, mode="classic")
    assert np.all(np.isfinite(plan.z)) and np.all(plan.z == 0) and len(set(plan.look)) == 1
    plan = ganclip.analyze(path, fps=10)  # reactive: no beats, no drift, one look
    assert len(plan.beats) == 0 and np.ptp(plan.z, axis=0).max() == 0
    assert len(set(plan.look)) == 1 and np.ptp(plan.truncation) == 0
    result = ganclip.render(path, output=tmp_path / "s.mp4", fps=10, size=16, quiet=True)
    assert probe_video(result.path)[0] == 20


def test_frames_dir_gets_one_png_per_frame(song, tmp_path):
    ganclip.render(song, output=tmp_path / "o.mp4", fps=5, size=24,
                   frames_dir=tmp_path / "frames", quiet=True)
    pngs = sorted((tmp_path / "frames").glob("*.png"))
    assert len(pngs) == 15 and pngs[0].name == "frame_000000.png"
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audio_shorter_than_a_frame_is_refused(write_wav, tmp_path):
    path = write_wav(tone(440, 0.01))
    with pytest.raises(AudioError, match="shorter than one frame"):
        ganclip.render(path, output=tmp_path / "o.mp4", fps=10, size=16, quiet=True)
    assert not (tmp_path / "o.mp4").exists()


def test_start_past_the_end_is_refused(song, tmp_path):
    with pytest.raises(BadInputError, match="--start 9"):
        ganclip.render(song, output=tmp_path / "o.mp4", start=9, quiet=True)


def test_a_failed_render_leaves_no_video_and_no_half_written_segment(write_wav, tmp_path,
                                                                     monkeypatch):
    import ganclip.generators.cppn as cppn

    real, calls = cppn.CPPN.__call__, []

    def broken_after(n):
        def call(self, z, y, truncation, **camera):
            calls.append(len(z))
            if len(calls) > n:
                raise RuntimeError("generator exploded")
            return real(self, z, y, truncation, **camera)
        return call

    song = write_wav(tone(220, 10.0))
    monkeypatch.setattr(cppn.CPPN, "__call__", broken_after(0))
    with pytest.raises(RuntimeError):
        ganclip.render(song, output=tmp_path / "o.mp4", fps=10, size=16, batch=8, quiet=True)
    # nothing was finished: no video, and no work folder to refuse the next render
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]

    calls.clear()
    monkeypatch.setattr(cppn.CPPN, "__call__", broken_after(6))  # 48 frames: one segment
    with pytest.raises(RuntimeError):
        ganclip.render(song, output=tmp_path / "o.mp4", fps=10, size=16, batch=8, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4.parts", "song.wav"]
    # kept for a resume: what was planned and the finished segment, nothing half-drawn
    assert sorted(p.name for p in (tmp_path / "o.mp4.parts").iterdir()) == [
        "plan.npz", "segment_00000.mp4", "settings.json"]


def test_a_render_probes_the_song_once(song, tmp_path, monkeypatch):
    from ganclip import audio as audio_io

    real, probed = audio_io.probe, []
    monkeypatch.setattr(audio_io, "probe", lambda path: probed.append(path) or real(path))
    ganclip.render(song, output=tmp_path / "o.mp4", fps=10, size=16, quiet=True)
    assert probed == [song]
