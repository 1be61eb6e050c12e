"""Peak RSS of a render as the song gets longer: it should stay flat.

    python benchmarks/memory.py [--minutes 1 10] [--size 128 | WxH | 4k] [--fps 30]

Each song is the demo track looped to the length wanted, written as FLAC; each
render runs in its own process and its peak RSS comes from the OS (wait4).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def looped_song(path: Path, minutes: float) -> Path:
    """Write ``minutes`` of the demo track, looped, without holding it all in memory."""
    demo, sr = sf.read(ROOT / "audioFiles" / "vibe_ace.ogg", dtype="float32", always_2d=True)
    left = int(minutes * 60 * sr)
    with sf.SoundFile(path, "w", samplerate=sr, channels=demo.shape[1], format="FLAC") as f:
        while left > 0:
            f.write(demo[:left])
            left -= min(left, len(demo))
    return path


def peak_rss(argv) -> tuple[float, float]:
    """Run a command; return (peak RSS in MiB, wall seconds)."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"render failed: {proc.stderr.read().decode()}")
    return usage.ru_maxrss / 1024, time.perf_counter() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--size", default="128", help="WxH, one side, or a preset")
    parser.add_argument("--fps", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for minutes in args.minutes:
            song = looped_song(Path(tmp) / f"song_{minutes:g}min.flac", minutes)
            rss, wall = peak_rss([sys.executable, "-m", "ganclip", "render", str(song), "-o",
                                  str(Path(tmp) / "out.mp4"), "--size", str(args.size),
                                  "--fps", str(args.fps), "--model", "cppn", "-q"])
            rows.append((minutes, rss, wall))
            print(f"{minutes:5g} min song: peak RSS {rss:7.1f} MiB, wall {wall:6.1f} s", flush=True)
    base = rows[0][1]
    for minutes, rss, _ in rows[1:]:
        print(f"{minutes:g} min / {rows[0][0]:g} min peak RSS: {rss / base:.2f}x")


if __name__ == "__main__":
    main()
