"""Numbers over time that every mode shares: smoothing, scaling, loudness, a hit's envelope.

Rows are feature rows (a spectrum per frame in classic mode, one every hop of the song in the
reactive mode); time constants are in seconds where the rate is known, in rows where not.
"""

from __future__ import annotations

import numpy as np

from ganclip.features import to_db
from ganclip.options import ReactiveSettings

ATTACK = 0.005  # seconds for a pulse to rise: the jolt lands on the frame of its hit
SILENCE_DB = -50.0  # dBFS: the loudest a song's "loud" reference may be taken to be


def ema(x: np.ndarray, *, span: float) -> np.ndarray:
    """Exponential moving average along axis 0, ``alpha = 2 / (span + 1)``.

    Starts at the first row (no warm-up from zero), like pandas' ``ewm(span,
    adjust=False)``. ``span <= 1`` returns ``x`` unchanged.
    """
    import scipy.signal

    if span <= 1 or len(x) == 0:
        return x.astype(np.float32)
    alpha = 2.0 / (span + 1.0)
    zi = (1.0 - alpha) * x[:1]
    out, _ = scipy.signal.lfilter([alpha], [1.0, alpha - 1.0], x, axis=0, zi=zi)
    return out.astype(np.float32)


def normalise_bands(x: np.ndarray) -> np.ndarray:
    """Scale each column to [-1, 1] over time; a constant column becomes 0 (silence is calm)."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = hi - lo
    out = np.zeros_like(x, dtype=np.float32)
    live = span > 1e-6
    out[:, live] = 2.0 * (x[:, live] - lo[live]) / span[live] - 1.0
    return out


def _smooth(x: np.ndarray, *, seconds: float, rate: float) -> np.ndarray:
    """:func:`ema` along the last axis with a time constant in seconds (rows at ``rate`` Hz)."""
    if seconds <= 0:
        return x.astype(np.float32)
    alpha = 1.0 - np.exp(-1.0 / (seconds * rate))  # = 2 / (span + 1)
    return np.moveaxis(ema(np.moveaxis(x, -1, 0), span=2.0 / alpha - 1.0), 0, -1)


def _level(power: np.ndarray, *, sensitivity: float, top_db: float = 30.0) -> np.ndarray:
    """Waveform power (RMS²) → 0..1: 1 at the song's loud passages (95th percentile), 0 at
    ``top_db / sensitivity`` below them. The reference is never below -50 dBFS, so silence
    and near-silence stay at 0 instead of being stretched up to full scale."""
    db = to_db(power, floor_db=-120.0)
    ref = max(float(np.percentile(db, 95)) if len(db) else 0.0, SILENCE_DB)
    return np.clip(1 + (db - ref) * sensitivity / top_db, 0, 1).astype(np.float32)


def _loudness(features, settings: ReactiveSettings, *, seconds: float,
              harmonic: bool = False) -> np.ndarray:
    """The song's loudness per feature row, 0..1 (:func:`_level`), smoothed over
    ``seconds``; with ``harmonic`` only its harmonic share: sustained sound, not drums."""
    power = features.rms ** 2
    if harmonic:
        power = power * (features.harmonic
                         / np.maximum(features.harmonic + features.percussive, 1e-20))
    return _smooth(_level(power, sensitivity=settings.sensitivity), seconds=seconds,
                   rate=features.sr / features.hop)


def _envelope(tau: np.ndarray, decay) -> np.ndarray:
    """A pulse's shape ``tau`` seconds after its hit: a 5 ms rise, then exponential decay."""
    return np.where(tau >= 0, np.minimum(np.maximum(tau, 0) / ATTACK, 1.0)
                    * np.exp(-np.maximum(tau, 0) / decay), 0.0)
