"""Make docs/biggan_fit.png: BigGAN at 16:9 with --fit extend beside --fit crop.

    python docs/shapes.py

No real BigGAN weights can be fetched on the development machine, so this renders a real
recording through the whole pipeline with a **tiny random checkpoint** (the tests' 32² BigGAN-
deep layout, random weights): the pictures show the geometry of the two fits, not BigGAN's
pictures. The frames are the same moment of the same plan.
"""

import json
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import ganclip  # noqa: E402
from ganclip.generators.biggan import random_state_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from tiny_biggan import TINY  # noqa: E402

SONG = ROOT.parent / "shared" / "audio" / "vibe_ace.ogg"


def main():
    song = SONG if SONG.is_file() else ROOT / "audioFiles" / "vibe_ace.ogg"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / "tiny"
        weights.mkdir()
        torch.save(random_state_dict(TINY, seed=1), weights / "pytorch_model.bin")
        (weights / "config.json").write_text(json.dumps(TINY.to_dict()))
        pictures = {}
        for fit in ("extend", "crop"):
            frames = tmp / fit
            ganclip.render(song, output=tmp / f"{fit}.mp4", model="biggan-deep-128",
                           weights=weights, fit=fit, size="640x360", start=30, duration=1,
                           fps=10, type_names=["coral reef"], frames_dir=frames,
                           precision="fp32", quiet=True, zoom=0, rotate=0, shake=0, flash=0)
            pictures[fit] = plt.imread(frames / "frame_000005.png")
    fig, axes = plt.subplots(1, 2, figsize=(12.8, 4.1))
    for ax, (fit, picture) in zip(axes, pictures.items()):
        ax.imshow(picture)
        ax.set_title(f"--fit {fit}: " + ("first map widened 4×4 → 4×7, painted at 32×56"
                                         if fit == "extend" else "the 32² square, scaled to "
                                         "cover"), fontsize=10)
        ax.axis("off")
    fig.suptitle("BigGAN-deep at 640x360 from a tiny RANDOM checkpoint (geometry only, not "
                 "BigGAN's pictures)", fontsize=11)
    fig.tight_layout()
    out = ROOT / "docs" / "biggan_fit.png"
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
