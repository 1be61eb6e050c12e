"""Features → a per-frame plan: latent z, class vector, truncation, image type.

The plan (:class:`~ganclip.plan.Plan`) is made for the generator's latent width ``dim_z``
and class count ``n_classes``, so any generator can draw it.
"""

from __future__ import annotations

import warnings

import numpy as np

from ganclip.features import to_db
from ganclip.options import CLASSES_FROM, ReactiveSettings
from ganclip.plan import PALETTE_COLOURS, Z_LIMIT, Plan

__all__ = ["CLASSES_FROM", "Plan", "ReactiveSettings", "classic_plan", "reactive_plan",
           "type_arrays", "transition_mix", "cluster_frames", "ema", "normalise_bands", "pulses"]

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


def cluster_frames(x: np.ndarray, *, n_types: int, seed: int) -> np.ndarray:
    """k-means image types of each frame, numbered from quietest to loudest cluster.

    Returns
    -------
    labels : np.ndarray [shape=(T,)], int in [0, n_types)
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    n_distinct = len(np.unique(x, axis=0)) if len(x) <= 20000 else len(x)
    k = max(1, min(n_types, n_distinct))
    if k == 1:
        return np.zeros(len(x), np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    order = np.argsort(km.cluster_centers_.mean(axis=1))  # quiet clusters first
    rank = np.empty(k, np.int64)
    rank[order] = np.arange(k)
    return rank[km.labels_]


def transition_mix(labels: np.ndarray, *, n_types: int, frames: int) -> np.ndarray:
    """Per-frame weights over image types, ramping linearly over ``frames`` at each change.

    Where the type changes, the mix moves from the old type to the new one by
    ``1 / frames`` per frame, so a change takes ``frames`` frames to complete; a
    change that arrives mid-transition blends onward from wherever the mix is.
    ``frames = 0`` gives hard cuts.

    Returns
    -------
    mix : np.ndarray [shape=(T, n_types)], float32, rows sum to 1
    """
    target = np.eye(n_types, dtype=np.float32)[labels]
    if frames <= 0 or len(labels) == 0:
        return target
    step = 1.0 / frames
    mix = np.empty_like(target)
    current = target[0].copy()
    for t in range(len(labels)):
        delta = target[t] - current
        largest = np.abs(delta).max()
        if largest > step:
            delta *= step / largest
        current = current + delta
        mix[t] = current
    return mix


def type_arrays(image_types, *, dim_z: int = 128,
                n_classes: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image type's latent, class vector and truncation, stacked, for a generator of
    ``dim_z`` latent dimensions and ``n_classes`` classes.

    Returns
    -------
    latents : np.ndarray [shape=(N, dim_z)], float32
    classes : np.ndarray [shape=(N, n_classes)], float32
    truncations : np.ndarray [shape=(N,)], float32
    """
    return (np.stack([t.latent_vector(dim_z) for t in image_types]).astype(np.float32),
            np.stack([t.class_vector(n_classes) for t in image_types]).astype(np.float32),
            np.array([t.truncation for t in image_types], np.float32))


def bands_to_latent(n_bands: int, dim_z: int, *, seed: int) -> np.ndarray:
    """The seeded map from spectrum bands to latent dimensions, ``z = bands @ map``.

    With as many bands as dimensions it is a permutation, so neighbouring bands do not
    drive neighbouring dimensions (as GAN_PI-2 did); otherwise a random projection with
    unit-norm columns, so each dimension moves about as far as one band would.

    Returns
    -------
    map : np.ndarray [shape=(n_bands, dim_z)], float32
    """
    rng = np.random.default_rng(seed)
    if n_bands == dim_z:
        return np.eye(n_bands, dtype=np.float32)[:, rng.permutation(n_bands)]
    projection = rng.standard_normal((n_bands, dim_z))
    return (projection / np.linalg.norm(projection, axis=0, keepdims=True)).astype(np.float32)


# classic mode's style drive, for a W-space model: the spectrum's path moves the coarse and
# middle layers as far as a reactive plan's full drive does; the fine ones keep the look
CLASSIC_DRIVE = np.array([1.0, 1.0, 0.0, 0.0, *([1 / 12] * 12)], np.float32)


def classic_plan(bands_db: np.ndarray, *, fps: float, image_types, transitions: int,
                 ema_span: float = 15.0, seed: int = 0, dim_z: int = 128,
                 n_classes: int = 1000, anchors: np.ndarray | None = None) -> Plan:
    """GAN_PI-2's choreography: the smoothed spectrum as z, k-means clusters as image types.

    Parameters
    ----------
    bands_db : np.ndarray [shape=(T, n_bands)], mel band power in dB per frame
    fps : float
    image_types : sequence of ImageType, the N types the clusters map to
    transitions : int >= 0, frames of interpolation at each type change
    ema_span : float, span in frames of the exponential moving average
    seed : int, fixes the band-to-latent map and k-means
    dim_z, n_classes : int, the generator's latent width and class count
    anchors : np.ndarray [shape=(N, num_ws, w_dim)] or None, the types' looks in a
        style-based generator's W space (kept in the plan; then z is the spectrum alone)

    Returns
    -------
    Plan
    """
    n_frames, n_bands = bands_db.shape
    smooth = ema(bands_db, span=ema_span)
    spectrum = normalise_bands(smooth)
    labels = cluster_frames(spectrum, n_types=len(image_types), seed=seed)
    mix = transition_mix(labels, n_types=len(image_types), frames=transitions)
    base, classes, truncs = type_arrays(image_types, dim_z=dim_z, n_classes=n_classes)
    if n_bands == dim_z:  # a permutation: indexing is exact where a matmul would round
        perm = np.random.default_rng(seed).permutation(n_bands)
        latent = spectrum[:, perm]
    else:
        latent = spectrum @ bands_to_latent(n_bands, dim_z, seed=seed)
    z = np.clip(latent + (mix @ base if anchors is None else 0), -Z_LIMIT, Z_LIMIT).astype(
        np.float32)
    return Plan(
        fps=fps, times=(np.arange(n_frames) / fps).astype(np.float64), z=z, mix=mix,
        classes=classes, truncation=(mix @ truncs).astype(np.float32), look=labels,
        type_names=tuple(t.name for t in image_types), palettes=_palettes(image_types),
        symmetry=[t.symmetry for t in image_types], anchors=anchors,
        drive=None if anchors is None else np.tile(CLASSIC_DRIVE, (n_frames, 1)),
        settings={"mode": "classic", "ema_span": ema_span, "transitions": transitions,
                  "seed": seed})


# ---------------------------------------------------------------------------------------------
# the reactive mode: beats pulse, loudness moves, sections choose the look

ATTACK = 0.005  # seconds for a pulse to rise: the jolt lands on the frame of its hit
OFFBEAT = 0.15  # a percussive onset off the beat pulses this much of a beat
PULSE_RANGE_DB = 20.0  # a hit this far below the loud beats around it does not pulse
QUIET_SECTION_DB = 12.0  # a section up to this much quieter than the song still jolts fully
DRIFT_RATE = 0.35  # drift anchors passed per second at full loudness and motion 1
BAND_GAIN = 0.35  # weight of the spectrum's bands in z at full loudness and motion 1
FRAME_CHUNK = 4096  # frames per piece of the per-frame arithmetic (bounded temporaries)
SILENCE_DB = -50.0  # dBFS: the loudest a song's "loud" reference may be taken to be


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
    Plan, with ``beats``, ``sections`` and the style drives (:func:`style_drive`) recorded
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


BASS_HZ = 150.0  # mel bands centred below this are the bass
HIGH_HZ = 4000.0  # and above this the highs
DRIVE_SECONDS = 0.04  # smoothing of the band levels: fast enough for a kick
CHROMA_SECONDS = 0.5  # the harmony changes with the chords, not with every note


def style_drive(features, hits, at: np.ndarray, settings: ReactiveSettings) -> np.ndarray:
    """What a style-based generator's layers follow, at the times ``at``.

    Columns (:data:`~ganclip.plan.DRIVE`), as Brouwer's audio-reactive StyleGAN
    interpolations do it:

    - **coarse** (the layout): the hits' envelopes (``hits`` is :func:`pulses'`) and the
      bass (mel bands below :data:`BASS_HZ`), times ``settings.structure``;
    - **middle**: the harmonic loudness that paces the drift, times ``settings.motion``;
    - **fine** (texture, colour): half always, half the highs (above :data:`HIGH_HZ`),
      times ``settings.texture``; they are steered by
    - **chroma**: the 12 pitch classes, smoothed over :data:`CHROMA_SECONDS`, summing to 1;
    - **noise**: the onset strength, times ``settings.noise``.

    Returns
    -------
    drive : np.ndarray [shape=(len(at), len(DRIVE))], float32 >= 0
    """
    import librosa

    from ganclip.features import FeatureSettings

    rate = features.sr / features.hop
    centres = librosa.mel_frequencies(features.mel.shape[0] + 2, fmin=FeatureSettings().fmin,
                                      fmax=features.sr / 2)[1:-1]

    def band(mask):
        level = _level(features.mel[mask].sum(axis=0), sensitivity=settings.sensitivity)
        return np.interp(at, features.times, _smooth(level, seconds=DRIVE_SECONDS, rate=rate))

    times, strength, decay = hits
    pulse = np.zeros(len(at))
    for k in range(len(times)):
        first, last = np.searchsorted(at, [times[k], times[k] + 8 * decay[k]])
        pulse[first:last] += _envelope(at[first:last] - times[k], decay[k]) * strength[k]
    onset = features.onset / max(float(np.percentile(features.onset, 95)), 1e-6) \
        if len(features.onset) else features.onset
    onset = np.interp(at, features.times, _smooth(np.clip(onset, 0, 1), seconds=DRIVE_SECONDS,
                                                  rate=rate))
    harmonic = np.interp(at, features.times, _loudness(features, settings,
                                                       seconds=settings.smoothing, harmonic=True))
    chroma = _smooth(features.chroma, seconds=CHROMA_SECONDS, rate=rate) ** 2
    chroma = np.stack([np.interp(at, features.times, c) for c in chroma], axis=1)
    chroma /= np.maximum(chroma.sum(axis=1, keepdims=True), 1e-9)
    coarse = np.clip(0.6 * np.minimum(pulse, 1.0) + 0.4 * band(centres < BASS_HZ), 0, 1)
    fine = 0.5 + 0.5 * band(centres > HIGH_HZ)
    return np.column_stack([coarse * settings.structure, harmonic * settings.motion,
                            fine * settings.texture, np.clip(onset, 0, 1) * settings.noise,
                            chroma]).astype(np.float32)


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
    """:func:`pulses`' hits and one more on each hit that starts a drop, :data:`DROP_HITS`
    strong and settling over :data:`DROP_DECAY`: the camera lunges in. A louder section
    that no hit starts within :data:`DROP_SNAP` (a swell) has no drop."""
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


def _palettes(image_types) -> np.ndarray:
    """Each image type's palette ramp: [N, PALETTE_COLOURS, 3] RGB 0..1."""
    return np.stack([t.palette_array(PALETTE_COLOURS) for t in image_types]).astype(
        np.float32)


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
