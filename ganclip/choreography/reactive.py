"""The reactive mode: beats pulse, loudness moves, sections choose the look.

:func:`reactive_plan` puts together the hits (:func:`pulses`), the drift and the pulses in z,
the looks per section, the camera (:mod:`~ganclip.choreography.moves`) and the style drives
(:mod:`~ganclip.choreography.drive`).
"""

from __future__ import annotations

import numpy as np

from ganclip.choreography.moves import _camera
from ganclip.choreography.drive import style_drive
from ganclip.choreography.mixing import _palettes, transition_mix, type_arrays
from ganclip.choreography.signals import _envelope, _loudness, _smooth, normalise_bands
from ganclip.features import to_db
from ganclip.options import ReactiveSettings
from ganclip.plan import Z_LIMIT, Plan

OFFBEAT = 0.15  # a percussive onset off the beat pulses this much of a beat
PULSE_RANGE_DB = 20.0  # a hit this far below the loud beats around it does not pulse
QUIET_SECTION_DB = 12.0  # a section up to this much quieter than the song still jolts fully
DRIFT_RATE = 0.35  # drift anchors passed per second at full loudness and motion 1
BAND_GAIN = 0.35  # weight of the spectrum's bands in z at full loudness and motion 1
FRAME_CHUNK = 4096  # frames per piece of the per-frame arithmetic (bounded temporaries)


def pulses(features, *, sensitivity: float = 1.0):
    """Hit times, strengths and decays: every beat, and percussive onsets off the beat; or,
    in music without a steady beat (``features.steady`` false), every event.

    A hit's strength follows its loudness: the percussive energy's peak at the hit
    (:func:`~ganclip.features.hit_level`), in dB below the loud beats around it (the 90th
    percentile of the 17 beats centred on it, at most :data:`QUIET_SECTION_DB` below the whole
    song's), 1 at that level and 0 at :data:`PULSE_RANGE_DB` ``/ sensitivity`` below it.
    A beat on a quiet hi-hat jolts a little, one on the kick or the snare fully, and a beat
    the tracker places in silence not at all. Without a beat the events (onsets of any kind:
    a note, a chord, a call) take the beats' place and the whole sound's loudness
    (``event_level``) the percussive part's: a loud call jolts fully, a faint one a little,
    and nothing jolts between them.

    Returns
    -------
    times : np.ndarray [shape=(k,)], seconds
    strength : np.ndarray [shape=(k,)], 0..1; a beat as loud as the song's loud beats is 1
    decay : np.ndarray [shape=(k,)], seconds: half the local beat interval, so a pulse has
        settled to e⁻² = 13 % one beat later; without a beat half the gap to the next
        event, from 0.25 to 0.4 s
    """
    from ganclip.features import hit_level

    steady = features.steady
    # the hits that set the loudness reference: the beats, or the events without a beat
    beats, onsets = (features.beats, features.onsets) if steady else (features.events,
                                                                        np.zeros(0))
    if len(beats) and len(onsets):  # onsets farther than 70 ms from the nearest beat
        after = np.clip(np.searchsorted(beats, onsets), 1, len(beats) - 1) if len(beats) > 1 \
            else np.zeros(len(onsets), int)
        near = np.minimum(np.abs(onsets - beats[after]), np.abs(onsets - beats[after - 1]))
        onsets = onsets[near > 0.07]
    times = np.concatenate([beats, onsets])
    if len(features.percussive) == 0 or len(times) == 0:
        return times, np.zeros(len(times), np.float32), np.full(len(times), 0.25, np.float32)
    level = hit_level(features.percussive) if steady else features.event_level
    rows = np.arange(len(level))
    db = np.interp(times * features.sr / features.hop, rows, level)
    if len(beats):
        # the loud beats around each hit (±8 beats), so a quieter section's beats still jolt;
        # but at most QUIET_SECTION_DB below the whole song's, so near-silence does not
        around = np.lib.stride_tricks.sliding_window_view(
            np.pad(db[:len(beats)], 8, mode="edge"), 17)
        loud = np.interp(times, beats, np.percentile(around, 90, axis=1))
        loud = np.maximum(loud, np.percentile(db[:len(beats)], 90) - QUIET_SECTION_DB)
    else:
        loud = db.max()
    # beats the tracker put in near-silence are no reference: silence must not jolt
    loud = np.maximum(loud, float(level.max()) - 2 * PULSE_RANGE_DB)
    strength = np.clip(1 + (db - loud) * sensitivity / PULSE_RANGE_DB, 0, 1)
    strength[len(beats):] *= OFFBEAT
    if not steady:  # events are sorted; the last one settles as slowly as any
        gaps = np.append(np.diff(times), np.inf)
        return times, strength.astype(np.float32), np.clip(gaps / 2, 0.25, 0.4).astype(
            np.float32)
    interval = 60.0 / features.tempo if features.tempo > 0 else 0.5
    if len(beats) > 1:
        gaps = np.diff(beats)
        local = np.interp(times, beats[:-1] + gaps / 2, gaps)
    else:
        local = np.full(len(times), interval)
    order = np.argsort(times)
    return times[order], strength[order].astype(np.float32), (local[order] / 2).astype(
        np.float32)


def reactive_plan(features, *, fps: float, n_frames: int, image_types, transitions: int,
                  settings: ReactiveSettings = ReactiveSettings(), seed: int = 0,
                  dim_z: int = 128, n_classes: int = 1000,
                  anchors: np.ndarray | None = None) -> Plan:
    """Beat pulses, loudness-driven drift, and an image type per section (or chroma mix).

    Everything is a function of time in seconds, sampled at the end of each frame's slice
    of audio, so the same song follows the same path at any frame rate.

    - **motion** (:func:`_drift`): z drifts along a smooth seeded path (a cubic spline
      through random anchors); its speed follows the smoothed harmonic energy, so quiet
      passages nearly stop. The harmonic mel bands, normalised per band, add GAN_PI-2's
      spectrum-to-latent mapping, also scaled by loudness.
    - **pulse** (:func:`_pulse`): each beat (and, weaker, each percussive onset off the
      beat) adds ``pulse × strength × envelope(t - hit) × d`` to z, ``d`` a seeded random
      direction: a 5 ms rise and a decay of half a beat interval.
    - **looks** (:func:`_looks`): each section label gets an image type (label mod the
      number of types), changing on the section's first beat, with ``transitions`` frames
      of blending from there; or, with ``classes_from="chroma"``, the 12 pitch classes
      weight 12 types.
    - **truncation**: the image type's truncation × a factor from ``truncation_range``
      that follows the RMS loudness: calm is cleaner, loud is wilder.

    Parameters
    ----------
    features : SongFeatures, of the audio the video covers (time 0 = the first frame)
    fps : float; n_frames : int, video frames
    image_types : sequence of ImageType; settings : ReactiveSettings
    transitions : int >= 0, frames of blending at each section change
    seed : int, fixes pulse directions and the drift path
    dim_z, n_classes : int, the generator's latent width and class count
    anchors : np.ndarray [shape=(N, num_ws, w_dim)] or None, the image types' looks in a
        style-based generator's W space; then the types' base latents stay out of ``z``
        (the generator blends the anchors in W) and the plan keeps them

    Returns
    -------
    Plan, with ``beats``, ``sections`` and the style drives
    (:func:`~ganclip.choreography.drive.style_drive`) recorded
    """
    rng = np.random.default_rng(seed)
    # a frame shows what was heard up to the end of its slice of audio: a hit inside the
    # slice is on that frame (the beat tracker's times lag the sound by ~a 23 ms row)
    at = (np.arange(n_frames) + 1.0) / fps
    hits = pulses(features, sensitivity=settings.sensitivity)
    z = _drift(features, at, settings, rng, dim_z)
    _pulse(z, hits, at, settings, rng)
    # the camera's own generator, so the picture's path is the same with or without it
    camera = _camera(features, hits, at, settings, np.random.default_rng([seed, 1]))
    mix, labels = _looks(features, at, settings, n_types=len(image_types),
                         transitions=transitions)
    base, classes, truncs = type_arrays(image_types, dim_z=dim_z, n_classes=n_classes)
    for a in range(0, n_frames if anchors is None else 0, FRAME_CHUNK):
        z[a:a + FRAME_CHUNK] += mix[a:a + FRAME_CHUNK] @ base
    np.clip(z, -Z_LIMIT, Z_LIMIT, out=z)
    loud = _loudness(features, settings, seconds=settings.smoothing)
    lo, hi = settings.truncation_range
    factor = lo + (hi - lo) * np.interp(at, features.times, loud)
    truncation = np.clip((mix @ truncs) * factor, 0.02, 1.0).astype(np.float32)
    return Plan(
        fps=fps, times=np.arange(n_frames) / fps, z=z, mix=mix, classes=classes,
        truncation=truncation, look=np.asarray(labels, np.int64),
        type_names=tuple(t.name for t in image_types), beats=features.beats.copy(),
        sections=features.sections.copy(), section_labels=features.section_labels.copy(),
        palettes=_palettes(image_types), symmetry=[t.symmetry for t in image_types], **camera,
        anchors=anchors, drive=style_drive(features, hits, at, settings),
        settings={"mode": "reactive", "transitions": transitions, "seed": seed,
                  "tempo": features.tempo, "pulse": settings.pulse,
                  "motion": settings.motion, "smoothing": settings.smoothing,
                  "sensitivity": settings.sensitivity,
                  "truncation_range": list(settings.truncation_range),
                  "classes_from": settings.classes_from, "zoom": settings.zoom,
                  "rotate": settings.rotate, "shake": settings.shake, "flash": settings.flash,
                  "structure": settings.structure, "texture": settings.texture,
                  "noise": settings.noise})


def _drift(features, at: np.ndarray, settings: ReactiveSettings, rng,
           dim_z: int) -> np.ndarray:
    """z at the times ``at`` before the pulses and looks: a loudness-paced walk along a
    seeded spline, plus the harmonic mel bands scaled by loudness.

    Returns
    -------
    z : np.ndarray [shape=(len(at), dim_z)], float32
    """
    from scipy.interpolate import CubicSpline

    rate = features.sr / features.hop
    # sustained sound moves, drums alone mostly pulse
    energy = _loudness(features, settings, seconds=settings.smoothing, harmonic=True)
    energy_at = np.interp(at, features.times, energy)
    phase = np.concatenate([[0.0], np.cumsum(energy[:-1])]) / rate * DRIFT_RATE \
        * settings.motion
    phase_at = np.interp(at, features.times, phase)
    anchors = rng.standard_normal((int(np.ceil(phase[-1] if len(phase) else 0)) + 4, dim_z))
    spline = CubicSpline(np.arange(len(anchors)), anchors, axis=0)
    perm = rng.permutation(dim_z)[:features.harmonic_mel.shape[0]]
    z = np.empty((len(at), dim_z), np.float32)
    for a in range(0, len(at), FRAME_CHUNK):  # float64 spline values, a chunk at a time
        z[a:a + FRAME_CHUNK] = spline(phase_at[a:a + FRAME_CHUNK]) * 0.6
    # the harmonic mel bands (the drums only pulse), smoothed, each normalised to [-1, 1]
    # over the song, band by band so a long song needs no [bands, rows] temporaries
    gain = (BAND_GAIN * settings.motion * energy_at).astype(np.float32)
    for band, row in zip(perm, features.harmonic_mel):
        db = _smooth(to_db(row), seconds=settings.smoothing, rate=rate)
        level = normalise_bands(db[:, None])[:, 0]
        z[:, band] += gain * np.interp(at, features.times, level).astype(np.float32)
    return z


def _pulse(z: np.ndarray, hits, at: np.ndarray, settings: ReactiveSettings, rng) -> None:
    """Add to ``z`` (in place) each hit's push along its own seeded direction; ``hits`` is
    :func:`pulses`' (times, strength, decay)."""
    hits, strength, decay = hits
    directions = rng.standard_normal((len(hits), z.shape[1])).astype(np.float32)
    for k in range(len(hits)):
        first = np.searchsorted(at, hits[k])
        last = np.searchsorted(at, hits[k] + 8 * decay[k])  # e⁻⁸: gone
        env = _envelope(at[first:last] - hits[k], decay[k]) * strength[k] * settings.pulse
        z[first:last] += env[:, None].astype(np.float32) * directions[k]


def _looks(features, at: np.ndarray, settings: ReactiveSettings, *, n_types: int,
           transitions: int) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's weights over the image types, and the type that weighs most.

    Returns
    -------
    mix : np.ndarray [shape=(len(at), n_types)], float32, rows sum to 1
    labels : np.ndarray [shape=(len(at),)], int
    """
    rate = features.sr / features.hop
    if settings.classes_from == "chroma":
        chroma = _smooth(features.chroma, seconds=max(settings.smoothing, 0.5), rate=rate) ** 2
        chroma_at = np.stack([np.interp(at, features.times, c) for c in chroma], axis=1)
        mix = (chroma_at / np.maximum(chroma_at.sum(axis=1, keepdims=True), 1e-9)).astype(
            np.float32)
        mix[chroma_at.sum(axis=1) <= 1e-9] = 1.0 / n_types
        return mix, mix.argmax(axis=1)
    starts = features.sections[:, 0]
    which = np.clip(np.searchsorted(starts, at, side="right") - 1, 0, len(starts) - 1)
    labels = features.section_labels[which] % n_types
    return transition_mix(labels, n_types=n_types, frames=transitions), labels
