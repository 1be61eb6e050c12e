"""The reactive mode: features with known answers, the choreography, plans, ``analyze``."""

import numpy as np
import pytest

import ganclip
from ganclip import audio as audio_io
from ganclip.choreography import Plan, ReactiveSettings, reactive_plan
from ganclip.errors import BadInputError
from ganclip.features import song_features
from ganclip.imagetypes import BUILTIN_TYPES
from ganclip.analysis import analysis_figure
from synth import SR, drums, pad, snares


def f_measure(truth, found, window: float = 0.07) -> float:
    """mir_eval's beat F-measure: one-to-one matches within ``window`` seconds."""
    import mir_eval

    return mir_eval.beat.f_measure(np.asarray(truth), np.asarray(found), f_measure_threshold=window)


def features_of(signal):
    return song_features([signal], sr=SR)


def test_click_track_tempo_and_beats():
    truth = np.arange(0.5, 20, 0.5)  # 120 BPM
    f = features_of(drums(truth, 20.0) + pad([220], 20.0, amp=0.02))
    assert abs(f.tempo - 120) / 120 < 0.02
    assert f_measure(truth, f.beats) >= 0.95
    near = np.abs(f.beats[:, None] - truth[None, :]).min(axis=1)
    assert np.all(near < 0.07)


def test_beats_follow_a_tempo_change():
    first = np.arange(0.5, 15, 60 / 100)
    truth = np.concatenate([first, np.arange(first[-1] + 60 / 140, 30, 60 / 140)])
    f = features_of(drums(truth, 30.0))
    assert f_measure(truth, f.beats) >= 0.9


def test_a_fast_kick_snare_groove_is_not_tracked_at_half_tempo():
    truth = np.arange(0.5, 20, 60 / 170)  # kick on 1 and 3, snare on 2 and 4, 170 BPM
    f = features_of(drums(truth[0::2], 20.0) + snares(truth[1::2], 20.0)
                    + pad([110], 20.0, amp=0.03))
    assert abs(f.tempo - 170) / 170 < 0.02
    assert f_measure(truth, f.beats) >= 0.9


def test_pulses_follow_the_loudness_of_the_hits():
    """Kicks jolt fully, hats 20 dB quieter hardly at all, beats in silence not at all."""
    from ganclip.choreography import pulses

    kicks = np.arange(0.5, 16, 0.5)
    hats = kicks[:-1] + 0.25
    signal = drums(kicks, 20.0) + snares(hats, 20.0, amp=0.05, decay=0.01)
    f = features_of(signal)
    times, strength, _ = pulses(f)
    at = lambda grid: strength[np.abs(times[:, None] - grid[None, :]).min(axis=1) < 0.05]  # noqa
    assert np.median(at(kicks)) > 0.9
    assert np.all(at(hats) < 0.3)
    assert np.all(strength[times > 16.5] < 0.05)


def test_a_silent_tail_is_not_a_section_of_its_own():
    truth = np.arange(0.5, 24, 0.5)
    signal = np.concatenate([drums(truth, 24.0) + pad([220, 330], 24.0),
                             np.zeros(8 * SR, np.float32)])
    f = features_of(signal)
    assert len(f.sections) == 1 and f.beats[-1] < 24.1


def abab(section: float = 8.0):
    """A-B-A-B: A is drums under a low chord, B a bright chord with faster hats; 120 BPM."""
    beats = np.arange(0, 4 * section, 0.5)
    parts = []
    for k in range(4):
        local = beats[(beats >= k * section) & (beats < (k + 1) * section)] - k * section
        if k % 2 == 0:
            parts.append(drums(local, section) + pad([110, 165, 220], section))
        else:
            hats = np.arange(0, section, 0.25)
            noise = np.random.default_rng(k).standard_normal(int(section * SR)) * 0.02
            parts.append(0.5 * drums(local, section) + pad([880, 1320, 1760], section)
                         + drums(hats, section) * 0.2 + noise.astype(np.float32))
    return np.concatenate(parts), beats


def test_sections_of_an_abab_song_are_found_and_labelled_alike():
    signal, beats = abab()
    f = features_of(signal)
    assert len(f.sections) == 4
    assert np.allclose(f.boundaries, [8, 16, 24], atol=0.51)  # within one beat
    assert list(f.section_labels) == [0, 1, 0, 1]
    assert np.all(np.isin(f.boundaries, f.beats))  # sections start on a beat


def test_silence_has_no_beats_and_one_section():
    f = features_of(np.zeros(SR * 5, np.float32))
    assert len(f.beats) == 0 and f.tempo == 0 and len(f.sections) == 1


def test_streamed_features_equal_one_block():
    signal, _ = abab(4.0)
    whole = features_of(signal)
    blocks = song_features(np.array_split(signal, 37), sr=SR)
    assert np.allclose(whole.mel, blocks.mel, rtol=1e-4, atol=1e-6)
    assert np.array_equal(whole.beats, blocks.beats)


def plan_of(signal, *, fps, transitions=0, **knobs):
    f = features_of(signal)
    n = int(round(len(signal) / SR * fps))
    return reactive_plan(f, fps=fps, n_frames=n, image_types=BUILTIN_TYPES[:4],
                         transitions=transitions, settings=ReactiveSettings(**knobs), seed=3)


def test_pulses_land_on_the_beats_and_settle_between():
    truth = np.arange(0.5, 12, 0.5)
    plan = plan_of(drums(truth, 12.0), fps=30, motion=0)
    step = np.linalg.norm(np.diff(plan.z, axis=0), axis=1)  # change into frame i + 1
    jolts = np.flatnonzero(step > 0.25 * step.max()) + 1
    assert f_measure(truth, plan.times[jolts], window=1 / 30 + 1e-6) >= 0.9
    # halfway between beats the picture has nearly stopped
    quiet = step[np.round((truth[:-1] + 0.25) * 30).astype(int)]
    assert quiet.max() < 0.2 * step.max()


def test_the_trajectory_is_defined_in_seconds_not_frames():
    signal, _ = abab(4.0)
    slow, fast = plan_of(signal, fps=10), plan_of(signal, fps=30)
    # frame i at 10 fps ends at the same instant as frame 3i + 2 at 30 fps
    assert np.allclose(slow.z, fast.z[2::3][:len(slow)], atol=1e-4)
    assert np.array_equal(slow.look, fast.look[2::3][:len(slow)])


def test_quiet_passages_move_less_than_loud_ones():
    loud, quiet = pad([220, 330, 440], 6.0, amp=0.2), pad([220, 330, 440], 6.0, amp=0.004)
    plan = plan_of(np.concatenate([loud, quiet]), fps=20, pulse=0)
    step = np.linalg.norm(np.diff(plan.z, axis=0), axis=1)
    assert step[130:].mean() < 0.2 * step[20:110].mean()
    assert plan.truncation[130:].mean() < plan.truncation[20:110].mean()  # calm is cleaner


def test_section_changes_fall_on_a_beat_and_returning_sections_look_the_same():
    signal, _ = abab()
    plan = plan_of(signal, fps=10, transitions=5)
    changes = np.flatnonzero(np.diff(plan.look)) + 1
    assert np.allclose(plan.times[changes], [8, 16, 24], atol=0.51)
    for c in changes:  # the blend starts at the change and takes 5 frames
        assert 0 < plan.mix[c, plan.look[c]] < 1 and plan.mix[c + 4, plan.look[c]] == 1
    a, b = plan.look[40], plan.look[120]
    assert plan.look[200] == a and plan.look[280] == b and a != b


def test_chroma_classes_follow_the_pitch():
    note_a = pad([440, 880], 6.0, amp=0.2)
    f = features_of(note_a)
    plan = reactive_plan(f, fps=10, n_frames=60, image_types=BUILTIN_TYPES[:12],
                         transitions=0, settings=ReactiveSettings(classes_from="chroma"))
    assert plan.mix.shape == (60, 12) and np.allclose(plan.mix.sum(axis=1), 1, atol=1e-5)
    assert np.all(plan.look[5:] == 9)  # pitch class A


def test_plan_round_trip_keeps_the_feature_times(tmp_path):
    signal, _ = abab(4.0)
    plan = plan_of(signal, fps=12)
    back = Plan.load(plan.save(tmp_path / "p.npz"))
    for name in ("times", "z", "mix", "classes", "truncation", "look", "beats", "sections",
                 "section_labels"):
        assert np.array_equal(getattr(plan, name), getattr(back, name)), name
    assert back.settings == plan.settings and back.type_names == plan.type_names
    assert len(back.beats) > 10 and back.sections[-1, 1] == pytest.approx(16.0, abs=0.01)


def test_a_version_1_plan_still_loads(tmp_path):
    plan = plan_of(pad([220], 2.0), fps=5)
    np.savez(tmp_path / "old.npz", version=1, fps=plan.fps, times=plan.times, z=plan.z,
             mix=plan.mix, classes=plan.classes, truncation=plan.truncation, type=plan.look,
             type_names=np.array(plan.type_names), settings="{}")
    old = Plan.load(tmp_path / "old.npz")
    assert np.array_equal(old.z, plan.z) and len(old.beats) == 0


@pytest.mark.parametrize("break_it, message", [
    (lambda p: setattr(p, "z", p.z[:-1]), "z"),
    (lambda p: p.truncation.__setitem__(0, np.nan), "NaN"),
    (lambda p: p.truncation.__setitem__(0, 2.0), r"truncation outside \(0, 1\]"),
])
def test_a_damaged_plan_is_refused(tmp_path, break_it, message):
    plan = plan_of(pad([220], 2.0), fps=5)
    break_it(plan)
    plan.save(tmp_path / "bad.npz")
    with pytest.raises(BadInputError, match=message):
        Plan.load(tmp_path / "bad.npz")


def test_render_from_a_saved_plan(write_wav, tmp_path):
    from tests.conftest import probe_video

    path = write_wav(abab(2.0)[0])
    plan = ganclip.analyze(path, fps=8, seed=5)
    plan.save(tmp_path / "p.npz")
    result = ganclip.render(path, output=tmp_path / "o.mp4", size=16, fps=30,
                            plan_in=tmp_path / "p.npz", quiet=True)
    frames, video_s, _, _ = probe_video(result.path)
    assert frames == len(plan) and result.fps == 8  # the plan's frame rate, not --fps
    short = write_wav(pad([220], 2.0), name="short.wav")
    with pytest.raises(BadInputError, match="another song"):
        ganclip.render(short, output=tmp_path / "x.mp4", plan_in=tmp_path / "p.npz",
                       quiet=True)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("options, message", [
    (dict(truncation_range="a,b"), "--truncation-range"),
    (dict(truncation_range=(0.9, 0.5)), "HI"),
    (dict(pulse=-1), "--pulse"),
    (dict(sensitivity=0), "--sensitivity"),
    (dict(classes_from="moods"), "--classes-from"),
    (dict(classes_from="chroma", types=6), "12 image types"),
    (dict(mode="dance"), "--mode"),
])
def test_bad_reactive_options_are_refused(song, options, message):
    with pytest.raises(BadInputError, match=message):
        ganclip.analyze(song, fps=10, **options)


def test_analysis_figure_is_written_and_describes_the_song(write_wav, tmp_path):
    path = write_wav(abab()[0])
    figure, lines = analysis_figure(path, output=tmp_path / "a.png", seed=1)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(figure).shape
    assert width > 1000 and height > 800
    assert lines[0].startswith("tempo 120") or lines[0].startswith("tempo 119")
    assert "4 sections" in lines[1] and lines[2].split()[-1] == lines[4].split()[-1]
    with pytest.raises(BadInputError, match="-o"):
        analysis_figure(path, output=tmp_path / "a.txt")


def test_vibe_ace_sections_are_its_audible_changes(shared_audio):
    """Looked at on its spectrogram: high cymbals enter at ~7.9 s, the chords start moving
    at ~15.3 s, the cymbals stop at ~44.3 s; the fade-out tail is no section of its own."""
    signal = audio_io.load_audio(shared_audio / "vibe_ace.ogg", sr=SR)
    f = features_of(signal)
    assert len(f.boundaries) == 3
    assert np.allclose(f.boundaries, [7.9, 15.3, 44.3], atol=1.0)


def test_choice_drum_bass_pulses_on_its_beats(shared_audio):
    signal = audio_io.load_audio(shared_audio / "choice_drum_bass.ogg", sr=SR)
    f = features_of(signal)
    n = int(len(signal) / SR * 30)
    plan = reactive_plan(f, fps=30, n_frames=n, image_types=BUILTIN_TYPES[:4], transitions=0,
                         settings=ReactiveSettings(motion=0), seed=3)
    step = np.linalg.norm(np.diff(plan.z, axis=0), axis=1)
    jolts = plan.times[np.flatnonzero(step > 0.25 * step.max()) + 1]
    near = np.abs(jolts[:, None] - f.beats[None, :]).min(axis=1)
    assert len(jolts) >= 0.4 * len(f.beats)  # the kicks and snares, half the 136 BPM beats
    assert np.mean(near <= 1 / 30 + 0.025) >= 0.9  # and on the beats
