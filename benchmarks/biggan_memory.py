"""Peak memory that BigGAN-deep's fast path adds while drawing, with and without the side-by-side
tail.

    python benchmarks/biggan_memory.py [--size 512] [--batch 4] [--workers 1 4]

Random weights are made once, in a process of their own (making them peaks far above drawing,
and a child process starts with its parent's peak), and saved to a temporary file. Then for
each ``--workers`` value (``biggan.fast.TAIL_WORKERS``: 1 runs a batch's samples through the
high-resolution tail one after another, more lets them run side by side) a fresh process loads
them, draws two batches and prints its peak RSS before and after: the difference is what drawing
costs on top of the model. The CPU's torch threads bound the workers actually used (2 on the
development machine).
"""

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def make(weights: str, size: int) -> None:
    import torch

    from ganclip.generators.biggan import CONFIGS, random_state_dict

    torch.save(random_state_dict(CONFIGS[f"biggan-deep-{size}"], seed=0), weights)


def child(weights: str, size: int, batch: int, workers: int) -> None:
    import numpy as np
    import torch

    from ganclip.generators import biggan
    from ganclip.generators.biggan import fast as fast_path

    fast_path.TAIL_WORKERS = workers  # read there by FastBigGAN._tail_pool
    config = biggan.CONFIGS[f"biggan-deep-{size}"]
    fast = biggan.FastBigGAN(biggan.build_biggan(torch.load(weights, weights_only=True),
                                                 config))
    z, y = biggan.random_inputs(batch, seed=1)
    t = np.full(batch, 0.5)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):
        fast(z * np.float32(0.5), y, t)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    used = 1 if fast.pool is None else fast.pool[0][0]
    print(f"biggan-deep-{size} batch {batch}, {used} tail worker{'s' * (used > 1)} "
          f"({torch.get_num_threads()} threads): peak RSS {before / 1024:.0f} MiB with the "
          f"model, {after / 1024:.0f} MiB after drawing, +{(after - before) / 1024:.0f} MiB",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, choices=[128, 256, 512])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the weights file, in a child
    parser.add_argument("--make", help=argparse.SUPPRESS)  # make the weights file
    args = parser.parse_args()
    if args.make:
        return make(args.make, args.size)
    if args.child:
        return child(args.child, args.size, args.batch, args.workers[0])
    with tempfile.TemporaryDirectory() as folder:
        weights = str(Path(folder) / "pytorch_model.bin")
        run = [sys.executable, __file__, "--size", str(args.size)]
        subprocess.run(run + ["--make", weights], check=True)
        for workers in args.workers:
            subprocess.run(run + ["--child", weights, "--batch", str(args.batch), "--workers",
                                  str(workers)], check=True)


if __name__ == "__main__":
    main()
