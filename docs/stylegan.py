"""docs/stylegan.png: StyleGAN looks and a StyleGAN3 render, from full-size random networks.

    python docs/stylegan.py [--song ../shared/audio/choice_drum_bass.ogg]

No trained StyleGAN can be downloaded on the development machine, so the networks are NVIDIA's
published configurations (StyleGAN2 256², StyleGAN3-R 256², z = w = 512) with random weights,
written as ganclip .safetensors files: the pictures are what random weights draw, the looks'
spread and the motion are what the figure shows. Top: six automatic looks of the StyleGAN2
(far apart in W, ``--looks auto:6``). Middle and bottom: frames of a StyleGAN2 and a
StyleGAN3-R render of a recording, at its strongest hits and between them (a random
StyleGAN3 draws faint colours: its row's contrast is stretched four times about the mean,
and says so).
"""

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import ganclip  # noqa: E402
from ganclip.generators.stylegan import formats, stylegan2, stylegan3  # noqa: E402
from ganclip.looks import thumbnails  # noqa: E402
from ganclip.plan import Plan  # noqa: E402

HERE = Path(__file__).resolve().parent
SONG = HERE.parents[1] / "shared" / "audio" / "choice_drum_bass.ogg"


def network(family: str, folder: Path) -> Path:
    config = formats.random_config(family, 256)
    cls = stylegan3.Generator if config["family"] == "stylegan3" else stylegan2.Generator
    net = cls.from_config(config, seed=1)
    if config["family"] == "stylegan2":  # random nets have no noise; trained ones do
        import torch

        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.endswith("noise_strength"):
                    p.fill_(0.3)
    return formats.save_safetensors(net, folder / f"{family}.safetensors")


def frames(model: Path, song: Path, folder: Path, *, start: float, seconds: float,
           fps: float, n: int, stretch: float = 1.0):
    out = folder / model.stem
    ganclip.render(song, output=folder / f"{model.stem}.mp4", model=str(model), fps=fps,
                   size=256, start=start, duration=seconds, frames_dir=out,
                   plan_out=folder / f"{model.stem}.npz", quiet=True)
    plan = Plan.load(folder / f"{model.stem}.npz")
    hits = np.argsort(plan.drive[:, 0])[::-1]  # the frames the coarse layers reach most
    picks = sorted(set(hits[:n // 2].tolist()) | set(np.linspace(0, len(plan) - 1, n)
                                                       .astype(int).tolist()))[:n]
    shown = [np.asarray(Image.open(out / f"frame_{k:06d}.png")).astype(np.float32)
             for k in picks]
    mean = np.mean(shown)  # a stretch about the frames' mean grey, when asked for
    return [(np.clip((f - mean) * stretch + mean, 0, 255).astype(np.uint8),
             f"{plan.times[k] + start:.2f} s, coarse {plan.drive[k, 0]:.2f}")
            for f, k in zip(shown, picks)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--song", type=Path, default=SONG)
    parser.add_argument("--start", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sg2, sg3 = network("stylegan2", folder), network("stylegan3-r", folder)
        rows = [("StyleGAN2, six looks (--looks auto:6)",
                 thumbnails(str(sg2), looks="auto:6", size=256)),
                ("StyleGAN2 render", frames(sg2, args.song, folder, start=args.start,
                                            seconds=4, fps=6, n=6)),
                ("StyleGAN3-R render, contrast ×4\n(camera through the input)",
                 frames(sg3, args.song, folder, start=args.start, seconds=4, fps=4, n=6,
                        stretch=4.0))]
    fig, axes = plt.subplots(len(rows), 6, figsize=(13, 2.5 * len(rows) + 0.3))
    for r, (title, pictures) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(pictures):
                ax.imshow(pictures[c][0])
                ax.set_title(pictures[c][1], fontsize=8)
        axes[r][0].text(-0.08, 0.5, title, transform=axes[r][0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "stylegan.png", dpi=80)
    print(f"wrote {HERE / 'stylegan.png'}")


if __name__ == "__main__":
    main()
