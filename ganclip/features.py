"""Numbers about the sound, one row per video frame.

The classic analysis is the seed's: one spectrum per video frame over exactly
that frame's slice of audio. Unlike the seed, the 128 bands are fixed in Hz
(a mel filterbank), not in FFT bins, so any frame rate gives the same bands.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Iterable

import numpy as np

HIT_ROWS = 3  # a hit's loudness is its peak over its onset row and the next two (~70 ms)
HALF_TEMPO_DB = 3.0  # hits halfway between beats this close to the beats' loudness: half tempo
MAX_BPM = 190.0  # doubling a tempo that was tracked at half never goes above this
CHUNK_ROWS = 8192  # rows (3 min) per piece of the analyses that run in pieces on long songs
TEMPO_CHUNK_ROWS = 2048  # the tempogram's are 345 lags deep, and complex while computed
MAX_SECTION_UNITS = 1200  # segmentation units (beats, or groups of beats in a long song):
# its graph is units², its eigendecomposition units³ (1200: 0.5 s, 12 MB)
SILENT_BEAT_DB = 30.0  # leading/trailing beats this far below the song's loud hits are dropped
RECURRENCE_WIDTH = 3  # units a recurrence must be apart: a repeat, not the next beat
MIN_CLUSTER_UNITS = 2 * RECURRENCE_WIDTH + 3  # fewer sounding units are one section (librosa
# needs width < (units - 1) / 2; a 4 s song has ~8 beats)


@dataclass(frozen=True)
class BandSettings:
    """How the per-frame spectrum is folded into latent bands."""

    n_bands: int = 128  # one band per latent dimension
    fmin: float = 30.0  # Hz, lowest band edge; below it is rumble
    fmax: float | None = None  # Hz, highest band edge; None = Nyquist
    min_fft: int = 4096  # FFT size floor; slices are zero-padded to it so no band is empty


def frame_rate(fps: float) -> Fraction:
    """Exact frame rate; the NTSC rates 23.976, 29.97, 59.94 … become 24000/1001 ….

    Analysis and video both use this one value, so frame times never drift
    from the video's timestamps.
    """
    whole = round(fps)
    if abs(fps - whole) < 1e-6:
        return Fraction(whole)
    ntsc = round(fps * 1.001)  # the NTSC rates are whole rates slowed by 1000/1001
    if ntsc and abs(fps - ntsc / 1.001) < 1e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def frame_count(n_samples: int, *, sr: int, fps: float) -> int:
    """Number of video frames for ``n_samples`` of audio: ``round(duration × fps)``."""
    return int(round(n_samples * fps / sr))


def frame_edges(n_frames: int, *, sr: int, fps: float) -> np.ndarray:
    """Sample index where each frame's slice starts, plus the end of the last.

    Frame ``i`` shows the audio in ``[i / fps, (i + 1) / fps)`` seconds, so its
    timestamp in the video and its slice of audio agree exactly.

    Returns
    -------
    edges : np.ndarray [shape=(n_frames + 1,)], int64 sample indices
    """
    return np.round(np.arange(n_frames + 1) * (sr / fps)).astype(np.int64)


def fft_size(*, sr: int, fps: float, settings: BandSettings = BandSettings()) -> int:
    """Smallest power of two that holds one frame's slice, at least ``min_fft``."""
    longest = int(np.ceil(sr / fps)) + 1
    return max(settings.min_fft, 1 << (longest - 1).bit_length())


@lru_cache(maxsize=8)
def _mel_matrix(sr: int, n_fft: int, n_bands: int, fmin: float, fmax: float | None) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_bands, fmin=fmin, fmax=fmax,
                               dtype=np.float32)


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    import scipy.signal

    return scipy.signal.get_window("hann", n).astype(np.float32)


class FrameSpectra:
    """Streaming per-frame mel band energies.

    Feed blocks of mono audio with :meth:`push`, then call :meth:`finish`. Only
    the unfinished frame's samples and the per-frame bands are kept, so memory
    grows with the number of frames (128 floats each), never with the audio.
    """

    def __init__(self, *, sr: int, fps: float, settings: BandSettings = BandSettings()):
        self.sr, self.fps = sr, fps
        self.n_fft = fft_size(sr=sr, fps=fps, settings=settings)
        self.mel = _mel_matrix(sr, self.n_fft, settings.n_bands, settings.fmin, settings.fmax)
        self.buffer = np.zeros(0, np.float32)
        self.offset = 0  # sample index of buffer[0]
        self.rows: list[np.ndarray] = []
        self.done = 0  # frames computed
        self.n_samples = 0

    def _edge(self, i: int) -> int:
        return int(round(i * self.sr / self.fps))

    def _spectra(self, slices: list[np.ndarray]) -> np.ndarray:
        batch = np.zeros((len(slices), self.n_fft), np.float32)
        for row, piece in zip(batch, slices):
            row[:len(piece)] = piece * _hann(len(piece))
        power = np.abs(np.fft.rfft(batch, axis=1)) ** 2
        return (power.astype(np.float32) @ self.mel.T).astype(np.float32)

    def push(self, block: np.ndarray) -> None:
        """Add the next block of mono audio (float32, any length)."""
        self.buffer = np.concatenate([self.buffer, block.astype(np.float32, copy=False)])
        self.n_samples += len(block)
        slices = []
        end = self.offset + len(self.buffer)
        while self._edge(self.done + 1) <= end:
            a, b = self._edge(self.done) - self.offset, self._edge(self.done + 1) - self.offset
            slices.append(self.buffer[a:b])
            self.done += 1
        if slices:
            self.rows.append(self._spectra(slices))
            cut = self._edge(self.done) - self.offset
            self.buffer, self.offset = self.buffer[cut:].copy(), self.offset + cut

    def finish(self) -> np.ndarray:
        """Close the stream; the last frame is zero-padded past the end of the audio.

        Returns
        -------
        bands : np.ndarray [shape=(n_frames, n_bands)], float32 power per mel band,
            with ``n_frames = round(duration × fps)``.
        """
        total = frame_count(self.n_samples, sr=self.sr, fps=self.fps)
        slices = []
        while self.done < total:
            a = self._edge(self.done) - self.offset
            b = self._edge(self.done + 1) - self.offset
            slices.append(self.buffer[a:b])  # may be short: the rest is zero
            self.done += 1
        if slices:
            self.rows.append(self._spectra(slices))
        self.rows = [np.concatenate(self.rows)[:total]] if self.rows else []
        return self.rows[0] if self.rows else np.zeros((0, self.mel.shape[0]), np.float32)


def frame_spectra(blocks: Iterable[np.ndarray], *, sr: int, fps: float,
                  settings: BandSettings = BandSettings()) -> np.ndarray:
    """Mel band power of every video frame's slice of audio.

    Parameters
    ----------
    blocks : iterable of np.ndarray [shape=(n,)], mono float32 at ``sr`` Hz
    sr : int, Hz
    fps : float, video frames per second

    Returns
    -------
    bands : np.ndarray [shape=(round(duration × fps), n_bands)], float32
    """
    spectra = FrameSpectra(sr=sr, fps=fps, settings=settings)
    for block in blocks:
        spectra.push(block)
    return spectra.finish()


def to_db(power: np.ndarray, *, floor_db: float = -100.0) -> np.ndarray:
    """Power to decibels, floored at ``floor_db`` (the power is clipped there first), so
    silence is a finite constant; the dtype of ``power`` is kept."""
    return 10.0 * np.log10(np.maximum(power, 10.0 ** (floor_db / 10.0)))


# ---------------------------------------------------------------------------------------------
# the reactive analysis: one row every hop (23 ms), for the whole song, then beats and sections


@dataclass(frozen=True)
class FeatureSettings:
    """How the song-level features are computed (librosa's defaults where they fit)."""

    n_fft: int = 2048  # samples per STFT frame (93 ms at 22.05 kHz)
    hop: int = 512  # samples between rows: 23 ms at 22.05 kHz
    n_mels: int = 128  # mel bands in Hz, as in the classic analysis
    fmin: float = 30.0  # Hz, lowest mel band edge
    hpss_kernel: tuple[int, int] = (31, 7)  # median widths: 31 rows in time (0.7 s), 7 mel bands
    min_section: float = 6.0  # seconds: shorter sections are merged into a neighbour
    max_section_kinds: int = 8  # most distinct section labels the segmentation looks for


@dataclass
class SongFeatures:
    """Numbers about a whole song: rows every ``hop / sr`` seconds, plus beats and sections.

    Times are seconds from the start of the analysed audio. Rows are centred on
    ``times`` (``librosa``'s ``center=True`` convention).
    """

    sr: int  # Hz
    hop: int  # samples between rows
    duration: float  # seconds of audio
    times: np.ndarray  # [n] seconds, the centre of each row
    mel: np.ndarray  # [n_mels, n] float32 power per mel band
    harmonic_mel: np.ndarray  # [n_mels, n] float32, the HPSS harmonic part of ``mel``
    harmonic: np.ndarray  # [n] float32 harmonic energy (sum of the HPSS harmonic mel power)
    percussive: np.ndarray  # [n] float32 percussive energy
    onset: np.ndarray  # [n] float32 onset strength of the percussive part
    onsets: np.ndarray  # [k] seconds, percussive onsets
    chroma: np.ndarray  # [12, n] float32, each column's largest pitch class = 1
    rms: np.ndarray  # [n] float32 RMS of the waveform
    tempo: float  # BPM, from the median beat interval
    beats: np.ndarray  # [b] seconds
    beat_labels: np.ndarray  # [b] int section label of each beat
    sections: np.ndarray  # [s, 2] seconds (start, end) of each section, end of one = next start
    section_labels: np.ndarray  # [s] int, the same label for a section that comes back

    @property
    def boundaries(self) -> np.ndarray:
        """Start times of every section after the first, in seconds."""
        return self.sections[1:, 0]


class SongAnalyzer:
    """Streaming STFT reduced at once to mel, chroma and RMS rows; the rest at :meth:`finish`.

    Only an STFT frame's worth of samples is buffered and only the reduced rows
    (141 floats per 23 ms) are kept, so memory does not grow with the audio's sample count.
    The rows go into arrays sized for ``seconds`` of audio when that is known (a long song's
    rows then never exist twice), grown by half when it is not or was short.
    """

    def __init__(self, *, sr: int, settings: FeatureSettings = FeatureSettings(),
                 seconds: float | None = None):
        import librosa

        self.sr, self.settings = sr, settings
        s = settings
        self.mel_basis = librosa.filters.mel(sr=sr, n_fft=s.n_fft, n_mels=s.n_mels, fmin=s.fmin)
        # centre the first frame on t = 0 as librosa does, with zeros before the song
        self.buffer = np.zeros(s.n_fft // 2, np.float32)
        self.n_samples = 0
        rows = 2 + int((seconds or 60.0) * sr) // s.hop
        self.mel = np.empty((s.n_mels, rows), np.float32)
        self.chroma = np.empty((12, rows), np.float32)
        self.rms = np.empty(rows, np.float32)
        self.filled = 0

    def _keep(self, mel: np.ndarray, chroma: np.ndarray, rms: np.ndarray) -> None:
        n = len(rms)
        if self.filled + n > len(self.rms):
            size = max(self.filled + n, len(self.rms) * 3 // 2)
            for name in ("mel", "chroma", "rms"):
                old = getattr(self, name)
                grown = np.empty(old.shape[:-1] + (size,), np.float32)
                grown[..., :self.filled] = old[..., :self.filled]
                setattr(self, name, grown)
        at = slice(self.filled, self.filled + n)
        self.mel[:, at], self.chroma[:, at], self.rms[at] = mel, chroma, rms
        self.filled += n

    def _frames(self, samples: np.ndarray) -> None:
        import librosa

        s = self.settings
        spectrum = np.abs(librosa.stft(samples, n_fft=s.n_fft, hop_length=s.hop, center=False))
        power = spectrum ** 2
        chroma = librosa.feature.chroma_stft(S=power, sr=self.sr, tuning=0.0)
        rms = librosa.feature.rms(S=spectrum, frame_length=s.n_fft)[0]
        self._keep(self.mel_basis @ power, chroma, rms)

    def push(self, block: np.ndarray) -> None:
        """Add the next block of mono float32 audio at ``sr``."""
        s = self.settings
        self.n_samples += len(block)
        self.buffer = np.concatenate([self.buffer, block.astype(np.float32, copy=False)])
        n = (len(self.buffer) - s.n_fft) // s.hop + 1 if len(self.buffer) >= s.n_fft else 0
        if n > 0:
            self._frames(self.buffer[:(n - 1) * s.hop + s.n_fft])
            self.buffer = self.buffer[n * s.hop:].copy()

    def finish(self) -> SongFeatures:
        """Close the stream (zeros after the end, as librosa pads) and derive the rest."""
        s = self.settings
        n_total = 1 + self.n_samples // s.hop
        missing = n_total - self.filled
        if missing > 0:
            tail = np.zeros((missing - 1) * s.hop + s.n_fft, np.float32)
            tail[:len(self.buffer)] = self.buffer[:len(tail)]
            self._frames(tail)
        mel, chroma, rms = (x[..., :n_total] for x in (self.mel, self.chroma, self.rms))
        self.mel = self.chroma = self.rms = None
        return derive(mel, chroma, rms, sr=self.sr, duration=self.n_samples / self.sr,
                      settings=s)


def song_features(blocks: Iterable[np.ndarray], *, sr: int,
                  settings: FeatureSettings = FeatureSettings()) -> SongFeatures:
    """All reactive features of a song streamed as blocks of mono float32 audio at ``sr``."""
    analyzer = SongAnalyzer(sr=sr, settings=settings)
    for block in blocks:
        analyzer.push(block)
    return analyzer.finish()


def derive(mel: np.ndarray, chroma: np.ndarray, rms: np.ndarray, *, sr: int, duration: float,
           settings: FeatureSettings = FeatureSettings()) -> SongFeatures:
    """HPSS on the mel spectrogram, percussive onsets, beats and sections from the rows.

    HPSS runs on the 128 mel bands, not the 1025 STFT bins: 8× less median filtering
    (a 3-minute song's full-resolution HPSS takes ~10 s on the development machine).
    """
    import librosa

    s = settings
    times = librosa.frames_to_time(np.arange(mel.shape[1]), sr=sr, hop_length=s.hop)
    mel = mel.astype(np.float32, copy=False)
    harmonic, percussive_energy, onset = _hpss(mel, s.hpss_kernel, sr=sr, hop=s.hop)
    onsets = librosa.onset.onset_detect(onset_envelope=onset, sr=sr, hop_length=s.hop,
                                        units="time")
    tempo, beats = track_beats(onset, sr=sr, hop=s.hop, level=hit_level(percussive_energy))
    beat_labels, sections, section_labels = segment(mel, chroma, beats, sr=sr, hop=s.hop,
                                                    duration=duration, settings=s)
    return SongFeatures(sr=sr, hop=s.hop, duration=duration, times=times,
                        mel=mel, harmonic_mel=harmonic,
                        harmonic=harmonic.sum(axis=0).astype(np.float32),
                        percussive=percussive_energy.astype(np.float32),
                        onset=onset, onsets=onsets, chroma=chroma.astype(np.float32),
                        rms=rms.astype(np.float32), tempo=tempo, beats=beats,
                        beat_labels=beat_labels, sections=sections,
                        section_labels=section_labels)


def hit_level(energy: np.ndarray) -> np.ndarray:
    """Loudness of a hit at each row, in dB: the energy's peak over the row and the next two
    (an onset's row marks the start of its attack).

    Parameters
    ----------
    energy : np.ndarray [shape=(n,)], power per row (e.g. the percussive mel energy)

    Returns
    -------
    level : np.ndarray [shape=(n,)], float32 dB
    """
    peak = np.max([np.roll(energy, -d) for d in range(HIT_ROWS)], axis=0)
    peak[len(peak) - HIT_ROWS + 1:] = energy[len(peak) - HIT_ROWS + 1:]  # no wrap-around
    return (10 * np.log10(np.maximum(peak, 1e-12))).astype(np.float32)


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


def _hpss(mel: np.ndarray, kernel: tuple[int, int], *, sr: int,
          hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HPSS of the mel spectrogram, and the percussive part's energy and onset strength,
    :data:`CHUNK_ROWS` rows at a time so that a long song needs no more [bands, rows] arrays
    than the harmonic part it keeps.

    Exact in chunks: HPSS's median filters reach ``kernel[0] // 2`` rows and a row's onset
    strength reads the few rows before it, so each chunk is computed with that margin. The
    onset strength is librosa's, on the percussive part in dB with an 80 dB floor below the
    mel spectrogram's peak.

    Returns
    -------
    harmonic : np.ndarray [shape=(n_mels, n)], the harmonic part of ``mel``
    percussive : np.ndarray [shape=(n,)], the percussive part's energy per row
    onset : np.ndarray [shape=(n,)], float32 onset strength of the percussive part
    """
    import librosa

    n = mel.shape[1]
    harmonic = np.empty_like(mel)
    percussive, onset = np.empty(n, mel.dtype), np.empty(n, np.float32)
    peak = float(mel.max()) if mel.size else 1.0
    margin = kernel[0] // 2 + 1 + 8
    for a in range(0, n, CHUNK_ROWS):
        b = min(n, a + CHUNK_ROWS)
        lo, hi = max(0, a - margin), min(n, b + margin)
        h, p = librosa.decompose.hpss(mel[:, lo:hi], kernel_size=kernel)
        harmonic[:, a:b], percussive[a:b] = h[:, a - lo:b - lo], p[:, a - lo:b - lo].sum(axis=0)
        db = np.maximum(librosa.power_to_db(p, ref=peak, top_db=None), -80.0)
        onset[a:b] = librosa.onset.onset_strength(S=db, sr=sr, hop_length=hop)[a - lo:b - lo]
    return harmonic, percussive, onset


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
    several beats keep the work bounded.

    Returns
    -------
    beat_labels : np.ndarray [shape=(b,)], int label of each beat
    sections : np.ndarray [shape=(s, 2)], seconds (start, end); starts are beat times
    section_labels : np.ndarray [shape=(s,)], int, numbered in order of first appearance
    """
    import librosa

    starts = np.asarray(beats, np.float64)
    if len(starts) < 16:
        starts = np.arange(0.5, duration, 0.5)
    else:  # where the tracker found no beats (a quiet intro or outro), a grid of its interval
        step = float(np.median(np.diff(starts)))
        before = starts[0] - step * np.arange(int(starts[0] / step), 0, -1)
        after = starts[-1] + step * np.arange(1, int((duration - starts[-1]) / step) + 1)
        starts = np.concatenate([before[before > 0.05], starts, after[after < duration - 0.05]])
    if len(starts) > MAX_SECTION_UNITS:  # a long song: units of several beats
        starts = starts[::int(np.ceil(len(starts) / MAX_SECTION_UNITS))]
    frames = librosa.time_to_frames(starts, sr=sr, hop_length=hop)
    # one unit per row at most, none empty: a beat on row 0 would make unit 0 empty
    keep = (frames > 0) & (frames < mel.shape[1]) & (np.diff(frames, prepend=0) > 0)
    starts, frames = starts[keep], frames[keep]
    unit_starts = np.concatenate([[0.0], starts])  # unit 0 runs from 0 to the first beat
    labels = np.zeros(len(unit_starts), np.int64)
    embedding = np.zeros((len(unit_starts), 1))
    if len(unit_starts) >= 8 and mel.shape[1] > 1:
        peak = float(mel.max())
        mfcc = np.concatenate([  # in pieces: no [bands, rows] dB copy of a long song
            librosa.feature.mfcc(S=np.maximum(librosa.power_to_db(
                mel[:, a:a + CHUNK_ROWS], ref=peak, top_db=None), -80.0), n_mfcc=13)
            for a in range(0, mel.shape[1], CHUNK_ROWS)], axis=1)
        timbre = librosa.util.sync(mfcc, frames, aggregate=np.mean)
        harmony = librosa.util.sync(chroma, frames, aggregate=np.median)
        # a silent lead-in or fade-out tail is not a section of its own: cluster the
        # sounding units, and give the silent ends their neighbour's label
        loudness = librosa.power_to_db(librosa.util.sync(mel.sum(axis=0, keepdims=True),
                                                         frames, aggregate=np.mean)[0])
        sounding = np.flatnonzero(loudness > loudness.max() - SILENT_BEAT_DB)
        lo, hi = sounding[0], sounding[-1] + 1
        if hi - lo >= MIN_CLUSTER_UNITS:
            inner, inner_embedding = _cluster_units(timbre[:, lo:hi], harmony[:, lo:hi],
                                                    settings.max_section_kinds)
            labels = np.pad(inner, (lo, len(labels) - hi), mode="edge")
            embedding = np.pad(inner_embedding, ((lo, len(labels) - hi), (0, 0)), mode="edge")
    unit_ends = np.append(unit_starts[1:], duration)
    labels = _merge_short(labels, embedding, unit_starts, unit_ends, settings.min_section)
    if len(unit_starts) >= 8 and mel.shape[1] > 1:
        labels = _refine_boundaries(labels, np.vstack([_standard(timbre), _standard(harmony)]))
    change = np.flatnonzero(np.diff(labels)) + 1
    first = np.concatenate([[0], change])
    sections = np.stack([unit_starts[first], np.append(unit_starts[change], duration)], axis=1)
    _, order = np.unique(labels[first], return_index=True)  # number labels by first appearance
    renumber = {old: new for new, old in enumerate(labels[first][np.sort(order)])}
    labels = np.array([renumber[v] for v in labels], np.int64)
    beat_labels = labels[np.clip(np.searchsorted(unit_starts, beats, side="right") - 1, 0,
                                 None)]
    return beat_labels, sections, labels[first]


def _standard(x: np.ndarray) -> np.ndarray:
    """Each row to zero mean and unit variance over time."""
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)


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

    stacked = np.vstack([_standard(timbre), _standard(harmony)])
    n = stacked.shape[1]
    if np.ptp(stacked, axis=1).max() < 1e-3:  # nothing changes (silence, a held tone)
        return np.zeros(n, np.int64), np.zeros((n, 1))
    if n < MIN_CLUSTER_UNITS:  # too few units to tell repeats from neighbours: one section
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
