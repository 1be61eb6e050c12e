"""Frames per second of the built-in cppn generator (no video encoding).

    python benchmarks/cppn_speed.py [--sizes 256 512 1920x1080] [--batch 8] [--frames 64]
"""

import argparse
import time

import numpy as np
import torch

from ganclip.generators.cppn import CPPN
from ganclip.imagetypes import BUILTIN_TYPES
from ganclip.options import parse_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["256", "512", "1920x1080"],
                        help="WxH, one side or a preset each")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, "
          f"batch {args.batch}")
    for size in map(parse_size, args.sizes):
        gen = CPPN(size=size)
        z = rng.uniform(-1, 1, (args.batch, 128)).astype(np.float32)
        y = np.stack([BUILTIN_TYPES[i % len(BUILTIN_TYPES)].class_vector()
                      for i in range(args.batch)])
        t = np.full(args.batch, 0.6, np.float32)
        gen(z, y, t)  # warm-up
        began = time.perf_counter()
        done = 0
        while done < args.frames:
            gen(z + done * 1e-3, y, t)
            done += args.batch
        seconds = time.perf_counter() - began
        print(f"cppn {size[0]}x{size[1]} (coloured at {gen.drawn[0]}x{gen.drawn[1]}): "
              f"{done / seconds:6.1f} frames/s "
              f"({1000 * seconds / done:.1f} ms/frame)")


if __name__ == "__main__":
    main()
