"""Seconds to compute every reactive feature of a 3-minute song (after numba's first compile).

    python benchmarks/features_speed.py [SONG] [--minutes 3]

The song (default: the demo track) is decoded once and tiled to the length; a warm-up run on
10 s compiles librosa's numba code first. Prints decode and feature times separately.
"""

import argparse
import time

import numpy as np

from ganclip import audio
from ganclip.features import song_features


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("song", nargs="?", default="audioFiles/vibe_ace.ogg")
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    began = time.perf_counter()
    signal = audio.load_audio(args.song)
    decode = time.perf_counter() - began
    n = int(args.minutes * 60 * audio.ANALYSIS_RATE)
    song = np.tile(signal, n // len(signal) + 1)[:n]
    song_features([song[:10 * audio.ANALYSIS_RATE]], sr=audio.ANALYSIS_RATE)  # compile
    began = time.perf_counter()
    f = song_features(np.array_split(song, max(1, n // 65536)), sr=audio.ANALYSIS_RATE)
    took = time.perf_counter() - began
    print(f"decode of {len(signal) / audio.ANALYSIS_RATE:.1f} s: {decode:.2f} s; all features "
          f"of {args.minutes:g} min: {took:.2f} s ({len(f.beats)} beats, {len(f.sections)} "
          f"sections, tempo {f.tempo:.1f})")


if __name__ == "__main__":
    main()
