"""Sections from beat-synchronous timbre and harmony, labelled so that repeats match."""

from __future__ import annotations

import numpy as np

from ganclip.features.settings import CHUNK_ROWS, SILENT_BEAT_DB, FeatureSettings

MAX_SECTION_UNITS = 1200  # segmentation units (beats, or groups of beats in a long song):
# its graph is units², its eigendecomposition units³ (1200: 0.5 s, 12 MB)
RECURRENCE_WIDTH = 3  # units a recurrence must be apart: a repeat, not the next beat
MIN_CLUSTER_UNITS = 2 * RECURRENCE_WIDTH + 3  # fewer sounding units are one section (librosa
# needs width < (units - 1) / 2; a 4 s song has ~8 beats)


def segment(mel: np.ndarray, chroma: np.ndarray, beats: np.ndarray, *, sr: int, hop: int,
            duration: float, settings: FeatureSettings = FeatureSettings()):
    """Sections from beat-synchronous timbre and harmony, labelled so that repeats match.

    Laplacian segmentation (McFee & Ellis 2014, as in librosa's gallery): a recurrence graph
    of beat-synchronous MFCC + chroma joined with a path graph linking neighbouring beats of
    similar timbre; the graph Laplacian's first eigenvectors, smoothed over time, are
    clustered with k-means. The number of section kinds is the largest eigengap among the
    first ``max_section_kinds`` eigenvalues; kinds that do not separate the units
    (silhouette <= 0) mean one section. Silent ends are left out of the clustering and take
    their neighbour's label. Sections shorter than ``min_section`` seconds are merged into
    their longer neighbour, and each change moves to the sharpest feature jump within a
    unit. With fewer than 16 beats (silence, ambient music) a 0.5 s grid stands in for the
    beats; past :data:`MAX_SECTION_UNITS` beats (a 10-minute song at 120 BPM), units of
    several beats keep the work bounded. Fewer than :data:`MIN_CLUSTER_UNITS` sounding units
    (a song of a few seconds) are one section.

    Returns
    -------
    beat_labels : np.ndarray [shape=(b,)], int label of each beat
    sections : np.ndarray [shape=(s, 2)], seconds (start, end); starts are beat times
    section_labels : np.ndarray [shape=(s,)], int, numbered in order of first appearance
    """
    starts, frames = _unit_starts(beats, duration=duration, n_rows=mel.shape[1], sr=sr,
                                  hop=hop)
    unit_starts = np.concatenate([[0.0], starts])  # unit 0 runs from 0 to the first beat
    unit_ends = np.append(unit_starts[1:], duration)
    labels = np.zeros(len(unit_starts), np.int64)
    embedding = np.zeros((len(unit_starts), 1))
    described = len(unit_starts) >= 8 and mel.shape[1] > 1
    if described:
        timbre, harmony, loudness = _unit_features(mel, chroma, frames)
        labels, embedding = _label_units(timbre, harmony, loudness,
                                         max_kinds=settings.max_section_kinds)
    labels = _merge_short(labels, embedding, unit_starts, unit_ends, settings.min_section)
    if described:
        # standardised over every unit, where _cluster_units saw the sounding ones only: the
        # two differ when the song has silent ends, so they are not computed once
        labels = _refine_boundaries(labels, _standardised(timbre, harmony))
    return _numbered_sections(labels, unit_starts, beats, duration=duration)


def _unit_features(mel: np.ndarray, chroma: np.ndarray,
                   frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each unit's timbre (mean MFCC), harmony (median chroma) and loudness (dB of its mean
    mel power); a unit runs from one of ``frames`` (rows) to the next, the first from row 0.

    Returns
    -------
    timbre : np.ndarray [shape=(13, units)]
    harmony : np.ndarray [shape=(12, units)]
    loudness : np.ndarray [shape=(units,)], dB
    """
    import librosa

    peak = float(mel.max())
    mfcc = np.concatenate([  # in pieces: no [bands, rows] dB copy of a long song
        librosa.feature.mfcc(S=np.maximum(librosa.power_to_db(
            mel[:, a:a + CHUNK_ROWS], ref=peak, top_db=None), -80.0), n_mfcc=13)
        for a in range(0, mel.shape[1], CHUNK_ROWS)], axis=1)
    timbre = librosa.util.sync(mfcc, frames, aggregate=np.mean)
    harmony = librosa.util.sync(chroma, frames, aggregate=np.median)
    loudness = librosa.power_to_db(librosa.util.sync(mel.sum(axis=0, keepdims=True), frames,
                                                     aggregate=np.mean)[0])
    return timbre, harmony, loudness


def _label_units(timbre: np.ndarray, harmony: np.ndarray, loudness: np.ndarray, *,
                 max_kinds: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_cluster_units` on the sounding units; a silent lead-in or fade-out tail is not
    a section of its own and takes its neighbour's label (and embedding)."""
    n = len(loudness)
    sounding = np.flatnonzero(loudness > loudness.max() - SILENT_BEAT_DB)
    lo, hi = sounding[0], sounding[-1] + 1
    if hi - lo < MIN_CLUSTER_UNITS:
        return np.zeros(n, np.int64), np.zeros((n, 1))
    inner, inner_embedding = _cluster_units(timbre[:, lo:hi], harmony[:, lo:hi], max_kinds)
    return (np.pad(inner, (lo, n - hi), mode="edge"),
            np.pad(inner_embedding, ((lo, n - hi), (0, 0)), mode="edge"))


def _numbered_sections(labels: np.ndarray, unit_starts: np.ndarray, beats: np.ndarray, *,
                       duration: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`segment`'s answer from the label of each unit: labels renumbered in order of
    first appearance, a section per run of one label, and each beat's label."""
    change = np.flatnonzero(np.diff(labels)) + 1
    first = np.concatenate([[0], change])
    sections = np.stack([unit_starts[first], np.append(unit_starts[change], duration)], axis=1)
    _, order = np.unique(labels[first], return_index=True)
    renumber = {old: new for new, old in enumerate(labels[first][np.sort(order)])}
    labels = np.array([renumber[v] for v in labels], np.int64)
    beat_labels = labels[np.clip(np.searchsorted(unit_starts, beats, side="right") - 1, 0,
                                 None)]
    return beat_labels, sections, labels[first]


def _unit_starts(beats: np.ndarray, *, duration: float, n_rows: int, sr: int,
                 hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the segmentation's units after the first start: the beats, a grid of their
    interval where the tracker found none (a quiet intro or outro), a 0.5 s grid when there
    are too few beats, every few beats in a long song; in seconds and in rows.
    """
    import librosa

    starts = np.asarray(beats, np.float64)
    if len(starts) < 16:
        starts = np.arange(0.5, duration, 0.5)
    else:
        step = float(np.median(np.diff(starts)))
        before = starts[0] - step * np.arange(int(starts[0] / step), 0, -1)
        after = starts[-1] + step * np.arange(1, int((duration - starts[-1]) / step) + 1)
        starts = np.concatenate([before[before > 0.05], starts, after[after < duration - 0.05]])
    if len(starts) > MAX_SECTION_UNITS:  # a long song: units of several beats
        starts = starts[::int(np.ceil(len(starts) / MAX_SECTION_UNITS))]
    frames = librosa.time_to_frames(starts, sr=sr, hop_length=hop)
    # one unit per row at most, none empty: a beat on row 0 would make unit 0 empty
    keep = (frames > 0) & (frames < n_rows) & (np.diff(frames, prepend=0) > 0)
    return starts[keep], frames[keep]


def _standard(x: np.ndarray) -> np.ndarray:
    """Each row to zero mean and unit variance over time."""
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)


def _standardised(timbre: np.ndarray, harmony: np.ndarray) -> np.ndarray:
    """Timbre and harmony rows, each standardised, stacked: ``[13 + 12, units]``."""
    return np.vstack([_standard(timbre), _standard(harmony)])


def _refine_boundaries(labels: np.ndarray, features: np.ndarray, reach: int = 1) -> np.ndarray:
    """Move each label change to the unit edge within ``reach`` units where the features
    change most. The eigenvectors are median-filtered over 9 units before clustering, which
    can put a change a beat off the sound's; the feature jump itself is sharp."""
    novelty = np.r_[0.0, np.sum(np.diff(features, axis=1) ** 2, axis=0)]  # into unit j
    labels = labels.copy()
    change = np.flatnonzero(np.diff(labels)) + 1
    for i, c in enumerate(change):
        lo = max(c - reach, change[i - 1] + 1 if i else 1)
        hi = min(c + reach, change[i + 1] - 1 if i + 1 < len(change) else len(labels) - 1)
        best = lo + int(np.argmax(novelty[lo:hi + 1]))
        if best < c:
            labels[best:c] = labels[c]
        elif best > c:
            labels[c:best] = labels[c - 1]
    return labels


def _cluster_units(timbre: np.ndarray, harmony: np.ndarray, max_kinds: int):
    """Section label of each beat-synchronous column (the Laplacian step of :func:`segment`),
    and the spectral embedding the labels cluster: ``[n, k]``."""
    import librosa
    import scipy.ndimage
    import scipy.sparse.csgraph
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    stacked = _standardised(timbre, harmony)
    n = stacked.shape[1]
    if np.ptp(stacked, axis=1).max() < 1e-3:  # nothing changes (silence, a held tone)
        return np.zeros(n, np.int64), np.zeros((n, 1))
    recurrence = librosa.segment.recurrence_matrix(stacked, width=RECURRENCE_WIDTH,
                                                   mode="affinity", sym=True)
    recurrence = librosa.segment.timelag_filter(scipy.ndimage.median_filter)(recurrence,
                                                                               size=(1, 7))
    step = np.sum(np.diff(timbre, axis=1) ** 2, axis=0)
    path_sim = np.exp(-step / max(float(np.median(step)), 1e-9))
    path = np.diag(path_sim, k=1) + np.diag(path_sim, k=-1)
    deg_path, deg_rec = path.sum(axis=1), recurrence.sum(axis=1)
    mu = deg_path.dot(deg_path + deg_rec) / max(float(np.sum((deg_path + deg_rec) ** 2)), 1e-9)
    graph = mu * recurrence + (1 - mu) * path
    graph = (graph + graph.T) / 2  # the time-lag filter leaves it slightly asymmetric; eigh
    laplacian = scipy.sparse.csgraph.laplacian(graph, normed=True)
    values, vectors = np.linalg.eigh(laplacian)
    vectors = scipy.ndimage.median_filter(vectors, size=(9, 1))
    top = min(max_kinds, n // 4)
    k = int(np.argmax(np.diff(values[:top + 1]))) + 1 if top >= 2 else 1  # largest eigengap
    if k < 2:
        return np.zeros(n, np.int64), np.zeros((n, 1))
    embedding = vectors[:, :k] / (np.sqrt(np.sum(vectors[:, :k] ** 2, axis=1,
                                                 keepdims=True)) + 1e-9)
    labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(embedding)
    # kinds whose units are no closer to each other than to other kinds' (silhouette <= 0,
    # in the features themselves) are an artefact of a steady song's graph: one section
    if len(np.unique(labels)) > 1 and silhouette_score(stacked.T, labels) <= 0:
        return np.zeros(n, np.int64), np.zeros((n, 1))
    return labels, embedding


def _merge_short(labels: np.ndarray, embedding: np.ndarray, starts: np.ndarray,
                 ends: np.ndarray, min_seconds: float) -> np.ndarray:
    """Merge each run of labels shorter than ``min_seconds``, shortest first, into the
    neighbouring run it resembles most (mean ``embedding``); an alternation of two short
    labels thus becomes one section instead of being swallowed by a long neighbour."""
    labels = labels.copy()
    while True:
        change = np.flatnonzero(np.diff(labels)) + 1
        first, last = np.concatenate([[0], change]), np.append(change, len(labels)) - 1
        lengths = ends[last] - starts[first]
        if len(first) < 2 or lengths.min() >= min_seconds:
            return labels
        i = int(np.argmin(lengths))
        here = embedding[first[i]:last[i] + 1].mean(axis=0)
        best, neighbour = np.inf, i
        for j in (i - 1, i + 1):
            if 0 <= j < len(first):
                distance = np.sum((embedding[first[j]:last[j] + 1].mean(axis=0) - here) ** 2)
                if distance < best:
                    best, neighbour = distance, j
        labels[first[i]:last[i] + 1] = labels[first[neighbour]]
