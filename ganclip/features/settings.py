"""How the song-level features are computed, and the sizes shared by their stages."""

from __future__ import annotations

from dataclasses import dataclass


CHUNK_ROWS = 8192  # rows (3 min) per piece of the analyses that run in pieces on long songs
SILENT_BEAT_DB = 30.0  # leading/trailing beats this far below the song's loud hits are dropped


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
