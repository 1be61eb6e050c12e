"""Music without a steady beat: no tempo, no beats, and the picture moves on its events."""

import numpy as np
import pytest

import ganclip
from ganclip.choreography import Plan, pulses
from ganclip.features import STEADY_CONFIDENCE, song_features
from synth import SR, chords, groove, pad, swells

CALLS = np.array([0.5, 2.3, 3.1, 5.6, 6.5, 8.9, 10.2, 11.0])  # seconds, no two gaps alike


def calls(seconds: float = 12.0, times=CALLS) -> np.ndarray:
    """Gliding calls at irregular times over a low drone: nothing periodic."""
    return swells(times, seconds) + pad([110, 165], seconds, amp=0.05)


def nearest(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Distance in seconds from each of ``found`` to the nearest of ``truth``."""
    return np.abs(np.asarray(found)[:, None] - np.asarray(truth)[None, :]).min(axis=1)


def test_calls_over_a_drone_have_no_steady_beat_and_their_events_are_found():
    f = song_features([calls()], sr=SR)
    assert not f.steady and f.tempo_confidence < STEADY_CONFIDENCE
    assert f.tempo == 0.0 and len(f.beats) == 0 and len(f.beat_labels) == 0
    assert len(f.sections) >= 1 and f.sections[0, 0] == 0 and f.sections[-1, 1] == f.duration
    assert len(f.events) == len(CALLS) and np.all(nearest(f.events, CALLS) < 0.05)
    assert f.event_level.shape == f.times.shape
    times, strength, decay = pulses(f)
    assert np.array_equal(times, f.events) and np.all(strength > 0.5)
    assert np.all((decay >= 0.25) & (decay <= 0.4))


def test_rubato_chords_have_no_steady_beat():
    rubato = np.array([0.5, 1.2, 3.5, 4.4, 6.1, 6.8, 9.2, 10.3, 12.0, 13.1])
    f = song_features([chords(rubato, 14.0)], sr=SR)
    assert not f.steady and len(f.beats) == 0
    assert len(f.events) == len(rubato) and np.all(nearest(f.events, rubato) < 0.05)


def test_a_drum_groove_is_steady_and_keeps_its_beats():
    import mir_eval

    truth = np.arange(0.25, 16, 0.5)  # 120 BPM
    f = song_features([groove(truth, 16.0) + pad([110, 165], 16.0, amp=0.06)], sr=SR)
    assert f.steady and f.tempo_confidence > 0.8
    assert abs(f.tempo - 120) / 120 < 0.02
    assert mir_eval.beat.f_measure(truth, f.beats, f_measure_threshold=0.07) >= 0.95
    assert len(f.events) >= len(truth)  # the hits are events too


def test_a_beatless_render_jolts_on_the_events_and_nowhere_else(write_wav, tmp_path):
    import av
    from scipy.signal import find_peaks

    seconds, fps = 8.0, 30
    times = CALLS[CALLS < seconds - 1]
    path = write_wav(calls(seconds, times))
    ganclip.render(path, output=tmp_path / "v.mp4", model="cppn", size=64, fps=fps,
                   plan_out=tmp_path / "p.npz", quiet=True)
    assert len(Plan.load(tmp_path / "p.npz").beats) == 0
    with av.open(str(tmp_path / "v.mp4")) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    change = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    # as benchmarks/sync.py finds them: 30 % of the way from the median change to its top
    floor, top = np.median(change), np.percentile(change, 99)
    peaks, _ = find_peaks(change, height=floor + 0.3 * (top - floor), distance=3)
    jolts = (peaks + 1) / fps  # the change into frame i + 1
    assert np.all(nearest(jolts, times) <= 0.1)  # no jolt where nothing happens
    assert np.all(nearest(times, jolts) <= 0.1)  # and one at every call


@pytest.mark.parametrize("name", ["vibe_ace.ogg", "choice_drum_bass.ogg"])
def test_recordings_with_drums_stay_steady(shared_audio, name):
    from ganclip import audio as audio_io

    f = song_features([audio_io.load_audio(shared_audio / name, sr=SR)], sr=SR)
    assert f.steady and len(f.beats) > 50
