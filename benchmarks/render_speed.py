"""Wall time and real-time factor of a full render, analysis and encoding included.

    python benchmarks/render_speed.py [SONG] [--size 256 | WxH | preset] [--fps 30]

SONG defaults to the demo track, audioFiles/vibe_ace.ogg (about 60 s).
"""

import argparse
import tempfile
import time
from pathlib import Path

import ganclip

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("song", nargs="?", default=str(ROOT / "audioFiles" / "vibe_ace.ogg"))
    parser.add_argument("--size", default="256", help="WxH, one side or a preset")
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--model", default="cppn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        result = ganclip.render(args.song, output=Path(tmp) / "out.mp4", size=args.size,
                                fps=args.fps, model=args.model, quiet=True)
        wall = time.perf_counter() - began
    print(f"{Path(args.song).name}: {result.duration:.1f} s of video, {result.frames} frames "
          f"at {args.size}/{args.fps:g} fps with {result.model}")
    print(f"wall {wall:.1f} s, {result.frames / wall:.1f} frames/s, "
          f"real-time factor {result.duration / wall:.2f} (video seconds per wall second)")


if __name__ == "__main__":
    main()
