"""Features → a per-frame plan: latent z, class vector, truncation, image type.

The :class:`Plan` is the contract between analysis and rendering: plain numpy
arrays, one row per video frame, that any generator can draw.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganclip.errors import BadInputError

PLAN_VERSION = 2  # 2 added the feature times (beats, sections); version 1 files still load
Z_LIMIT = 2.0  # |z| bound, the range of BigGAN's truncated normal


@dataclass
class Plan:
    """What to draw at every video frame.

    The class vectors are stored factored, ``y = mix @ classes``, so a 10-minute
    plan holds ``T × n_types`` weights instead of ``T × 1000`` floats.
    """

    fps: float  # video frames per second
    times: np.ndarray  # [T] seconds, each frame's timestamp in the video
    z: np.ndarray  # [T, 128] float32 latent, in [-Z_LIMIT, Z_LIMIT]
    mix: np.ndarray  # [T, N] float32 weight of each image type; rows sum to 1
    classes: np.ndarray  # [N, 1000] float32 class vector of each image type
    truncation: np.ndarray  # [T] float32 in (0, 1]
    type: np.ndarray  # [T] int image-type index the frame belongs to (0..N-1)
    type_names: tuple[str, ...]  # [N] names of the image types
    settings: dict = field(default_factory=dict)  # what made the plan (JSON-serialisable)
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [b] seconds, if known
    sections: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [s, 2] start, end s
    section_labels: np.ndarray = field(  # [s] int label of each section; repeats share one
        default_factory=lambda: np.zeros(0, np.int64))

    def check(self, source="plan") -> None:
        """Refuse a plan whose arrays disagree in length or hold values a generator can't take."""
        n, types = len(self.times), len(self.type_names)
        problems = []
        if not (self.fps > 0 and np.isfinite(self.fps)):
            problems.append(f"fps {self.fps}")
        if self.z.ndim != 2 or len(self.z) != n:
            problems.append(f"z {self.z.shape} for {n} frames")
        if self.mix.shape != (n, types) or self.classes.shape[0] != types:
            problems.append(f"mix {self.mix.shape} / classes {self.classes.shape} for {n} "
                            f"frames and {types} types")
        if self.truncation.shape != (n,) or self.type.shape != (n,):
            problems.append("truncation or type not one per frame")
        for name in ("z", "mix", "classes", "truncation"):
            if not np.all(np.isfinite(getattr(self, name))):
                problems.append(f"{name} has NaN or infinite values")
        if len(self.truncation) and not np.all((self.truncation > 0) & (self.truncation <= 1)):
            problems.append("truncation outside (0, 1]")
        if n == 0:
            problems.append("no frames")
        if problems:
            raise BadInputError(f"{source} is not a usable ganclip plan: {'; '.join(problems)}")

    def __len__(self) -> int:
        return len(self.times)

    @property
    def y(self) -> np.ndarray:
        """Class vectors, np.ndarray [shape=(T, 1000)], float32."""
        return self.mix @ self.classes

    def batch(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(z, y, truncation)`` of frames ``start:stop``, as a generator takes them."""
        return (self.z[start:stop], self.mix[start:stop] @ self.classes,
                self.truncation[start:stop])

    def save(self, path) -> Path:
        """Write the plan as ``.npz`` atomically (temporary file, then rename)."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(
                    f, version=PLAN_VERSION, fps=self.fps, times=self.times, z=self.z,
                    mix=self.mix, classes=self.classes, truncation=self.truncation,
                    type=self.type, type_names=np.array(self.type_names, dtype=str),
                    settings=json.dumps(self.settings), beats=self.beats,
                    sections=self.sections, section_labels=self.section_labels)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> "Plan":
        """Read a plan written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["version"])
                if version not in (1, PLAN_VERSION):
                    raise BadInputError(f"{path}: plan version {version} is not supported "
                                        f"(this ganclip reads 1 and {PLAN_VERSION})")
                extra = {k: data[k] for k in ("beats", "sections", "section_labels")
                         if version >= 2}
                plan = cls(fps=float(data["fps"]), times=data["times"], z=data["z"],
                           mix=data["mix"], classes=data["classes"],
                           truncation=data["truncation"], type=data["type"],
                           type_names=tuple(str(n) for n in data["type_names"]),
                           settings=json.loads(str(data["settings"])), **extra)
            plan.check(path)
            return plan
        except BadInputError:
            raise
        except Exception as exc:
            raise BadInputError(f"{path} is not a ganclip plan: {exc}") from None


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


def type_arrays(image_types) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image type's latent, class vector and truncation, stacked.

    Returns
    -------
    latents : np.ndarray [shape=(N, dim)], float32
    classes : np.ndarray [shape=(N, n_classes)], float32
    truncations : np.ndarray [shape=(N,)], float32
    """
    return (np.stack([t.latent_vector() for t in image_types]).astype(np.float32),
            np.stack([t.class_vector() for t in image_types]).astype(np.float32),
            np.array([t.truncation for t in image_types], np.float32))


def classic_plan(bands_db: np.ndarray, *, fps: float, image_types, transitions: int,
                 ema_span: float = 15.0, seed: int = 0) -> Plan:
    """The seed's choreography: smoothed spectrum as z, k-means clusters as image types.

    Parameters
    ----------
    bands_db : np.ndarray [shape=(T, 128)], mel band power in dB per frame
    fps : float
    image_types : sequence of ImageType, the N types the clusters map to
    transitions : int >= 0, frames of interpolation at each type change
    ema_span : float, span in frames of the exponential moving average
    seed : int, fixes the band permutation and k-means

    Returns
    -------
    Plan
    """
    n_frames, n_bands = bands_db.shape
    smooth = ema(bands_db, span=ema_span)
    spectrum = normalise_bands(smooth)
    labels = cluster_frames(spectrum, n_types=len(image_types), seed=seed)
    mix = transition_mix(labels, n_types=len(image_types), frames=transitions)

    # A fixed seeded permutation, so neighbouring bands do not drive neighbouring
    # latent dimensions (the seed did the same).
    perm = np.random.default_rng(seed).permutation(n_bands)
    base, classes, truncs = type_arrays(image_types)
    z = np.clip(spectrum[:, perm] + mix @ base, -Z_LIMIT, Z_LIMIT).astype(np.float32)
    return Plan(
        fps=fps, times=(np.arange(n_frames) / fps).astype(np.float64), z=z, mix=mix,
        classes=classes, truncation=(mix @ truncs).astype(np.float32), type=labels,
        type_names=tuple(t.name for t in image_types),
        settings={"mode": "classic", "ema_span": ema_span, "transitions": transitions,
                  "seed": seed, "fps": fps})


# ---------------------------------------------------------------------------------------------
# the reactive mode: beats pulse, loudness moves, sections choose the look

ATTACK = 0.005  # seconds for a pulse to rise: the jolt lands on the frame of its hit
OFFBEAT = 0.15  # a percussive onset off the beat pulses this much of a beat
PULSE_RANGE_DB = 20.0  # a hit this far below the loud beats around it does not pulse
QUIET_SECTION_DB = 12.0  # a section up to this much quieter than the song still jolts fully
DRIFT_RATE = 0.35  # drift anchors passed per second at full loudness and motion 1
BAND_GAIN = 0.35  # weight of the spectrum's bands in z at full loudness and motion 1
CLASSES_FROM = ("sections", "chroma")
FRAME_CHUNK = 4096  # frames per piece of the per-frame arithmetic (bounded temporaries)
SILENCE_DB = -50.0  # dBFS: the loudest a song's "loud" reference may be taken to be


@dataclass(frozen=True)
class ReactiveSettings:
    """The reactive mode's knobs; defaults chosen by eye on the recordings in shared/audio."""

    pulse: float = 0.7  # size of the jolt on a full-strength beat, in units of z's spread
    motion: float = 1.0  # speed of the drift at full loudness (0 = no drift)
    smoothing: float = 0.25  # seconds of inertia of the loudness and the spectrum bands
    sensitivity: float = 1.0  # > 1: quieter hits and passages react more; < 1: less
    truncation_range: tuple[float, float] = (0.6, 1.3)  # × the type's truncation, calm → loud
    classes_from: str = "sections"  # or "chroma": 12 pitch classes mix 12 image types


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
    db = 10 * np.log10(np.maximum(power, 1e-12))
    ref = max(float(np.percentile(db, 95)) if len(db) else 0.0, SILENCE_DB)
    return np.clip(1 + (db - ref) * sensitivity / top_db, 0, 1).astype(np.float32)


def _envelope(tau: np.ndarray, decay) -> np.ndarray:
    """A pulse's shape ``tau`` seconds after its hit: a 5 ms rise, then exponential decay."""
    return np.where(tau >= 0, np.minimum(np.maximum(tau, 0) / ATTACK, 1.0)
                    * np.exp(-np.maximum(tau, 0) / decay), 0.0)


def pulses(features, *, sensitivity: float = 1.0):
    """Hit times, strengths and decays: every beat, and percussive onsets off the beat.

    A hit's strength follows its loudness: the percussive energy's peak at the hit
    (:func:`~ganclip.features.hit_level`), in dB below the loud beats around it (the 90th
    percentile of the 17 beats centred on it, at most :data:`QUIET_SECTION_DB` below the whole
    song's), 1 at that level and 0 at :data:`PULSE_RANGE_DB` ``/ sensitivity`` below it.
    A beat on a quiet hi-hat jolts a little, one on the kick or the snare fully, and a beat
    the tracker places in silence not at all.

    Returns
    -------
    times : np.ndarray [shape=(k,)], seconds
    strength : np.ndarray [shape=(k,)], 0..1; a beat as loud as the song's loud beats is 1
    decay : np.ndarray [shape=(k,)], seconds: half the local beat interval, so a pulse has
        settled to e⁻² = 13 % one beat later
    """
    from ganclip.features import hit_level

    beats, onsets = features.beats, features.onsets
    if len(beats) and len(onsets):  # onsets farther than 70 ms from the nearest beat
        after = np.clip(np.searchsorted(beats, onsets), 1, len(beats) - 1) if len(beats) > 1 \
            else np.zeros(len(onsets), int)
        near = np.minimum(np.abs(onsets - beats[after]), np.abs(onsets - beats[after - 1]))
        onsets = onsets[near > 0.07]
    times = np.concatenate([beats, onsets])
    if len(features.percussive) == 0 or len(times) == 0:
        return times, np.zeros(len(times), np.float32), np.full(len(times), 0.25, np.float32)
    level = hit_level(features.percussive)
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
                  settings: ReactiveSettings = ReactiveSettings(), seed: int = 0) -> Plan:
    """Beat pulses, loudness-driven drift, and an image type per section (or chroma mix).

    Everything is computed as a function of time in seconds and sampled at the end of each
    frame's slice of audio, so the same song follows the same path at any frame rate.

    - **pulse**: each beat (and, weaker, each percussive onset off the beat) adds
      ``pulse × strength × envelope(t - hit) × d`` to z, ``d`` a seeded random direction:
      a 5 ms rise and a decay of half a beat interval.
    - **motion**: z drifts along a smooth seeded path (a cubic spline through random
      anchors); its speed follows the smoothed harmonic energy, so quiet passages nearly
      stop. The harmonic mel bands, normalised per band, add the seed's spectrum-to-latent
      mapping, also scaled by loudness.
    - **looks**: each section label gets an image type (label mod the number of types),
      changing on the section's first beat, with ``transitions`` frames of blending from
      there; or, with ``classes_from="chroma"``, the 12 pitch classes weight 12 types.
    - **truncation**: the image type's truncation × a factor from ``truncation_range``
      that follows the RMS loudness: calm is cleaner, loud is wilder.

    Parameters
    ----------
    features : SongFeatures, of the audio the video covers (time 0 = the first frame)
    fps : float
    n_frames : int, video frames
    image_types : sequence of ImageType
    transitions : int >= 0, frames of blending at each section change
    settings : ReactiveSettings
    seed : int, fixes pulse directions and the drift path

    Returns
    -------
    Plan, with ``beats`` and ``sections`` recorded
    """
    from scipy.interpolate import CubicSpline

    s = settings
    rng = np.random.default_rng(seed)
    rate = features.sr / features.hop  # feature rows per second
    # a frame shows what was heard up to the end of its slice of audio: a hit inside the
    # slice is on that frame (the beat tracker's times lag the sound by ~a 23 ms row)
    at = (np.arange(n_frames) + 1.0) / fps
    n_types = len(image_types)
    dim = len(image_types[0].latent_vector())

    # motion: loudness sets the speed along a smooth random path, and scales the bands
    # the harmonic part of the loudness: sustained sound moves, drums alone mostly pulse
    share = features.harmonic / np.maximum(features.harmonic + features.percussive, 1e-20)
    energy = _smooth(_level(features.rms ** 2 * share, sensitivity=s.sensitivity),
                     seconds=s.smoothing, rate=rate)
    energy_at = np.interp(at, features.times, energy)
    phase = np.concatenate([[0.0], np.cumsum(energy[:-1])]) / rate * DRIFT_RATE * s.motion
    phase_at = np.interp(at, features.times, phase)
    anchors = rng.standard_normal((int(np.ceil(phase[-1] if len(phase) else 0)) + 4, dim))
    spline = CubicSpline(np.arange(len(anchors)), anchors, axis=0)
    perm = rng.permutation(dim)[:features.harmonic_mel.shape[0]]
    z = np.empty((n_frames, dim), np.float32)
    for a in range(0, n_frames, FRAME_CHUNK):  # float64 spline values, a chunk at a time
        z[a:a + FRAME_CHUNK] = spline(phase_at[a:a + FRAME_CHUNK]) * 0.6
    # the harmonic mel bands (the drums only pulse), smoothed, each normalised to [-1, 1]
    # over the song, band by band so a long song needs no [bands, rows] temporaries
    gain = (BAND_GAIN * s.motion * energy_at).astype(np.float32)
    for band, row in zip(perm, features.harmonic_mel):
        db = _smooth(10 * np.log10(np.maximum(row, 1e-10)), seconds=s.smoothing, rate=rate)
        level = normalise_bands(db[:, None])[:, 0]
        z[:, band] += gain * np.interp(at, features.times, level).astype(np.float32)

    # pulse: each hit pushes z along its own direction
    hits, strength, decay = pulses(features, sensitivity=s.sensitivity)
    directions = rng.standard_normal((len(hits), dim)).astype(np.float32)
    for k in range(len(hits)):
        first = np.searchsorted(at, hits[k])
        last = np.searchsorted(at, hits[k] + 8 * decay[k])  # e⁻⁸: gone
        env = _envelope(at[first:last] - hits[k], decay[k]) * strength[k] * s.pulse
        z[first:last] += env[:, None].astype(np.float32) * directions[k]

    # looks
    if s.classes_from == "chroma":
        chroma = _smooth(features.chroma, seconds=max(s.smoothing, 0.5), rate=rate) ** 2
        chroma_at = np.stack([np.interp(at, features.times, c) for c in chroma], axis=1)
        mix = (chroma_at / np.maximum(chroma_at.sum(axis=1, keepdims=True), 1e-9)).astype(
            np.float32)
        mix[chroma_at.sum(axis=1) <= 1e-9] = 1.0 / n_types
        labels = mix.argmax(axis=1)
    else:
        starts = features.sections[:, 0]
        which = np.clip(np.searchsorted(starts, at, side="right") - 1, 0, len(starts) - 1)
        labels = features.section_labels[which] % n_types
        mix = transition_mix(labels, n_types=n_types, frames=transitions)

    base, classes, truncs = type_arrays(image_types)
    for a in range(0, n_frames, FRAME_CHUNK):
        z[a:a + FRAME_CHUNK] += mix[a:a + FRAME_CHUNK] @ base
    np.clip(z, -Z_LIMIT, Z_LIMIT, out=z)
    type_trunc = mix @ truncs
    loud = _smooth(_level(features.rms ** 2, sensitivity=s.sensitivity),
                   seconds=s.smoothing, rate=rate)
    lo, hi = s.truncation_range
    factor = lo + (hi - lo) * np.interp(at, features.times, loud)
    truncation = np.clip(type_trunc * factor, 0.02, 1.0).astype(np.float32)
    return Plan(
        fps=fps, times=np.arange(n_frames) / fps, z=z, mix=mix, classes=classes,
        truncation=truncation, type=np.asarray(labels, np.int64),
        type_names=tuple(t.name for t in image_types), beats=features.beats.copy(),
        sections=features.sections.copy(), section_labels=features.section_labels.copy(),
        settings={"mode": "reactive", "transitions": transitions, "seed": seed, "fps": fps,
                  "tempo": features.tempo, "pulse": s.pulse, "motion": s.motion,
                  "smoothing": s.smoothing, "sensitivity": s.sensitivity,
                  "truncation_range": list(s.truncation_range),
                  "classes_from": s.classes_from})
