"""The reactive analysis: a streaming STFT reduced to mel, chroma and RMS rows every hop
(23 ms) for the whole song, then HPSS, onsets, events, beats and sections derived from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ganclip.features.beats import STEADY_CONFIDENCE, tempo_confidence, track_beats
from ganclip.features.sections import segment
from ganclip.features.settings import CHUNK_ROWS, FeatureSettings
from ganclip.features.spectra import to_db

HIT_ROWS = 3  # a hit's loudness is its peak over its onset row and the next two (~70 ms)
EVENT_GAP = 0.1  # seconds: an event closer than this after a stronger one is part of it
EVENT_DELTA = 0.1  # an event's flux is this much (of the song's peak flux) above its neighbours
EVENT_BANDS = 3  # mel bands of the previous row's max filter in the flux: a glide is no onset


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
    events: np.ndarray  # [e] seconds, onsets of any kind (a note, a chord, a swell, a hit)
    event_level: np.ndarray  # [n] float32 dB, hit_level of the full mel energy per row
    chroma: np.ndarray  # [12, n] float32, each column's largest pitch class = 1
    rms: np.ndarray  # [n] float32 RMS of the waveform
    tempo_confidence: float  # 0..1, how periodic the percussive onsets are
    tempo: float  # BPM, from the median beat interval; 0 when not steady
    beats: np.ndarray  # [b] seconds; none when not steady
    beat_labels: np.ndarray  # [b] int section label of each beat
    sections: np.ndarray  # [s, 2] seconds (start, end) of each section, end of one = next start
    section_labels: np.ndarray  # [s] int, the same label for a section that comes back

    @property
    def boundaries(self) -> np.ndarray:
        """Start times of every section after the first, in seconds."""
        return self.sections[1:, 0]

    @property
    def steady(self) -> bool:
        """Whether the song has a beat: tempo confidence above
        :data:`~ganclip.features.beats.STEADY_CONFIDENCE`. Without one, ``tempo`` is 0 and
        there are no beats; ``events`` are what happens."""
        return self.tempo_confidence > STEADY_CONFIDENCE


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
    """HPSS on the mel spectrogram, percussive onsets, events, beats and sections from the
    rows.

    HPSS runs on the 128 mel bands, not the 1025 STFT bins: 8× less median filtering
    (a 3-minute song's full-resolution HPSS takes ~10 s on the development machine).
    Beats are tracked only when the percussive onsets are periodic enough
    (:func:`~ganclip.features.beats.tempo_confidence`); music without a steady beat gets
    no beats, tempo 0 and sections on a time grid, and moves with its ``events``.
    """
    import librosa

    s = settings
    times = librosa.frames_to_time(np.arange(mel.shape[1]), sr=sr, hop_length=s.hop)
    mel = mel.astype(np.float32, copy=False)
    harmonic, percussive_energy, onset = _hpss(mel, s.hpss_kernel, sr=sr, hop=s.hop)
    onsets = librosa.onset.onset_detect(onset_envelope=onset, sr=sr, hop_length=s.hop,
                                        units="time")
    events = _events(mel, sr=sr, hop=s.hop)
    confidence = tempo_confidence(onset, sr=sr, hop=s.hop)
    tempo, beats = 0.0, np.zeros(0)
    if confidence > STEADY_CONFIDENCE:
        tempo, beats = track_beats(onset, sr=sr, hop=s.hop, level=hit_level(percussive_energy))
    beat_labels, sections, section_labels = segment(mel, chroma, beats, sr=sr, hop=s.hop,
                                                    duration=duration, settings=s)
    return SongFeatures(sr=sr, hop=s.hop, duration=duration, times=times,
                        mel=mel, harmonic_mel=harmonic,
                        harmonic=harmonic.sum(axis=0).astype(np.float32),
                        percussive=percussive_energy.astype(np.float32),
                        onset=onset, onsets=onsets, events=events,
                        event_level=hit_level(mel.sum(axis=0)),
                        chroma=chroma.astype(np.float32), rms=rms.astype(np.float32),
                        tempo_confidence=confidence, tempo=tempo, beats=beats,
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
    return to_db(peak, floor_db=-120.0).astype(np.float32)


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


def _events(mel: np.ndarray, *, sr: int, hop: int) -> np.ndarray:
    """Onsets of any kind: peaks of the spectral flux of the whole mel spectrogram (in dB, an
    80 dB floor below its peak), harmonic part included, so a sung note, a chord or a call
    is one, not only a hit. The flux compares each band with the loudest of the
    :data:`EVENT_BANDS` around it in the row before (SuperFlux, Böck & Widmer 2013): a
    pitch that glides or wavers moves into a neighbouring band, which is no new sound (the
    plain flux found a second event on every rising call). Computed :data:`CHUNK_ROWS` rows
    at a time, each with the few rows before it that its first rows' flux reads (as in
    :func:`_hpss`). A peak counts when it stands :data:`EVENT_DELTA` of the song's largest
    flux above the flux around it and :data:`EVENT_GAP` after the last one.

    Returns
    -------
    events : np.ndarray [shape=(e,)], seconds
    """
    import librosa

    n = mel.shape[1]
    if n < 2:
        return np.zeros(0)
    peak = float(mel.max()) or 1.0
    flux = np.empty(n, np.float32)
    for a in range(0, n, CHUNK_ROWS):
        lo, b = max(0, a - 8), min(n, a + CHUNK_ROWS)
        db = np.maximum(librosa.power_to_db(mel[:, lo:b], ref=peak, top_db=None), -80.0)
        flux[a:b] = librosa.onset.onset_strength(S=db, sr=sr, hop_length=hop,
                                                 max_size=EVENT_BANDS)[a - lo:]
    if not np.any(flux > 0):
        return np.zeros(0)
    rows = 1 + int(EVENT_GAP * sr / hop)
    found = librosa.util.peak_pick(flux / flux.max(), pre_max=rows, post_max=rows,
                                   pre_avg=rows, post_avg=rows, delta=EVENT_DELTA, wait=rows)
    return librosa.frames_to_time(found, sr=sr, hop_length=hop)
