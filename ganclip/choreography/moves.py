"""The plan's camera in the reactive mode: a push in on each hit and a drift with the
loudness, a wandering turn, a jolt sideways, a flash on the strongest hits, and the drops.

This is where the camera moves; :mod:`ganclip.camera` draws those moves for a generator
that cannot move its own.
"""

from __future__ import annotations

import numpy as np

from ganclip.choreography.signals import _envelope, _loudness
from ganclip.features import to_db
from ganclip.options import ReactiveSettings

ZOOM_PUSH = 0.07  # log-zoom of a full-strength hit at --zoom 1: a 7 % push in
ZOOM_DRIFT = 0.10  # log-zoom of the loudest passages at --zoom 1, drifting with loudness
ZOOM_SECONDS = 2.0  # inertia of that drift
ROTATE_MAX = np.deg2rad(10.0)  # the farthest the camera turns either way at --rotate 1
ROTATE_RATE = 0.08  # turning anchors passed per second at full harmonic energy
SHAKE_SIZE = 0.025  # frame heights a full-strength hit jolts the camera at --shake 1
SHAKE_DECAY = 0.08  # seconds: a jolt settles fast
FLASH_FROM = 0.7  # hits at least this strong flash, fully at strength 1
FLASH_GAIN = 0.5  # flash of a full-strength hit at --flash 1 (0..1)
FLASH_DECAY = 0.12  # seconds
DROP_DB = 6.0  # a section that starts this much louder than the seconds before it: a drop
DROP_SECONDS = 3.0  # the loudness compared on each side of a section's start
DROP_HITS = 2.0  # a drop pushes, jolts and flashes like this many full-strength hits
DROP_DECAY = 0.6  # seconds: and settles slower than a hit
DROP_SNAP = 0.25  # seconds: the hit that starts a drop is at most this far from the change


def drops(features) -> np.ndarray:
    """Times (s) of the drops: section starts where the music gets at least
    :data:`DROP_DB` louder (mean RMS over :data:`DROP_SECONDS` after against before)."""
    db = to_db(features.rms.astype(np.float64) ** 2, floor_db=-120.0)
    out = []
    for start in features.boundaries:
        before = db[(features.times >= start - DROP_SECONDS) & (features.times < start)]
        after = db[(features.times >= start) & (features.times < start + DROP_SECONDS)]
        if len(before) and len(after) and after.mean() - before.mean() >= DROP_DB:
            out.append(start)
    return np.asarray(out)


def _hit_curve(hits, at: np.ndarray, *, weight: np.ndarray,
               decay: np.ndarray | None = None) -> np.ndarray:
    """Σ weight × envelope(at - hit) over the hits, at the times ``at``: [len(at)]."""
    times, _, own = hits
    decay = own if decay is None else decay
    out = np.zeros(len(at))
    for k in np.flatnonzero(weight):  # a shake's weights are signed
        first = np.searchsorted(at, times[k])
        last = np.searchsorted(at, times[k] + 8 * decay[k])
        out[first:last] += weight[k] * _envelope(at[first:last] - times[k], decay[k])
    return out


def _with_drops(features, hits):
    """:func:`~ganclip.choreography.reactive.pulses`' hits and one more on each hit that
    starts a drop, :data:`DROP_HITS` strong and settling over :data:`DROP_DECAY`: the camera
    lunges in. A louder section that no hit starts within :data:`DROP_SNAP` (a swell) has no
    drop."""
    times, strength, decay = hits
    dropped = drops(features)
    if len(times) and len(dropped):
        nearest = times[np.abs(times[None] - dropped[:, None]).argmin(axis=1)]
        dropped = nearest[np.abs(nearest - dropped) <= DROP_SNAP]
    else:
        dropped = dropped[:0]
    extra = np.ones(len(dropped))
    return (np.concatenate([times, dropped]), np.concatenate([strength, DROP_HITS * extra]),
            np.concatenate([decay, DROP_DECAY * extra]))


def _camera(features, hits, at: np.ndarray, settings: ReactiveSettings, rng) -> dict:
    """The camera at the times ``at``: a push in on each hit and a slow drift in with the
    loudness (zoom), a turn that wanders as the harmonic energy flows (angle), a jolt
    sideways on each hit (shift) and a lift on the strongest (flash); a drop (:func:`drops`)
    counts as :data:`DROP_HITS` hits that settle over :data:`DROP_DECAY`.

    Returns
    -------
    dict of np.ndarray: zoom [T] (>= 1), angle [T] radians, shift [T, 2] frame heights,
        flash [T] in [0, 1], as :class:`~ganclip.plan.Plan` takes them
    """
    from scipy.interpolate import CubicSpline

    hits = _with_drops(features, hits)
    times, strength, _ = hits
    rate = features.sr / features.hop
    loud = _loudness(features, settings, seconds=ZOOM_SECONDS)
    push = _hit_curve(hits, at, weight=strength)
    zoom = np.exp(settings.zoom * (ZOOM_PUSH * np.minimum(push, DROP_HITS)
                                   + ZOOM_DRIFT * np.interp(at, features.times, loud)))
    flow = _loudness(features, settings, seconds=ZOOM_SECONDS, harmonic=True)
    phase = np.interp(at, features.times, np.concatenate([[0.0], np.cumsum(flow[:-1])])
                      / rate * ROTATE_RATE)
    anchors = rng.uniform(-1, 1, int(np.ceil(phase[-1] if len(phase) else 0)) + 4)
    anchors[0] = 0.0  # the song starts square to the frame
    # tanh: ±1 at the extreme anchors, without the flat tops a clip would give where the
    # spline overshoots them
    angle = settings.rotate * ROTATE_MAX * np.tanh(
        CubicSpline(np.arange(len(anchors)), anchors)(phase)) / np.tanh(1.0)
    directions = rng.standard_normal((len(times), 2))
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-9)
    short = np.full(len(times), SHAKE_DECAY)
    shift = np.stack([_hit_curve(hits, at, weight=strength * directions[:, i], decay=short)
                      for i in range(2)], 1) * settings.shake * SHAKE_SIZE
    # the strongest hits: strong among their neighbours and in the song's loud passages
    overall = np.interp(times, features.times, loud) * strength
    strong = np.clip((overall - FLASH_FROM) / (1 - FLASH_FROM), 0, 1)
    flash = np.clip(settings.flash * FLASH_GAIN * _hit_curve(
        hits, at, weight=strong, decay=np.full(len(times), FLASH_DECAY)), 0, 1)
    return dict(zoom=zoom.astype(np.float32), angle=angle.astype(np.float32),
                shift=shift.astype(np.float32), flash=flash.astype(np.float32))
