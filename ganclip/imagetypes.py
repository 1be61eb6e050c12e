"""Named image types: which ImageNet classes a video draws its pictures from.

An image type is a sparse mix of BigGAN classes with a truncation, a colour
palette (a dark-to-light ramp) and, when it was imported from Ganbreeder/Artbreeder,
the base latent the picture came from.
Built-in types ship with the package; users add more in TOML or JSON files
(:mod:`ganclip.typefiles`, which reads them strictly as bounded data, so a bad file
ends in one :class:`~ganclip.errors.ImageTypeError` line naming file and entry).
"""

from __future__ import annotations

import colorsys
import difflib
import functools
import importlib.resources
import math
import numbers
import re
import reprlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganclip.errors import ImageTypeError

DIM_Z = 128  # BigGAN latent size
N_CLASSES = 1000  # ImageNet classes BigGAN is conditioned on
DEFAULT_TRUNCATION = 0.6
MIN_PALETTE, MAX_PALETTE = 2, 8  # a ramp needs two ends; more than 8 is a picture, not a palette
DERIVED_PALETTE = 5  # colours in the palette made from the name of a type that has none
_LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights: how light a colour looks, to order ramps
MAX_SYMMETRY = 12  # most mirror images a kaleidoscope type folds its scene into
_HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_CLASSES_HINT = "(ganclip types --classes lists them)"

# Values from files go into messages; keep them short and free of newlines.
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = _repr.maxlong = 40
_repr.maxlist = _repr.maxdict = 4

Colour = tuple[float, float, float]  # RGB, each in [0, 1]


@dataclass(frozen=True)
class ImageType:
    """One named look: a sparse BigGAN class mix, a truncation, a colour ramp, maybe a base latent."""

    name: str  # unique human name, matched case-insensitively
    classes: tuple[tuple[int, float], ...]  # (ImageNet index 0-999, weight > 0)
    truncation: float  # BigGAN truncation in (0, 1]; lower is tamer
    latent: tuple[float, ...] | None = None  # DIM_Z floats: base z from Ganbreeder, else None
    source: str = "built-in"  # "built-in" or the file it came from
    palette: tuple[Colour, ...] | None = None  # 2-8 RGB colours, dark to light; None: made from the name
    symmetry: int = 0  # 0 none, 2 a mirror (left = right), k >= 3 a k-fold kaleidoscope (cppn)
    # a look for a style-based generator (StyleGAN): the seed of its z, or a saved w file
    seed: int | None = None  # as NVIDIA's gen_images.py --seeds: z = RandomState(seed).randn
    w: str | None = None  # path of a .npy/.npz holding a w ([w_dim] or [num_ws, w_dim])

    def class_vector(self, n_classes: int = N_CLASSES) -> np.ndarray:
        """Class vector ``y : np.ndarray [shape=(n_classes,), dtype=float32]``, weights as
        stored. A generator of other classes (a conditional StyleGAN) takes them by index,
        those past its ``n_classes`` left out; one without classes gets an empty vector."""
        y = np.zeros(n_classes, dtype=np.float32)
        for index, weight in self.classes:
            if index < n_classes:
                y[index] = weight
        return y

    def latent_vector(self, dim_z: int = DIM_Z) -> np.ndarray:
        """Base latent ``z : np.ndarray [shape=(dim_z,), dtype=float32]``; zeros when there
        is none, or when it was made for another latent width (a Ganbreeder keyframe's
        128-d BigGAN latent means nothing to a 512-d StyleGAN)."""
        if self.latent is None or len(self.latent) != dim_z:
            return np.zeros(dim_z, dtype=np.float32)
        return np.asarray(self.latent, dtype=np.float32)

    def colours(self) -> tuple[Colour, ...]:
        """The palette as given, or, when there is none, a dark-to-light ramp of
        DERIVED_PALETTE colours made from the name (the same name always gets the same one)."""
        return self.palette if self.palette is not None else _derived_palette(self.name)

    def palette_array(self, k: int = 5) -> np.ndarray:
        """The palette resampled to ``k`` colours, so palettes of any length mix frame by frame.

        Returns
        -------
        np.ndarray [shape=(k, 3), dtype=float32], RGB in [0, 1]
            Row 0 is the dark end and row k-1 the light end of the ramp; rows between are
            linear interpolations at even steps along it. ``k=1`` gives the middle.
        """
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        ramp = np.asarray(self.colours(), dtype=np.float64)
        if ramp.ndim != 2 or ramp.shape[1] != 3 or len(ramp) < MIN_PALETTE:
            raise ValueError(f"{self.name!r}: palette must be {MIN_PALETTE}+ RGB colours, got {self.palette!r}")
        last = len(ramp) - 1
        at = np.linspace(0, last, k) if k > 1 else np.array([last / 2])
        lower = np.minimum(np.floor(at).astype(np.int64), last - 1)
        step = (at - lower)[:, None]
        return (ramp[lower] * (1 - step) + ramp[lower + 1] * step).astype(np.float32)


def luma(colour) -> float:
    """How light an RGB colour (values in [0, 1]) looks, in [0, 1]: Rec. 709 weights."""
    return math.fsum(weight * channel for weight, channel in zip(_LUMA, colour))


def hex_colour(colour) -> str:
    """``"#rrggbb"`` of an RGB colour with values in [0, 1]."""
    return "#" + "".join(f"{round(min(max(channel, 0.0), 1.0) * 255):02x}" for channel in colour)


@functools.lru_cache(maxsize=256)
def _derived_palette(name: str) -> tuple[Colour, ...]:
    # crc32, not hash(): hash() of a str changes from one process to the next
    bits = zlib.crc32(_norm(name).encode("utf-8"))
    hue = (bits & 0xFFF) / 0x1000
    drift = ((bits >> 12 & 0x3FF) / 0x3FF - 0.5) * 0.3  # the hue turns up to +-0.15 along the ramp
    saturation = 0.45 + 0.4 * (bits >> 22) / 0x3FF
    steps = np.linspace(0, 1, DERIVED_PALETTE)
    colours = [colorsys.hls_to_rgb((hue + drift * t) % 1, 0.08 + 0.84 * t, saturation * (1 - 0.4 * t))
               for t in steps]
    # lightness in HLS is not how light a colour looks (yellow outshines blue); order by luma
    return tuple(sorted((tuple(float(c) for c in colour) for colour in colours), key=luma))


def _hex_rgb(text: str) -> Colour | None:
    """RGB in [0, 1] of ``"#rrggbb"`` or ``"#rgb"``; None when ``text`` is neither."""
    match = _HEX.fullmatch(text)
    if match is None:
        return None
    digits = match[1] if len(match[1]) == 6 else "".join(2 * digit for digit in match[1])
    return tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))


def _builtin(name: str, truncation: float, *mix: tuple[int, float], palette: tuple[str, ...],
             symmetry: int = 0) -> ImageType:
    total = sum(weight for _, weight in mix)
    return ImageType(name, tuple((i, w / total) for i, w in mix), truncation,
                     palette=tuple(_hex_rgb(colour) for colour in palette), symmetry=symmetry)


BUILTIN_TYPES: tuple[ImageType, ...] = (
    # palettes run dark to light, named in the trailing comments
    _builtin("hairy flowers", 0.5, (985, 6), (332, 4),  # daisy, Angora
             palette=("#1f2a1a", "#6f8a4a", "#e8b4c8", "#f5dc6e", "#fbf8f0"), symmetry=8),  # leaf, stem, rose, pollen, petal
    _builtin("coral reef", 0.55, (973, 5), (109, 2), (393, 2), (108, 1),  # + brain coral, anemone fish, sea anemone
             palette=("#0b3a40", "#ff6f61", "#ff9a3c", "#f2dcb0")),  # deep teal, coral pink, orange, sand
    _builtin("jellyfish bloom", 0.5, (107, 8), (971, 2),  # jellyfish, bubble
             palette=("#060a24", "#4b2a7a", "#c0509a", "#9fe8ff"), symmetry=5),  # abyss, violet, magenta, glow
    _builtin("volcano night", 0.6, (980, 7), (974, 2), (862, 1),  # volcano, geyser, torch
             palette=("#120b0b", "#7a1010", "#ff4a1c", "#ffb347", "#fff1c8")),  # basalt, ember, lava, flame, white heat
    _builtin("northern forest", 0.6, (979, 4), (269, 3), (287, 2), (997, 1),  # valley, timber wolf, lynx, bolete
             palette=("#0f1a12", "#2e4a2c", "#6b5a3a", "#9fae7a", "#dfe6d0")),  # shade, pine, bark, lichen, mist
    _builtin("star dome", 0.55, (727, 6), (755, 2), (812, 2),  # planetarium, radio telescope, space shuttle
             palette=("#05061a", "#1b2a6b", "#5a3d9a", "#9ab8ff", "#f4f6ff"), symmetry=6),  # space, deep blue, nebula, starlight
    _builtin("candy shop", 0.6, (509, 5), (929, 2), (927, 2), (865, 1),  # sweets, ice lolly, trifle, toyshop
             palette=("#5a1e4a", "#ff5fa2", "#7fd8e8", "#fff3b0")),  # berry, bubblegum, mint, lemon cream
    _builtin("deep sea", 0.5, (117, 4), (396, 3), (983, 3),  # chambered nautilus, lionfish, scuba diver
             palette=("#02060f", "#06243f", "#0e5a6e", "#3fa7a0", "#b8f0e0")),  # black, navy, blue-green, teal, foam
    _builtin("alpine lake", 0.45, (970, 5), (975, 4), (350, 1),  # alp, lakeside, ibex
             palette=("#1a2a3a", "#1f6f8b", "#5fa86b", "#bcd8e8", "#f8fbff")),  # slate, lake, meadow, sky, snow
    _builtin("butterfly garden", 0.55, (323, 4), (321, 2), (325, 2), (986, 2),  # butterflies, orchid
             palette=("#1d2b16", "#5a7d2a", "#e8742a", "#f7d046", "#f9eef7"), symmetry=2),  # shade, leaf, monarch, sulphur, orchid
    _builtin("cathedral", 0.5, (497, 5), (406, 3), (687, 2),  # church, altar, organ
             palette=("#1c1a1f", "#7d1128", "#1f4e9c", "#6b4a2b", "#d4a74a"), symmetry=2),  # stone, ruby, glass blue, umber, gold
    _builtin("desert dunes", 0.5, (977, 6), (354, 3), (68, 1),  # sandbar, Arabian camel, sidewinder
             palette=("#3b2416", "#a0522d", "#d99a5b", "#f0d29a", "#fbeedd")),  # shadow, sienna, ochre, sand, glare
    _builtin("fungal kingdom", 0.6, (992, 3), (995, 3), (991, 2), (994, 2),  # agaric, earthstar, fungi
             palette=("#1a120c", "#5c3a21", "#b5562a", "#d9c08c", "#f3ead8")),  # humus, cap, rust, gill, spore
    _builtin("peacock parade", 0.55, (84, 5), (88, 3), (130, 2),  # peacock, macaw, flamingo
             palette=("#06201f", "#0b5d63", "#1f7ae0", "#e84f8a", "#e8c547")),  # shade, teal, blue, flamingo, gold
    _builtin("carnival night", 0.65, (476, 4), (417, 3), (607, 2), (723, 1),  # carousel, balloon, lantern, pinwheel
             palette=("#0c0820", "#7a1fa2", "#e6334f", "#ffb400", "#fff4c2"), symmetry=4),  # night, purple, red, amber, bulb
    _builtin("snow country", 0.5, (296, 4), (279, 3), (970, 3),  # ice bear, Arctic fox, alp
             palette=("#1b2433", "#4a6a8f", "#a7bfd6", "#e4eef6", "#ffffff"), symmetry=6),  # dusk, shadow, ice, frost, snow
    _builtin("iron bridges", 0.45, (821, 4), (839, 4), (888, 2),  # arch, suspension bridges, viaduct
             palette=("#16181c", "#7a3b22", "#6f7780", "#c9a27a", "#e8e4dc")),  # iron, rust, steel, sunset, fog
    _builtin("fruit market", 0.6, (957, 3), (950, 3), (949, 2), (953, 2),  # pomegranate, orange, berry, pineapple
             palette=("#3a0a14", "#b0122a", "#ff7f11", "#ffd23f", "#fff0d0")),  # seed, red, orange, pineapple, cream
)


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _index_maps(names) -> dict[str, tuple[int, ...]]:
    """Map normalised full names and comma-separated synonyms to indices; full names win."""
    full: dict[str, list[int]] = {}
    synonyms: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        full.setdefault(_norm(name), []).append(index)
        parts = [_norm(part) for part in name.split(",")]
        for part in parts if len(parts) > 1 else ():
            if part and index not in synonyms.setdefault(part, []):
                synonyms[part].append(index)
    table = {key: tuple(indices) for key, indices in synonyms.items()}
    table.update((key, tuple(indices)) for key, indices in full.items())
    return table


@functools.lru_cache(maxsize=1)
def _class_table() -> tuple[tuple[str, ...], dict[str, tuple[int, ...]]]:
    text = (importlib.resources.files("ganclip") / "data" / "imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t", 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    names = tuple(name.strip() for _, name in rows)
    if [int(index) for index, _ in rows] != list(range(N_CLASSES)):
        raise RuntimeError("ganclip/data/imagenet_classes.tsv is corrupt; reinstall ganclip")
    return names, _index_maps(names)


def class_names() -> list[str]:
    """The 1000 ImageNet class names in BigGAN index order."""
    return list(_class_table()[0])


def _either(options: list[str]) -> str:
    quoted = [repr(option) for option in options]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def class_index(key: int | str) -> int:
    """Index 0..999 of an ImageNet class.

    Parameters
    ----------
    key : int or str
        An index, or a class name: the full name or any comma-separated synonym
        in it, case-insensitive. Unknown names raise ImageTypeError with close matches.
    """
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if 0 <= key < N_CLASSES:
            return int(key)
        raise ImageTypeError(f"class index {key} is out of range; ImageNet indices are 0..{N_CLASSES - 1}")
    if not isinstance(key, str):
        raise ImageTypeError(f"class must be an ImageNet class name or index, got {_repr.repr(key)}")
    _, table = _class_table()
    found = table.get(_norm(key))
    if found is None:
        # difflib is quadratic; a pasted paragraph gets no suggestions rather than a hang
        close = difflib.get_close_matches(_norm(key), table, n=3) if len(key) <= 100 else []
        hint = f"; did you mean {_either(close)}?" if close else ""
        raise ImageTypeError(f"class {_repr.repr(key)} is not an ImageNet class{hint} {_CLASSES_HINT}")
    if len(found) > 1:
        indices = ", ".join(map(str, found))
        raise ImageTypeError(f"class {_repr.repr(key)} is ambiguous (indices {indices}); give the index instead")
    return found[0]


def available_types(*, types_file=None, search_dir=None) -> list[ImageType]:
    """Built-in types, then ``imagetypes/*.toml|json`` in ``search_dir``, then ``types_file``.

    A later type whose name matches an earlier one (case-insensitive) replaces it in place.

    Parameters
    ----------
    types_file : str or path-like, optional
    search_dir : str or path-like, optional
        Folder holding ``imagetypes/``; default the current directory.
    """
    from ganclip.typefiles import load_types_file

    folder = Path(search_dir if search_dir is not None else ".") / "imagetypes"
    files = sorted((p for p in folder.glob("*") if p.suffix.lower() in (".toml", ".json")),
                   key=lambda p: p.name) if folder.is_dir() else []
    files += [Path(types_file)] if types_file is not None else []
    found = list(BUILTIN_TYPES)
    for path in files:
        for image_type in load_types_file(path):
            names = [t.name.casefold() for t in found]
            if image_type.name.casefold() in names:
                found[names.index(image_type.name.casefold())] = image_type
            else:
                found.append(image_type)
    return found


def choose_types(available, *, n=None, names=None, seed=0) -> list[ImageType]:
    """Pick the image types for one video; all of ``available`` when neither ``n`` nor ``names`` is given.

    Parameters
    ----------
    available : sequence of ImageType
    n : int, optional
        How many to draw at random, without replacement (deterministic per ``seed``).
    names : list of str, optional
        Exactly these types in this order (case-insensitive); overrides ``n``.
    seed : int
    """
    available = list(available)
    if names is not None:
        by_name = {t.name.casefold(): t for t in available}
        listing = ", ".join(t.name for t in available)
        wanted = [names] if isinstance(names, str) else list(names)
        keys = [name.strip().casefold() if isinstance(name, str) else None for name in wanted]
        for name, key in zip(wanted, keys):
            if key not in by_name:
                raise ImageTypeError(f"unknown image type {_repr.repr(name)}; available: {listing}")
            if keys.count(key) > 1:
                raise ImageTypeError(f"image type {_repr.repr(name)} is listed twice; give each type once")
        if not keys:
            raise ImageTypeError(f"no image type names given; available: {listing}")
        return [by_name[key] for key in keys]
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= len(available):
        raise ImageTypeError(f"--types must be between 1 and {len(available)} (the number of image types "
                             f"available); got {n}. Add more in a --types-file or imagetypes/*.toml")
    picks = np.random.default_rng(seed).choice(len(available), size=int(n), replace=False)
    return [available[int(i)] for i in picks]


# The files' names live in ganclip.typefiles, which builds on this module; they still import
# from here, looked up when asked for, so neither module needs the other loaded first.
# A test patches them on ganclip.typefiles, which reads them.
_IN_TYPEFILES = frozenset({
    "MAX_FILE_BYTES", "MAX_JSON_DEPTH", "MAX_LATENT_ABS", "MAX_NAME_CHARS", "_ENTRY_KEYS",
    "_JSON_STRING", "_PALETTE_EXAMPLE", "_build", "_check_keys", "_check_name", "_class_pairs",
    "_colour", "_entry_list", "_error", "_json_depth", "_keyframe_classes", "_latent", "_look",
    "_normalise", "_number", "_palette", "_parse", "_parse_entry", "_read_text", "_symmetry",
    "_types_from_json", "load_types_file", "parse_keyframe"})


def __getattr__(name: str):
    if name in _IN_TYPEFILES:
        from ganclip import typefiles

        return getattr(typefiles, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
