"""Beats that follow tempo changes, and the tempo from the beats themselves."""

from __future__ import annotations

import numpy as np

from ganclip.features.settings import SILENT_BEAT_DB

HALF_TEMPO_DB = 3.0  # hits halfway between beats this close to the beats' loudness: half tempo
MAX_BPM = 190.0  # doubling a tempo that was tracked at half never goes above this
TEMPO_CHUNK_ROWS = 2048  # the tempogram's are 345 lags deep, and complex while computed
STEADY_CONFIDENCE = 0.4  # tempo confidence above which a song has a beat (see tempo_confidence)
PULSE_WINDOW = 10.0  # seconds of onsets whose periodicity is measured at a time
PULSE_STEP = 2.5  # seconds between the starts of those windows
PULSE_LAGS = (0.25, 1.5)  # seconds: the beat periods looked for (240 to 40 BPM)
PULSE_REPEATS = 4  # a beat period must recur at 1, 2, 3 and 4 times itself
NO_ONSET = 1.0  # onset strength (mean dB rise per band) below which a window holds no onset


def _double_where_offbeats_hit(beats: np.ndarray, level: np.ndarray, *, rate: float):
    """Add the half-way points of the beat intervals where the tracker runs at half tempo.

    The tracker's tempo prior favours ~120 BPM, so a 170 BPM kick-snare groove is often
    tracked at 85 on the kicks or the snares alone: halfway between its beats fall hits as
    loud as the beats. Where the median of (hit level halfway − level at the beats), over
    the interval and those of about its length (±15 %) among the 4 on each side, is above
    -:data:`HALF_TEMPO_DB` and the doubled tempo stays at most :data:`MAX_BPM`, the halfway
    points become beats. (The opposite slip, 70 BPM tracked at 140 on the hats, is not undone
    here: it has the shape of a half-time groove at 140, which is how such music is counted.
    Pulses follow the hits' loudness, so the hats barely jolt.)
    """
    if len(beats) < 4:
        return beats
    rows = np.arange(len(level))
    at = lambda t: np.interp(t * rate, rows, level)  # noqa: E731
    mids = (beats[1:] + beats[:-1]) / 2
    gap = at(mids) - np.maximum(at(beats[1:]), at(beats[:-1]))
    loud = at(mids) > np.percentile(at(beats), 90) - 20  # a hit, not the quiet between two
    length = np.diff(beats)
    local = np.empty(len(gap))
    for i in range(len(gap)):
        near = slice(max(0, i - 4), i + 5)
        alike = np.abs(length[near] / length[i] - 1) < 0.15
        local[i] = np.median(gap[near][alike])
    double = (local > -HALF_TEMPO_DB) & loud & (length >= 2 * 60.0 / MAX_BPM)
    return np.sort(np.concatenate([beats, mids[double]]))


def _tempo_curve(onset: np.ndarray, *, sr: int, hop: int) -> tuple[float, np.ndarray]:
    """librosa's global tempo and tempo per row (``feature.tempo`` with and without
    aggregation), from the tempogram computed :data:`TEMPO_CHUNK_ROWS` rows at a time.

    The whole tempogram of a 60-minute song is 345 lags × 155 000 rows, 0.4 GB in float64
    and several times that while it is computed; each of its columns only reads the onsets
    within half a window, so chunks with that much margin give the same columns.
    """
    import librosa

    win = int(librosa.time_to_frames(8.0, sr=sr, hop_length=hop))  # tempo()'s ac_size=8 s
    n = len(onset)
    local, total = np.empty(n), np.zeros((win, 1))
    for a in range(0, n, TEMPO_CHUNK_ROWS):
        b = min(n, a + TEMPO_CHUNK_ROWS)
        lo, hi = max(0, a - win), min(n, b + win)
        tg = librosa.feature.tempogram(onset_envelope=onset[lo:hi], sr=sr, hop_length=hop,
                                       win_length=win)[:, a - lo:b - lo]
        local[a:b] = librosa.feature.tempo(tg=tg, sr=sr, hop_length=hop, aggregate=None)
        total[:, 0] += tg.sum(axis=1)
    overall = librosa.feature.tempo(tg=total / n, sr=sr, hop_length=hop, aggregate=None)
    return float(overall[0]), local


def tempo_confidence(onset: np.ndarray, *, sr: int, hop: int) -> float:
    """How periodic the onsets are, 0..1: near 1 for a drum groove, near 0.1-0.3 for onsets at
    irregular times (calls, rubato chords, speech, noise).

    In windows of :data:`PULSE_WINDOW` seconds every :data:`PULSE_STEP`, the onset
    envelope's autocorrelation (mean removed, unbiased, 1 at lag 0) is read at a candidate
    beat period and at 2, 3 and 4 times it (±1 row, as beats fall on the row grid); the
    window's score is the best mean over periods in :data:`PULSE_LAGS`. The song's is the
    mean of its windows' weighted by the envelope's spread in each, so silence and steady
    tones do not dilute a groove, and a window whose strongest onset is below
    :data:`NO_ONSET` scores 0 (a held chord's envelope is faint, smooth and falsely periodic).

    Why this measure: one autocorrelation peak (pulse clarity) is also high when two events
    happen to be a period apart, or on a smooth envelope at short lags; irregular events
    rarely repeat at four multiples of one period, a beat always does, syncopated or swung
    (the hats and off-beats fill other lags but do not lower these). It reads the onsets
    alone, not the tracker's beats: the tracker fits regular beats to any onsets. On the
    development tracks the grooves of tests/synth.py score 0.85-0.96, real drum recordings
    0.5-0.6, irregular synthetic calls and chords 0.15-0.3, a solo trumpet 0.23.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    rate = sr / hop  # rows per second
    n = min(len(onset), int(PULSE_WINDOW * rate))
    if n < 8:
        return 0.0
    step = max(1, int(PULSE_STEP * rate))
    frames = sliding_window_view(onset.astype(np.float64), n)
    frames = frames[np.unique(np.append(np.arange(0, len(frames), step), len(frames) - 1))]
    x = frames - frames.mean(axis=1, keepdims=True)
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * n, axis=1)) ** 2, axis=1)[:, :n]
    ac /= n - np.arange(n)  # unbiased: each lag's mean product
    spread = x.std(axis=1)
    ac /= np.maximum(ac[:, :1], 1e-12)
    lags = np.arange(PULSE_LAGS[0] * rate, PULSE_LAGS[1] * rate + 1e-9, 0.5)
    lags = lags[PULSE_REPEATS * lags + 1 < n - 1]
    if len(lags) == 0:
        return 0.0
    at = np.round(np.arange(1, PULSE_REPEATS + 1)[:, None] * lags).astype(int)  # [k, lags]
    near = np.stack([ac[:, at + d] for d in (-1, 0, 1)]).max(axis=0)  # [windows, k, lags]
    score = near.mean(axis=1).max(axis=1)
    score[frames.max(axis=1) < NO_ONSET] = 0.0
    if spread.sum() <= 0:
        return 0.0
    return float(np.clip(np.average(score, weights=spread), 0.0, 1.0))


def track_beats(onset: np.ndarray, *, sr: int, hop: int,
                level: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Beat times that follow tempo changes, and the tempo from the median beat interval.

    librosa's tracker is given a tempo per row (``feature.tempo(aggregate=None)``, 8 s
    windows) so a song that speeds up keeps its beats. Local estimates within 4% of the
    global tempo, or of its double or half (octave slips), are set to the global tempo, so a
    steady song is tracked at one steady tempo. The returned tempo comes from the beats
    themselves (the median of 8-beat spans), finer than the tempo estimator's lag grid and
    the 23 ms rows (±2% at 120 BPM). With ``level`` (:func:`hit_level` per row), the
    leading and trailing beats in near-silence are dropped (else librosa's own trim) and
    stretches tracked at half tempo are doubled (:func:`_double_where_offbeats_hit`).

    Returns
    -------
    tempo : float, BPM (0 when fewer than two beats)
    beats : np.ndarray [shape=(b,)], seconds
    """
    import librosa

    if len(onset) < 8 or not np.any(onset > 0):
        return 0.0, np.zeros(0)
    overall, local = _tempo_curve(onset, sr=sr, hop=hop)
    for octave in (0.5, 1.0, 2.0):
        local[np.abs(local / (overall * octave) - 1) < 0.04] = overall
    _, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=hop,
                                       bpm=local, units="time", trim=level is None)
    beats = np.asarray(beats, np.float64)
    if level is not None and len(beats):
        # librosa's trim also cuts real beats at the ends of a fast stretch; trim only the
        # leading and trailing beats that fall in near-silence
        heard = np.interp(beats * sr / hop, np.arange(len(level)), level) \
            > np.percentile(level, 95) - SILENT_BEAT_DB
        beats = beats[np.argmax(heard):len(heard) - np.argmax(heard[::-1])] if heard.any() \
            else beats[:0]
        beats = _double_where_offbeats_hit(beats, level, rate=sr / hop)
    span = min(8, len(beats) - 1)  # beats sit on the 23 ms row grid: average over 8 intervals
    tempo = 60.0 * span / float(np.median(beats[span:] - beats[:-span])) if span > 0 else 0.0
    return tempo, beats
