"""Frames per second of Ray renders (ganclip.cluster): 1 actor against 2, model loads, and
Ray's start-up cost.

    python benchmarks/ray_scaling.py [SONG] [--seconds 24] [--size 512] [--fps 30]

SONG defaults to ../shared/audio/vibe_ace.ogg (else the demo track in audioFiles/). On a
machine of two cores it draws the same plan (cppn, SIZE², SECONDS of the song: 6 segments
of 4 s at the defaults) here without Ray, then on one local Ray with 1 actor of 1 thread,
2 actors of 1 thread each and 1 actor of 2 threads, side by side; the goal is 2 actors
≥ 1.7x one. Then it renders 3 short songs through one pool of 2 actors and counts the
model loads (one per actor, however many songs), and times a render that starts its own
Ray against the same render here. Frames per second count the drawing (Pool.draw or the
local loop), the render's wall time includes the probe, the join and the mux. Other work
on the machine skews every figure: the load average is printed before and after.
"""

import argparse
import importlib
import logging
import os
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ganclip  # noqa: E402
from ganclip import cluster, generators  # noqa: E402
from ganclip.cluster import pool as pool_module  # noqa: E402

render_module = importlib.import_module("ganclip.render")  # ganclip.render is also a function
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "audio"
SHORT = ("choice_drum_bass.ogg", "solo_trumpet.ogg", "sugar_plum_fairy.ogg")

DRAWING = []  # seconds of each Pool.draw or local _draw, the last one last
SEGMENTS = []  # (frames, seconds) of each segment an actor drew, from the -v log


class _Segments(logging.Handler):
    def emit(self, record):
        found = re.search(r"\(frames (\d+)-(\d+)\) drawn on .* in ([\d.]+) s",
                          record.getMessage())
        if found:
            first, last, seconds = found.groups()
            SEGMENTS.append((int(last) - int(first) + 1, float(seconds)))


logging.getLogger("ganclip.cluster").addHandler(_Segments())
logging.getLogger("ganclip.cluster").setLevel(logging.DEBUG)


def timed(function):
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            DRAWING.append(time.perf_counter() - began)
    return wrapper


pool_module.Pool.draw = timed(pool_module.Pool.draw)
render_module._draw = timed(render_module._draw)


def open_pool(address, *, size, **kw):
    return cluster.Pool(address, prepared=generators.prepare("cppn"), quiet=True,
                        load=dict(size=(size, size), seed=0, device="cpu", precision="auto",
                                  quiet=True, fit="extend"), **kw)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = SHARED / "vibe_ace.ogg"
    parser.add_argument("song", nargs="?", default=str(default if default.is_file() else
                                                       ROOT / "audioFiles" / "vibe_ace.ogg"))
    parser.add_argument("--seconds", type=float, default=24.0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--fps", type=float, default=30)
    args = parser.parse_args()
    import ray

    print(f"{Path(args.song).name}: {args.seconds:g} s at {args.size}²/{args.fps:g} fps with "
          f"cppn; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plan = ganclip.analyze(args.song, fps=args.fps, duration=args.seconds)
        plan_path = plan.save(tmp / "plan.npz")
        warm = ganclip.analyze(args.song, fps=args.fps, duration=4.0).save(tmp / "warm.npz")
        # one 4 s segment per actor, so that each has loaded its model and run it once
        warm2 = ganclip.analyze(args.song, fps=args.fps, duration=8.0).save(tmp / "warm2.npz")
        frames = len(plan)

        def draw(name, **kw):
            began = time.perf_counter()
            result = ganclip.render(args.song, output=tmp / f"{name}.mp4", plan_in=plan_path,
                                    size=args.size, quiet=True, restart=True, **kw)
            wall = time.perf_counter() - began
            return frames / DRAWING[-1], wall, result

        rate, wall, _ = draw("local")
        print(f"here, no Ray (torch on every core): {rate:.1f} frames/s drawing, render "
              f"{wall:.1f} s")

        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, logging_level="WARNING")
        rates = {}
        for actors, threads in ((1, 1), (2, 1), (1, 2)):
            with open_pool("local", size=args.size, actors=actors, threads=threads) as pool:
                pool.ready()  # every actor started, then each warmed by a segment
                ganclip.render(args.song, output=tmp / "warm.mp4",
                               plan_in=warm2 if actors > 1 else warm,
                               size=args.size, quiet=True, restart=True, ray=pool)
                SEGMENTS.clear()
                rates[actors, threads], wall, _ = draw(f"ray{actors}", ray=pool)
                each = sum(n for n, _ in SEGMENTS) / sum(t for _, t in SEGMENTS)
                print(f"Ray, {actors} actor{'s' if actors > 1 else ''} x {threads} thread"
                      f"{'s' if threads > 1 else ''}: {rates[actors, threads]:.1f} frames/s "
                      f"drawing ({each:.1f} frames/s in each actor), render {wall:.1f} s, "
                      f"{pool.loads} model load{'s' if pool.loads > 1 else ''}")
        print(f"2 actors x 1 thread / 1 actor x 1 thread: {rates[2, 1] / rates[1, 1]:.2f}x "
              "(goal >= 1.7x)")

        songs = [SHARED / name for name in SHORT if (SHARED / name).is_file()] or \
            [Path(args.song)] * 3
        with open_pool("local", size=128, actors=2, threads=1) as pool:
            for k, song in enumerate(songs):
                ganclip.render(song, output=tmp / f"song{k}.mp4", size=128, fps=args.fps,
                               duration=8.0, quiet=True, ray=pool)
            print(f"{len(songs)} songs of 8 s at 128² through one pool of 2 actors: "
                  f"{pool.loads} model loads")
        ray.shutdown()

        began = time.perf_counter()
        with open_pool("local", size=args.size, actors=2, threads=1) as pool:
            pool.ready()
            opened = time.perf_counter() - began
            began = time.perf_counter()
        closed = time.perf_counter() - began
        print(f"Ray start-up: a local Ray and 2 actors ready in {opened:.1f} s, shut down in "
              f"{closed:.1f} s")
        short = dict(plan_in=warm, size=args.size, quiet=True, restart=True)
        began = time.perf_counter()
        ganclip.render(args.song, output=tmp / "fresh.mp4", ray="local", **short)
        fresh = time.perf_counter() - began
        fresh_draw = DRAWING[-1]
        began = time.perf_counter()
        ganclip.render(args.song, output=tmp / "here.mp4", **short)
        here = time.perf_counter() - began
        print(f"a 4 s render with a fresh local Ray: {fresh:.1f} s, of which "
              f"{fresh_draw:.1f} s drawing (actors starting and loading included) and "
              f"{fresh - fresh_draw:.1f} s starting and stopping Ray; the same render here: "
              f"{here:.1f} s")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
