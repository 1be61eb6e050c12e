"""Any song length analyses without a traceback: a ringtone, a jingle, a drum loop, a song."""

import numpy as np
import pytest
import soundfile as sf

import ganclip
from ganclip.errors import GanclipError

SR = 22050
LENGTHS = np.arange(0.5, 16.0 + 1e-9, 0.25)  # seconds
TEMPI = (90, 120, 170)  # BPM; and one song with no beat


def kick_loop(seconds: float, bpm: float) -> np.ndarray:
    """A decaying 60 Hz kick on every beat over a quiet 220 Hz hum."""
    t = np.arange(int(round(seconds * SR))) / SR
    x = 0.05 * np.sin(2 * np.pi * 220 * t)
    hit = np.exp(-np.arange(2000) / 300) * np.sin(2 * np.pi * 60 * np.arange(2000) / SR)
    for beat in np.arange(0, seconds, 60 / bpm):
        i = int(beat * SR)
        n = min(len(x) - i, len(hit))
        x[i:i + n] += 0.8 * hit[:n]
    return x.astype(np.float32)


def swell(seconds: float) -> np.ndarray:
    """A chord that fades in and out: no beat at all."""
    t = np.arange(int(round(seconds * SR))) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220, 277.2, 329.6)) / 3
    return (0.4 * np.sin(np.pi * t / seconds) * chord).astype(np.float32)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lengths")
    paths = []
    for seconds in LENGTHS:
        for bpm in (*TEMPI, None):
            path = folder / f"{bpm or 'none'}_{seconds:.2f}.wav"
            sf.write(path, swell(seconds) if bpm is None else kick_loop(seconds, bpm), SR)
            paths.append(path)
    return paths


@pytest.mark.parametrize("mode", ["reactive", "classic"])
def test_every_length_and_tempo_analyses_or_says_why_in_one_line(songs, mode):
    escaped = []
    for path in songs:
        try:
            plan = ganclip.analyze(path, mode=mode, fps=10)
        except GanclipError:
            continue  # a one-line error is an answer
        except Exception as exc:  # anything else would be a traceback for the user
            escaped.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        seconds = float(path.stem.split("_")[1])
        assert len(plan) == round(seconds * 10), path.name
        assert len(plan.sections) >= 1 and plan.sections[-1, 1] >= seconds - 0.5 or \
            mode == "classic", path.name
    assert not escaped, f"{len(escaped)} of {len(songs)} analyses raised:\n" + "\n".join(
        escaped[:10])
