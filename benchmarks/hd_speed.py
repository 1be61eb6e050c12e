"""HD at the encoder's speed: a whole render against libx264 alone, side by side.

    python benchmarks/hd_speed.py [--sizes 1920x1080 1080x1920 3840x2160] [--seconds 10]
                                  [--fps 30] [--song SONG]

For each size it renders ``--seconds`` of the song with the built-in ``cppn`` generator
(analysis, drawing, colour conversion, encoding, audio and the final join all included),
then decodes the video it made and times libx264 ``veryfast`` crf 20 (the render's own
settings) encoding those same frames alone, from YUV frames already in memory. The ratio
render / encoder is the figure: 1 would be a render as fast as its encoder. The real-time
factor is seconds of video per second of wall time.
"""

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

import ganclip

ROOT = Path(__file__).resolve().parents[1]


def encode_alone(frames, *, width: int, height: int, fps: float, path: Path) -> float:
    """Seconds libx264 veryfast crf 20 takes to encode ``frames`` (yuv420p VideoFrames)."""
    began = time.perf_counter()
    with av.open(str(path), "w") as out:
        rate = Fraction(fps).limit_denominator(1001)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        stream.thread_type = "AUTO"
        for i, frame in enumerate(frames):
            frame.pts, frame.time_base = i, 1 / rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return time.perf_counter() - began


def decoded(path: Path) -> list:
    with av.open(str(path)) as c:
        return [f.reformat(format="yuv420p") for f in c.decode(video=0)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1920x1080", "1080x1920", "3840x2160"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--song", default=str(ROOT / "audioFiles" / "vibe_ace.ogg"))
    parser.add_argument("--start", type=float, default=20.0)
    args = parser.parse_args()
    ganclip.analyze(args.song, duration=1.0)  # librosa's numba code compiles once, not timed
    print(f"{Path(args.song).name}, {args.seconds:g} s from {args.start:g} s at {args.fps:g} "
          "fps, cppn, libx264 veryfast crf 20\n")
    print(f"{'size':>10} {'frames':>6} {'render s':>8} {'encoder s':>9} {'ratio':>6} "
          f"{'render fps':>10} {'encoder fps':>11} {'real time':>9}")
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "render.mp4"
            began = time.perf_counter()
            result = ganclip.render(args.song, output=out, size=size, fps=args.fps,
                                    start=args.start, duration=args.seconds, model="cppn",
                                    quiet=True)
            render_s = time.perf_counter() - began
            frames = decoded(out)
            encode_s = encode_alone(frames, width=w, height=h, fps=args.fps,
                                    path=Path(tmp) / "alone.mp4")
        n = len(frames)
        print(f"{size:>10} {n:6d} {render_s:8.1f} {encode_s:9.1f} {render_s / encode_s:5.2f}x "
              f"{n / render_s:10.1f} {n / encode_s:11.1f} {result.duration / render_s:8.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
