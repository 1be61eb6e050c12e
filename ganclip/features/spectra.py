"""The classic analysis: one mel spectrum per video frame, over exactly that frame's slice
of audio. Unlike GAN_PI-2, the 128 bands are fixed in Hz (a mel filterbank), not in FFT bins,
so any frame rate gives the same bands."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np

from ganclip.timebase import frame_count


@dataclass(frozen=True)
class BandSettings:
    """How the per-frame spectrum is folded into latent bands."""

    n_bands: int = 128  # one band per latent dimension
    fmin: float = 30.0  # Hz, lowest band edge; below it is rumble
    fmax: float | None = None  # Hz, highest band edge; None = Nyquist
    min_fft: int = 4096  # FFT size floor; slices are zero-padded to it so no band is empty


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
