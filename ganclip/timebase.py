"""Frame timing shared by the analysis and the video: exact rates and frame counts."""

from __future__ import annotations

from fractions import Fraction


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
