"""Image-type files: ``[[type]]`` tables in TOML, ``{"types": [...]}`` or Ganbreeder keyframes
in JSON, each entry made into an :class:`~ganclip.imagetypes.ImageType`.

A file is read strictly as bounded data: nothing is evaluated, its size and nesting are
limited before it is parsed, and every field is checked, so a bad file ends in one
:class:`~ganclip.errors.ImageTypeError` line naming file, entry and problem.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from pathlib import Path

import numpy as np

from ganclip.errors import ImageTypeError
from ganclip.imagetypes import (DEFAULT_TRUNCATION, DIM_Z, MAX_PALETTE, MAX_SYMMETRY, MIN_PALETTE,
                                N_CLASSES, Colour, ImageType, _hex_rgb, _repr, class_index,
                                class_names)

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

MAX_FILE_BYTES = 1 << 20  # type files are a few KiB; anything bigger is the wrong file
MAX_JSON_DEPTH = 32  # a legitimate file nests 3 levels; deep nesting only attacks the parser
MAX_NAME_CHARS = 80
MAX_LATENT_ABS = 10.0  # BigGAN z is a truncated normal; |z| > 10 means a corrupt export
_ENTRY_KEYS = ("classes", "latent", "name", "palette", "seed", "symmetry", "truncation", "w")
_PALETTE_EXAMPLE = 'e.g. ["#120b0b", "#ff4a1c", "#ffb347"]'
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


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
