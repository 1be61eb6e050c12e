"""Make docs/types.png: one real frame of the demo render for each of three image types.

    python docs/gallery.py [--types "coral reef,volcano night,jellyfish bloom"]

It renders the demo track with those types, saving PNG frames and the plan, and
picks, for each type, the middle frame of its longest pure run in the plan.
"""

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import ganclip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def longest_run_middle(pure: np.ndarray) -> int:
    """Index of the middle of the longest run of True."""
    best, best_len, start = 0, 0, None
    for i, flag in enumerate(np.append(pure, False)):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > best_len:
                best, best_len = (start + i) // 2, i - start
            start = None
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default="coral reef,volcano night,jellyfish bloom")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ganclip.render(ROOT / "audioFiles" / "vibe_ace.ogg", output=tmp / "demo.mp4",
                       size=args.size, type_names=args.types, frames_dir=tmp / "frames",
                       plan_out=tmp / "plan.npz", model="cppn", quiet=True)
        plan = ganclip.Plan.load(tmp / "plan.npz")
        fig, axes = plt.subplots(1, len(plan.type_names), figsize=(4 * len(plan.type_names), 4.4))
        for k, (ax, name) in enumerate(zip(axes, plan.type_names)):
            frame = longest_run_middle(plan.mix[:, k] > 0.999)
            ax.imshow(plt.imread(tmp / "frames" / f"frame_{frame:06d}.png"))
            ax.set_title(f"{name}  (frame {frame}, {frame / plan.fps:.1f} s)")
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(ROOT / "docs" / "types.png", dpi=80)
    print(f"wrote {ROOT / 'docs' / 'types.png'}")


if __name__ == "__main__":
    main()
