"""Seconds per frame of the generators: BigGAN-deep against the reference package's stock
model, and StyleGAN2 and StyleGAN3-R at full size.

    python benchmarks/generators.py [--sizes 128 256 512] [--batches 1 4] [--repeats 3]
                                    [--precisions fp32 bf16] [--threads N]
                                    [--keep-freed-memory]
    python benchmarks/generators.py --stylegan [--stylegan-sizes 256 512 1024]
                                    [--batches 1 4] [--repeats 2] [--families stylegan2
                                    stylegan3-r]

Both run the same random, well-conditioned weights (``random_state_dict``, which takes a
minute at 512²; real weights are not needed for speed) on the same inputs, side by side in one
process: the reference's stock model (``pytorch_pretrained_biggan.BigGAN``, eval mode,
``torch.no_grad``, its own forward, fp32) and ganclip's fast path at each precision (the
``BigGANGenerator.fast`` call, without the uint8 conversion). After a warm-up call each, the
repeats alternate between them, in an order that turns each repeat, so that a busy machine
slows both alike; the table gives the fastest repeat (s/frame), the speed-up over the
reference (fastest over fastest, and the median of the repeats' back-to-back ratios,
"paired"), the largest difference from the reference's fp32 output (pixels in [-1, 1]) and
the PSNR of the uint8 frames against ganclip's fp32. Needs ``pip install
pytorch-pretrained-biggan``.

``--stylegan`` times NVIDIA's published full-size configurations (z = w = 512; StyleGAN2's
channel base 16384, 32768 at 1024; StyleGAN3-R's 65536 with 1×1 convolutions and radial
filters) with random weights, drawn by ganclip's generator (mapping, synthesis, uint8) in
fp32, and beside each, in the same run and at the same batch, ganclip's BigGAN-deep-256 fast
path: the ratio says how much heavier a frame is than BigGAN's on this machine.
"""

import argparse
import os
import time

import numpy as np
import torch

from ganclip.generators.biggan import (CONFIGS, BigGANGenerator, build_biggan,
                                       keep_freed_memory, psnr, random_inputs,
                                       random_state_dict, to_uint8)


def seconds(fn, batch: int) -> float:
    began = time.perf_counter()
    fn()
    return (time.perf_counter() - began) / batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each, after one "
                        "warm-up")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--truncation", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: "
                        "torch's choice)")
    parser.add_argument("--stylegan", action="store_true", help="time StyleGAN2 and "
                        "StyleGAN3-R instead of BigGAN-deep")
    parser.add_argument("--stylegan-sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--families", nargs="+", default=["stylegan2", "stylegan3-r"])
    parser.add_argument("--keep-freed-memory", action="store_true", help="call "
                        "biggan.keep_freed_memory() first (for both: it is process-wide)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.stylegan:
        return stylegan(args)
    from pytorch_pretrained_biggan import BigGAN as Reference
    from pytorch_pretrained_biggan import BigGANConfig as ReferenceConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep_freed_memory and not keep_freed_memory():
        parser.error("--keep-freed-memory needs glibc")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, truncation "
          f"{args.truncation}, fastest of {args.repeats} (s/frame), "
          f"{'keep_freed_memory' if args.keep_freed_memory else 'stock malloc'}; load average "
          f"{os.getloadavg()[0]:.2f} at start\n")
    print(f"{'model':16} {'batch':>5} {'reference':>10} "
          + " ".join(f"{p:>8} {'speed-up':>8} {'paired':>8} {'max|d|':>8} {'PSNR dB':>7}"
                     for p in args.precisions))
    for size in args.sizes:
        name = f"biggan-deep-{size}"
        config = CONFIGS[name]
        state = random_state_dict(config, seed=0, batch=2)
        reference = Reference(ReferenceConfig.from_dict(config.to_dict()))
        reference.load_state_dict(state, strict=True)
        reference.eval()
        model = build_biggan(state, config, source="random")
        ours = {p: BigGANGenerator(model, precision=p) for p in args.precisions}
        for batch in args.batches:
            z, y = random_inputs(batch, seed=1)
            t = np.full(batch, args.truncation)
            noise = z * np.float32(args.truncation)

            def run_reference():
                with torch.no_grad():
                    return reference(torch.as_tensor(noise), torch.as_tensor(y), args.truncation)

            runs = {"reference": run_reference}
            runs.update({p: (lambda g=g: g.fast(noise, y, t)) for p, g in ours.items()})
            outputs = {key: run() for key, run in runs.items()}  # warm-up, and the pictures
            times = {key: [] for key in runs}
            keys = list(runs)
            for repeat in range(args.repeats):
                # the order turns each repeat, so that no run always follows the same other one
                # (a run just after the reference page-faults in the memory the reference freed)
                for key in keys[repeat % len(keys):] + keys[:repeat % len(keys)]:
                    times[key].append(seconds(runs[key], batch))
            best = {key: min(v) for key, v in times.items()}
            # each repeat times the reference and ours back to back: the median of those
            # paired ratios is steadier than best/best when the machine's speed drifts
            paired = {p: float(np.median(np.divide(times["reference"], times[p])))
                      for p in args.precisions}
            fp32 = to_uint8(outputs.get("fp32", ours[args.precisions[0]].fast(noise, y, t)))
            cells = []
            for p in args.precisions:
                diff = (outputs[p] - outputs["reference"]).abs().max().item()
                cells.append(f"{best[p]:8.3f} {best['reference'] / best[p]:7.2f}x "
                             f"{paired[p]:7.2f}x {diff:8.1e} "
                             f"{psnr(fp32, to_uint8(outputs[p])):7.1f}")
            print(f"{name:16} {batch:5d} {best['reference']:10.3f} " + " ".join(cells),
                  flush=True)


def stylegan(args) -> None:
    from ganclip.generators.stylegan import formats
    from ganclip.generators.stylegan.generator import StyleGANGenerator

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, random "
          f"full-size configs, fastest of {args.repeats} (s/frame); load average "
          f"{os.getloadavg()[0]:.2f} at start\n")
    print(f"{'model':16} {'batch':>5} {'s/frame':>8} {'biggan-256':>10} {'ratio':>6}")
    biggan = BigGANGenerator(build_biggan(random_state_dict(CONFIGS["biggan-deep-256"], seed=0,
                                                            batch=2),
                                          CONFIGS["biggan-deep-256"], source="random"),
                             precision="fp32")
    for family in args.families:
        for size in args.stylegan_sizes:
            config = formats.random_config(family, size)
            net = formats._family_module(config["family"]).Generator.from_config(config, seed=0)
            gen = StyleGANGenerator(net, name=f"{family}-{size}", size=(size, size),
                                    precision="fp32")
            for batch in args.batches:
                z = np.random.default_rng(1).standard_normal((batch, 512)).astype(np.float32)
                y, t = np.zeros((batch, 0), np.float32), np.full(batch, 0.7)
                bz, by = random_inputs(batch, seed=1)
                bt = np.full(batch, args.truncation)
                runs = {"ours": lambda: gen(z, y, t),
                        "biggan": lambda: biggan.fast(bz * np.float32(args.truncation), by, bt)}
                for run in runs.values():
                    run()  # warm-up
                times = {key: [] for key in runs}
                for repeat in range(args.repeats):
                    for key in (list(runs) if repeat % 2 == 0 else list(runs)[::-1]):
                        times[key].append(seconds(runs[key], batch))
                ours, ref = min(times["ours"]), min(times["biggan"])
                print(f"{family + '-' + str(size):16} {batch:5d} {ours:8.3f} {ref:10.3f} "
                      f"{ours / ref:5.1f}x", flush=True)
            del gen, net


if __name__ == "__main__":
    main()
