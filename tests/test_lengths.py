"""Any song length analyses without a traceback: a ringtone, a jingle, a drum loop, a song.

Every length from 0.5 to 16 s in steps of 0.25 s, at three tempi and with no beat, in both
modes: 504 analyses. Songs of a few seconds have too few beats for the segmentation's
recurrence graph (librosa raised ``ParameterError`` at 3.75-4 s) and are one section.
"""

import numpy as np
import pytest
import soundfile as sf
from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

import ganclip
from ganclip.errors import GanclipError
from synth import SR, drums, pad

FPS = 10  # frames per second: the frames are not what is tested, the analysis is
LENGTHS = np.arange(0.5, 16.0 + 1e-9, 0.25)  # seconds
TEMPI = (90, 120, 170)  # BPM; and one song with no beat


def beat_track(seconds: float, bpm: float) -> np.ndarray:
    """A kick on every beat from t = 0 over a quiet 220 Hz hum."""
    return drums(np.arange(0, seconds, 60 / bpm), seconds) + pad([220], seconds, amp=0.05)


def swell(seconds: float) -> np.ndarray:
    """A held A-minor chord that fades in and out: no beat at all."""
    t = np.arange(int(seconds * SR)) / SR
    return (np.sin(np.pi * t / seconds) * pad([220, 261.6, 329.6], seconds)).astype(np.float32)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """(path, seconds of audio in it) of every length × (each tempo, no beat), written once."""
    folder = tmp_path_factory.mktemp("lengths")
    out = []
    for seconds in LENGTHS:
        for bpm in (*TEMPI, None):
            path = folder / f"{bpm or 'nobeat'}_{seconds:.2f}s.wav"
            signal = swell(seconds) if bpm is None else beat_track(seconds, bpm)
            sf.write(path, signal, SR)
            out.append((path, len(signal) / SR))  # a sample short of 0.75 s: 7 frames
    return out


@pytest.mark.parametrize("mode", ["reactive", "classic"])
def test_every_length_and_tempo_analyses_or_says_why_in_one_line(songs, mode):
    escaped, wrong = [], []
    # one thread: on inputs this small, OpenMP's start-up in k-means and the recurrence
    # graph's neighbour search costs more than the work (3-5x the test's time on 2 cores)
    with threadpool_limits(limits=1):
        for path, seconds in songs:
            try:
                plan = ganclip.analyze(path, mode=mode, fps=FPS)
            except GanclipError:
                continue  # a one-line error is an answer
            except Exception as exc:  # anything else is a traceback for the user
                escaped.append(f"{path.name}: {type(exc).__name__}: {exc}")
                continue
            if len(plan) != round(seconds * FPS):
                wrong.append(f"{path.name}: {len(plan)} frames")
            if mode == "reactive" and not (len(plan.sections) >= 1 and plan.sections[0, 0] == 0
                                           and plan.sections[-1, 1] == seconds):
                wrong.append(f"{path.name}: sections {plan.sections.tolist()} do not cover it")
    assert not escaped and not wrong, (
        f"{len(escaped)} of {len(songs)} {mode} analyses raised, {len(wrong)} were wrong:\n"
        + "\n".join(escaped + wrong))
