"""Synthetic signals whose truth is known: tones, chords, drum hits on given times.

Used by the tests and by ``benchmarks/sync.py`` (which puts the checkout's root on
``sys.path`` and imports ``tests.synth``), so a benchmark's tracks and a test's are made alike.
Signals are float32 unless said otherwise; times are in seconds.
"""

from __future__ import annotations

import numpy as np

SR = 22050  # Hz, the rate of the analysis, and so of most synthetic songs


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.3, *,
         channels: int | None = None, onset: float = 0.0, end: float | None = None
         ) -> np.ndarray:
    """A sine at ``freq`` Hz, silent before ``onset`` and from ``end`` seconds on.

    Returns
    -------
    x : np.ndarray [shape=(round(seconds * sr),)], or [shape=(channels, round(seconds * sr))]
        with ``channels``, every channel the same
    """
    t = np.arange(int(round(seconds * sr))) / sr
    y = amp * np.sin(2 * np.pi * freq * t)
    if onset or end is not None:
        y = np.where((t >= onset) & (t < (seconds if end is None else end)), y, 0.0)
    if channels is not None:
        y = np.repeat(y[None], channels, axis=0)
    return y.astype(np.float32)


def pad(freqs, seconds: float, *, sr: int = SR, amp: float = 0.1) -> np.ndarray:
    """A held chord: a sine of ``amp`` at each of ``freqs`` Hz."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * sum(np.sin(2 * np.pi * f * t) for f in freqs)).astype(np.float32)


def place(out: np.ndarray, times, sound: np.ndarray, *, sr: int = SR) -> np.ndarray:
    """Add ``sound`` into ``out`` at each of ``times`` (cut at the end); returns ``out``."""
    for x in times:
        i = int(round(x * sr))
        n = min(len(sound), len(out) - i)
        if n > 0:
            out[i:i + n] += sound[:n]
    return out


def thump(sr: int = SR) -> np.ndarray:
    """A kick-like hit: a decaying 60 Hz thump with a short noise click, 0.15 s."""
    t = np.arange(int(0.15 * sr)) / sr
    click = np.random.default_rng(0).standard_normal(len(t)) * np.exp(-t / 0.004)
    return (0.8 * np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.05) + 0.3 * click).astype(
        np.float32)


def kick(sr: int = SR) -> np.ndarray:
    """A drum-kit kick: a sine falling from 110 to 50 Hz, 0.2 s (float64)."""
    t = np.arange(int(0.2 * sr)) / sr
    return 0.9 * np.sin(2 * np.pi * (50 + 60 * np.exp(-t / 0.02)) * t) * np.exp(-t / 0.08)


def burst(rng: np.random.Generator, *, amp: float, decay: float, sr: int = SR) -> np.ndarray:
    """0.2 s of noise decaying over ``decay`` seconds (float64): a snare, or a hi-hat when
    short and quiet."""
    t = np.arange(int(0.2 * sr)) / sr
    return amp * rng.standard_normal(len(t)) * np.exp(-t / decay)


def drums(beats, seconds: float, *, sr: int = SR) -> np.ndarray:
    """A :func:`thump` on every beat."""
    return place(np.zeros(int(seconds * sr), np.float32), beats, thump(sr), sr=sr)


def snares(times, seconds: float, *, amp: float = 0.5, decay: float = 0.05,
           sr: int = SR) -> np.ndarray:
    """The same noise :func:`burst` at each of ``times``."""
    hit = burst(np.random.default_rng(1), amp=amp, decay=decay, sr=sr).astype(np.float32)
    return place(np.zeros(int(seconds * sr), np.float32), times, hit, sr=sr)


def groove(beats: np.ndarray, seconds: float, *, swing: float = 0.5, seed: int = 0,
           bright: bool = False, sr: int = SR) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, hats on the 8ths (the off-beat one at ``swing``
    of the beat: 0.5 straight, 0.67 swung), a bass note per beat (55 Hz, or 880 Hz when
    ``bright``). Float64."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr))
    gaps = np.diff(np.append(beats, beats[-1] + (beats[-1] - beats[-2])))
    place(out, beats[0::2], kick(sr), sr=sr)
    place(out, beats[1::2], burst(rng, amp=0.5, decay=0.05, sr=sr), sr=sr)
    place(out, np.concatenate([beats, beats + swing * gaps]),
          burst(rng, amp=0.15, decay=0.01, sr=sr), sr=sr)
    t = np.arange(int(0.3 * sr)) / sr
    place(out, beats, 0.25 * np.sin(2 * np.pi * (880 if bright else 55) * t) * np.exp(-t / 0.15),
          sr=sr)
    return out


def _note(freqs, *, attack: float, release: float, glide: float = 1.0,
          sr: int = SR) -> np.ndarray:
    """Partials at ``freqs`` Hz (each half as loud as the one before) that rise over
    ``attack`` seconds and fade over ``release``, their pitch gliding by the factor ``glide``
    over the note (float64, ``attack + 4 × release`` seconds)."""
    t = np.arange(int((attack + 4 * release) * sr)) / sr
    bend = glide ** (t / t[-1])  # pitch factor at each sample
    env = np.minimum(t / attack, 1.0) * np.exp(-np.maximum(t - attack, 0) / release)
    env *= np.minimum(1.0, 5 * (1 - t / t[-1]))  # to zero at the end: a cut would click
    return env * sum(0.5 ** k * np.sin(2 * np.pi * np.cumsum(f * bend) / sr)
                     for k, f in enumerate(freqs))


def swells(times, seconds: float, *, amp: float = 0.3, attack: float = 0.05,
           sr: int = SR) -> np.ndarray:
    """A tonal note at each of ``times``, a different pitch each (a pentatonic walk from
    A3), rising over ``attack`` seconds and fading over ~1 s, some gliding up or down a
    fifth: calls over a drone, with no percussion and no beat. The note starts at its time."""
    out = np.zeros(int(seconds * sr))
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    for k, x in enumerate(times):
        f = scale[(3 * k) % len(scale)]
        glide = (1.0, 1.5, 1 / 1.5)[k % 3]
        place(out, [x], amp * _note([f, 2 * f], attack=attack, release=0.35, glide=glide,
                                     sr=sr), sr=sr)
    return out.astype(np.float32)


def chords(times, seconds: float, *, amp: float = 0.15, sr: int = SR) -> np.ndarray:
    """A struck chord (piano-like: a 10 ms attack, a 0.5 s decay) at each of ``times``, the
    chords of a I-vi-IV-V round in C in turn: a rubato accompaniment when the times are
    irregular."""
    out = np.zeros(int(seconds * sr))
    rounds = ([261.6, 329.6, 392.0], [220.0, 261.6, 329.6], [174.6, 220.0, 261.6],
              [196.0, 246.9, 293.7])
    for k, x in enumerate(times):
        chord = sum(_note([f, 2 * f, 3 * f], attack=0.01, release=0.5, sr=sr)
                    for f in rounds[k % 4])
        place(out, [x], amp * chord, sr=sr)
    return out.astype(np.float32)
