"""Make the README's cppn pictures from real renders of the recordings in ../shared/audio.

    python docs/gallery.py [--before COMMIT]

- docs/types.png: one 16:9 frame of each of six image types, each from a render of a real
  recording with that type (the frame where the camera pushes in furthest);
- docs/landscape.png, docs/portrait.png: one frame of a 1920x1080 and of a 1080x1920 render
  (saved at two thirds and half size);
- docs/cppn_before_after.png: the same six types and latents drawn by the cppn of COMMIT
  (square only, shown as the middle 16:9 of a square) above this one.
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

import ganclip
from ganclip.imagetypes import BUILTIN_TYPES

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "audio"
TYPES = {  # image type: (recording, start s)
    "volcano night": ("choice_drum_bass.ogg", 20.0),
    "coral reef": ("vibe_ace.ogg", 30.0),
    "cathedral": ("sugar_plum_fairy.ogg", 10.0),
    "jellyfish bloom": ("solo_trumpet.ogg", 2.0),
    "snow country": ("madmom_sample.wav", 0.0),
    "star dome": ("vibe_ace.ogg", 45.0),
}
BEFORE = "3394a65"  # the last commit with the square-only cppn of random palettes


def read_png(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def write_png(path: Path, rgb: np.ndarray, *, size=None) -> None:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    if size is not None:
        frame = frame.reformat(*size, "rgb24", interpolation="LANCZOS")
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = frame.width, frame.height, "rgb24"
    path.write_bytes(b"".join(bytes(p) for p in codec.encode(frame)))


def pushed_frame(song: Path, tmp: Path, *, size: str, start: float, seconds: float,
                 name: str | None = None) -> np.ndarray:
    """A render's frame where the camera pushes in furthest."""
    frames = tmp / "frames"
    for old in frames.glob("*.png"):
        old.unlink()
    ganclip.render(song, output=tmp / "clip.mp4", size=size, start=start, duration=seconds,
                   type_names=[name] if name else None, frames_dir=frames,
                   plan_out=tmp / "plan.npz", model="cppn", quiet=True, restart=True)
    plan = ganclip.Plan.load(tmp / "plan.npz")
    return read_png(frames / f"frame_{int(np.argmax(plan.zoom)):06d}.png")


def grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    rows = [np.concatenate(tiles[i:i + columns], 1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, 0)


def old_cppn(commit: str):
    """The cppn module as it was at ``commit``, or None outside a git checkout."""
    try:
        source = subprocess.run(["git", "show", f"{commit}:ganclip/generators/cppn.py"],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_cppn.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_cppn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def before_after(commit: str) -> np.ndarray | None:
    from ganclip.generators.cppn import CPPN

    module = old_cppn(commit)
    if module is None:
        return None
    types = [t for name in TYPES for t in BUILTIN_TYPES if t.name == name]
    z = np.random.default_rng(3).uniform(-1, 1, (len(types), 128)).astype(np.float32) * 0.7
    y = np.stack([t.class_vector() for t in types])
    trunc = np.array([t.truncation for t in types], np.float32)
    old = module.CPPN(size=480)(z, y, trunc)[:, 105:375]  # the middle 16:9 of the square
    new = CPPN(size=(480, 270))(z, y, trunc, palette=np.stack([t.palette_array(5)
                                                               for t in types]),
                                symmetry=np.float32([[t.symmetry, 1] for t in types]))
    return np.concatenate([grid(list(old), 6), np.full((8, 6 * 480, 3), 255, np.uint8),
                           grid(list(new), 6)], 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs the recordings in {SHARED}")
    docs = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiles = [pushed_frame(SHARED / song, tmp, size="640x360", start=start, seconds=4.0,
                              name=name) for name, (song, start) in TYPES.items()]
        write_png(docs / "types.png", grid(tiles, 3))
        print(f"wrote {docs / 'types.png'}: {', '.join(TYPES)}")
        song = SHARED / "choice_drum_bass.ogg"
        write_png(docs / "landscape.png", pushed_frame(song, tmp, size="1920x1080", start=10.0,
                                                       seconds=2.0), size=(1280, 720))
        write_png(docs / "portrait.png", pushed_frame(song, tmp, size="1080x1920", start=16.0,
                                                      seconds=2.0), size=(540, 960))
        print(f"wrote {docs / 'landscape.png'} and {docs / 'portrait.png'}")
    strip = before_after(args.before)
    if strip is not None:
        write_png(docs / "cppn_before_after.png", strip)
        print(f"wrote {docs / 'cppn_before_after.png'}")


if __name__ == "__main__":
    main()
