"""GAN_PI-2's choreography: the smoothed spectrum as z, k-means clusters as image types."""

from __future__ import annotations

import warnings

import numpy as np

from ganclip.choreography.drive import CLASSIC_DRIVE
from ganclip.choreography.mixing import _palettes, transition_mix, type_arrays
from ganclip.choreography.signals import ema, normalise_bands
from ganclip.plan import Z_LIMIT, Plan


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
