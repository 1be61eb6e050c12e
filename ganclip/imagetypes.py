"""Named image types: which ImageNet classes a video draws its pictures from.

An image type is a sparse mix of BigGAN classes with a truncation, a colour
palette (a dark-to-light ramp) and, when it was imported from Ganbreeder/Artbreeder,
the base latent the picture came from.
Built-in types ship with the package; users add more in TOML or JSON files,
which are read strictly as bounded data (nothing is evaluated), so a bad file
ends in one :class:`~ganclip.errors.ImageTypeError` line naming file and entry.
"""

from __future__ import annotations

import colorsys
import difflib
import functools
import importlib.resources
import json
import math
import numbers
import re
import reprlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganclip.errors import ImageTypeError

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

DIM_Z = 128  # BigGAN latent size
N_CLASSES = 1000  # ImageNet classes BigGAN is conditioned on
DEFAULT_TRUNCATION = 0.6
MAX_FILE_BYTES = 1 << 20  # type files are a few KiB; anything bigger is the wrong file
MAX_JSON_DEPTH = 32  # a legitimate file nests 3 levels; deep nesting only attacks the parser
MAX_NAME_CHARS = 80
MAX_LATENT_ABS = 10.0  # BigGAN z is a truncated normal; |z| > 10 means a corrupt export
MIN_PALETTE, MAX_PALETTE = 2, 8  # a ramp needs two ends; more than 8 is a picture, not a palette
DERIVED_PALETTE = 5  # colours in the palette made from the name of a type that has none
_LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights: how light a colour looks, to order ramps
_ENTRY_KEYS = ("classes", "latent", "name", "palette", "seed", "symmetry", "truncation", "w")
MAX_SYMMETRY = 12  # most mirror images a kaleidoscope type folds its scene into
_PALETTE_EXAMPLE = 'e.g. ["#120b0b", "#ff4a1c", "#ffb347"]'
_HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_CLASSES_HINT = "(ganclip types --classes lists them)"
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)

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


def _error(where, message: str) -> ImageTypeError:
    return ImageTypeError(f"{where}: {message}".replace("\r", " ").replace("\n", " "))


def _number(value, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _error(where, f"{what} must be a number, got {_repr.repr(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _error(where, f"{what} must be a finite number, got {_repr.repr(value)}")
    return number


def _check_keys(entry: dict, where: str) -> None:
    unknown = [_repr.repr(key) for key in entry if key not in _ENTRY_KEYS]
    if unknown:
        raise _error(where, f"unknown key(s) {', '.join(unknown[:5])}; allowed: {', '.join(_ENTRY_KEYS)}")


def _check_name(name, where: str) -> str:
    if name is None:
        raise _error(where, 'missing name, e.g. name = "my jellyfish"')
    if not (isinstance(name, str) and 0 < len(name.strip()) <= MAX_NAME_CHARS and name.isprintable()):
        raise _error(where, f"name must be a non-empty one-line string of at most {MAX_NAME_CHARS} characters, "
                            f"got {_repr.repr(name)}")
    return name.strip()


def _latent(value, where: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != DIM_Z:
        got = f"{len(value)} items" if isinstance(value, (list, tuple)) else _repr.repr(value)
        raise _error(where, f"latent must be a list of exactly {DIM_Z} numbers, got {got}")
    latent = tuple(_number(v, where, f"latent[{i}]") for i, v in enumerate(value))
    worst = max(range(DIM_Z), key=lambda i: abs(latent[i]))
    if abs(latent[worst]) > MAX_LATENT_ABS:
        raise _error(where, f"latent[{worst}] = {latent[worst]:g} is outside [-{MAX_LATENT_ABS:g}, "
                            f"{MAX_LATENT_ABS:g}]; is this a BigGAN latent?")
    return latent


def _colour(value, where: str, position: int) -> Colour:
    what = f"palette colour {position}"
    if isinstance(value, str):
        colour = _hex_rgb(value.strip())
        if colour is None:
            raise _error(where, f'{what} must be "#rrggbb", "#rgb" or [r, g, b] with values 0-255, '
                                f"got {_repr.repr(value)}")
        return colour
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise _error(where, f'{what} must be "#rrggbb", "#rgb" or [r, g, b] with values 0-255, '
                            f"got {_repr.repr(value)}")
    rgb = tuple(_number(v, where, f"{what}[{i}]") for i, v in enumerate(value))
    if not all(0 <= v <= 255 for v in rgb):
        raise _error(where, f"{what} {_repr.repr(value)} has a value outside 0-255; [r, g, b] channels "
                            f'are 0-255 (or give "#rrggbb")')
    return tuple(v / 255 for v in rgb)


def _palette(value, where: str) -> tuple[Colour, ...]:
    if not isinstance(value, (list, tuple)):
        raise _error(where, f"palette must be a list of {MIN_PALETTE}-{MAX_PALETTE} colours, dark to light, "
                            f"{_PALETTE_EXAMPLE}; got {_repr.repr(value)}")
    if not MIN_PALETTE <= len(value) <= MAX_PALETTE:
        raise _error(where, f"palette has {len(value)} colour{'' if len(value) == 1 else 's'}; give "
                            f"{MIN_PALETTE}-{MAX_PALETTE}, dark to light, {_PALETTE_EXAMPLE}")
    return tuple(_colour(colour, where, position) for position, colour in enumerate(value, 1))


def _class_pairs(value, where: str, *, allow_zero: bool) -> dict[int, float]:
    example = 'e.g. [["jellyfish", 0.7], [107, 0.3]]'
    if not isinstance(value, (list, tuple)) or not value:
        raise _error(where, f"classes must be a non-empty list of [class, weight] pairs, {example}")
    if len(value) > N_CLASSES:
        raise _error(where, f"classes has {len(value)} entries; at most {N_CLASSES}")
    pairs: dict[int, float] = {}
    for position, pair in enumerate(value, 1):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _error(where, f"classes entry {position} must be a [class, weight] pair, got {_repr.repr(pair)}")
        try:
            index = class_index(pair[0])
        except ImageTypeError as exc:
            raise _error(where, str(exc)) from None
        weight = _number(pair[1], where, f"weight of class {_repr.repr(pair[0])}")
        if weight < 0 or (weight == 0 and not allow_zero):
            raise _error(where, f"weight of class {_repr.repr(pair[0])} must be > 0, got {weight:g}")
        if index in pairs:
            raise _error(where, f"class {index} ({class_names()[index]}) is listed twice; give it once")
        pairs[index] = weight
    return pairs


def _keyframe_classes(value, where: str) -> tuple[tuple[int, float], ...]:
    dense = isinstance(value, (list, tuple)) and len(value) == N_CLASSES and \
        not any(isinstance(v, (list, tuple)) for v in value)
    if dense:
        weights = [_number(v, where, f"classes[{i}]") for i, v in enumerate(value)]
        if min(weights) < 0:
            raise _error(where, f"class weights must be >= 0, got {min(weights):g}")
        pairs = dict(enumerate(weights))
    else:
        pairs = _class_pairs(value, where, allow_zero=True)
    if not any(weight > 0 for weight in pairs.values()):
        raise _error(where, "classes has no weight > 0; a keyframe needs at least one class")
    # BigGAN class vectors go to the generator unchanged; zeros carry nothing
    return tuple((index, weight) for index, weight in pairs.items() if weight > 0)


def _normalise(pairs: dict[int, float]) -> tuple[tuple[int, float], ...]:
    # divide by the largest first so a sum of huge weights cannot overflow
    largest = max(pairs.values())
    total = math.fsum(weight / largest for weight in pairs.values())
    return tuple((index, weight / largest / total) for index, weight in pairs.items())


def _build(entry: dict, name: str, where: str, source: str, *, keyframe: bool) -> ImageType:
    _check_keys(entry, where)
    seed, w = _look(entry, where, source)
    if "classes" not in entry and (seed is not None or w is not None):
        entry = {**entry, "classes": []}  # a StyleGAN look needs no classes
    if "classes" not in entry:
        raise _error(where, 'missing classes, e.g. [["jellyfish", 0.7], [107, 0.3]] (or, '
                            'for a StyleGAN, a seed = 42 or w = "looks/sunset.npy")')
    if keyframe:
        classes = _keyframe_classes(entry["classes"], where)
    else:
        classes = () if entry["classes"] == [] and (seed is not None or w is not None) \
            else _normalise(_class_pairs(entry["classes"], where, allow_zero=False))
    truncation = _number(entry.get("truncation", DEFAULT_TRUNCATION), where, "truncation")
    if not 0 < truncation <= 1:
        raise _error(where, f"truncation must be in (0, 1], got {truncation:g}; 0.4-0.8 is typical")
    latent = _latent(entry["latent"], where) if "latent" in entry else None
    palette = _palette(entry["palette"], where) if "palette" in entry else None
    symmetry = _symmetry(entry.get("symmetry", 0), where)
    return ImageType(name, classes, truncation, latent, source, palette, symmetry, seed, w)


def _look(entry: dict, where: str, source: str) -> tuple[int | None, str | None]:
    """The ``seed`` and ``w`` of an entry; a w file's path is relative to the types file."""
    seed, w = entry.get("seed"), entry.get("w")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed < 2 ** 32):
        raise _error(where, f"seed must be a whole number 0..{2 ** 32 - 1}, got {_repr.repr(seed)}")
    if w is not None:
        if not isinstance(w, str) or not w.strip():
            raise _error(where, f'w must be the path of a .npy or .npz file, e.g. w = "looks/sunset.npy"; got {_repr.repr(w)}')
        path = Path(w).expanduser()
        if not path.is_absolute() and source != "built-in":
            path = Path(source).parent / path
        if path.suffix.lower() not in (".npy", ".npz") or not path.is_file():
            raise _error(where, f"w file {path} is not there or not a .npy/.npz file")
        w = str(path)
    if seed is not None and w is not None:
        raise _error(where, "give a seed or a w file, not both")
    return seed, w


def _symmetry(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (
            value in (0, 1) or 2 <= value <= MAX_SYMMETRY):
        raise _error(where, f"symmetry must be 0 (none), 2 (a mirror) or 3-{MAX_SYMMETRY} (a "
                            f"kaleidoscope of that many folds), got {_repr.repr(value)}")
    return 0 if value == 1 else value


def _parse_entry(entry, path: Path, position: int) -> ImageType:
    where = f"{path}: entry {position}"
    if not isinstance(entry, dict):
        raise _error(where, f"must be a table with name and classes, got {_repr.repr(entry)}")
    name = _check_name(entry.get("name"), where)
    return _build(entry, name, f"{path}: type {_repr.repr(name)}", str(path), keyframe=False)


def parse_keyframe(obj, *, name, source) -> ImageType:
    """Import one Ganbreeder/Artbreeder keyframe, keeping its class weights exactly.

    Parameters
    ----------
    obj : dict
        ``{"latent": [128 floats], "classes": [[index, weight], ...] or [1000 floats],
        "truncation": t}``; latent and truncation are optional; a "name" key is allowed.
    name : str
        Name of the image type (callers pass ``obj["name"]`` when present).
    source : str or path-like
        Where the keyframe came from, for messages and ``ImageType.source``.
    """
    if not isinstance(obj, dict):
        raise _error(f"{source}: keyframe {_repr.repr(name)}",
                     f"must be an object with latent, classes and truncation, got {_repr.repr(obj)}")
    name = _check_name(name, f"{source}: keyframe")
    return _build(obj, name, f"{source}: keyframe {_repr.repr(name)}", str(source), keyframe=True)


def _read_text(path: Path) -> str:
    try:
        if not path.exists():
            raise _error(path, "no such file")
        if not path.is_file():
            raise _error(path, "not a regular file")
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # never read more than the limit
    except OSError as exc:
        raise _error(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _error(path, "larger than 1 MiB; image-type files are small text files, is this the right file?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(path, f"not UTF-8 text (bad byte at offset {exc.start})") from None


def _json_depth(text: str) -> int:
    # brackets inside strings do not nest, so drop the strings first
    skeleton = np.frombuffer(_JSON_STRING.sub("", text).encode(), dtype=np.uint8)
    steps = np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64) - np.isin(skeleton, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def _parse(text: str, path: Path, *, kind: str):
    if kind == ".json" and (depth := _json_depth(text)) > MAX_JSON_DEPTH:
        raise _error(path, f"JSON nests {depth} levels deep (limit {MAX_JSON_DEPTH}); image-type files are flat")
    try:
        return json.loads(text) if kind == ".json" else tomllib.loads(text)
    except RecursionError:
        raise _error(path, f"{kind[1:].upper()} nests too deeply to parse; image-type files are flat") from None
    except ValueError as exc:  # JSONDecodeError, TOMLDecodeError, int too long
        raise _error(path, f"not valid {kind[1:].upper()}: {exc}") from None


def _entry_list(doc: dict, key: str, path: Path, example: str) -> list:
    unknown = [_repr.repr(k) for k in doc if k != key]
    if unknown:
        raise _error(path, f"unknown top-level key(s) {', '.join(unknown[:5])}; expected only {example}")
    entries = doc.get(key)
    if not isinstance(entries, list) or not entries:
        raise _error(path, f"no image types found; expected {example}")
    return entries


def _types_from_json(doc, path: Path) -> list[ImageType]:
    if isinstance(doc, dict) and "types" in doc:
        entries = _entry_list(doc, "types", path, 'a "types" list of objects')
        return [_parse_entry(entry, path, i) for i, entry in enumerate(entries, 1)]
    if isinstance(doc, dict):
        return [parse_keyframe(doc, name=doc.get("name", path.stem), source=path)]
    if isinstance(doc, list) and doc:
        return [parse_keyframe(kf, name=kf.get("name", f"{path.stem}-{i}") if isinstance(kf, dict) else
                               f"{path.stem}-{i}", source=path) for i, kf in enumerate(doc, 1)]
    raise _error(path, 'expected {"types": [...]}, a Ganbreeder keyframe object, or a list of keyframes')


def load_types_file(path) -> list[ImageType]:
    """Read image types from a ``.toml`` or ``.json`` file.

    TOML holds ``[[type]]`` tables; JSON holds ``{"types": [...]}`` with the same
    fields, or Ganbreeder keyframes (one object or a list). ``types`` weights are
    normalised to sum to 1; keyframe weights are kept exactly.

    Raises
    ------
    ImageTypeError
        One line naming the file, the entry and the problem.
    """
    path = Path(path)
    kind = path.suffix.lower()
    text = _read_text(path)
    if kind not in (".toml", ".json"):
        raise _error(path, f"unknown image-type file extension {kind or '(none)'!r}; use .toml or .json")
    doc = _parse(text, path, kind=kind)
    if kind == ".toml":
        entries = _entry_list(doc, "type", path, "[[type]] tables")
        types = [_parse_entry(entry, path, i) for i, entry in enumerate(entries, 1)]
    else:
        types = _types_from_json(doc, path)
    seen: set[str] = set()
    for image_type in types:
        if image_type.name.casefold() in seen:
            raise _error(path, f"type name {image_type.name!r} is used twice; names must be unique")
        seen.add(image_type.name.casefold())
    return types


def available_types(*, types_file=None, search_dir=None) -> list[ImageType]:
    """Built-in types, then ``imagetypes/*.toml|json`` in ``search_dir``, then ``types_file``.

    A later type whose name matches an earlier one (case-insensitive) replaces it in place.

    Parameters
    ----------
    types_file : str or path-like, optional
    search_dir : str or path-like, optional
        Folder holding ``imagetypes/``; default the current directory.
    """
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
