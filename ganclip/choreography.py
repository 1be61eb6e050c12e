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

PLAN_VERSION = 1
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
                    settings=json.dumps(self.settings))
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
                if int(data["version"]) != PLAN_VERSION:
                    raise BadInputError(f"{path}: plan version {int(data['version'])} is not "
                                        f"supported (expected {PLAN_VERSION})")
                return cls(fps=float(data["fps"]), times=data["times"], z=data["z"],
                           mix=data["mix"], classes=data["classes"],
                           truncation=data["truncation"], type=data["type"],
                           type_names=tuple(str(n) for n in data["type_names"]),
                           settings=json.loads(str(data["settings"])))
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
    base = np.stack([t.latent_vector() for t in image_types]).astype(np.float32)
    z = np.clip(spectrum[:, perm] + mix @ base, -Z_LIMIT, Z_LIMIT).astype(np.float32)

    classes = np.stack([t.class_vector() for t in image_types]).astype(np.float32)
    truncs = np.array([t.truncation for t in image_types], np.float32)
    return Plan(
        fps=fps, times=(np.arange(n_frames) / fps).astype(np.float64), z=z, mix=mix,
        classes=classes, truncation=(mix @ truncs).astype(np.float32), type=labels,
        type_names=tuple(t.name for t in image_types),
        settings={"mode": "classic", "ema_span": ema_span, "transitions": transitions,
                  "seed": seed, "fps": fps})
