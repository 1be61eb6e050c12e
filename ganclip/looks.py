"""Looks for style-based generators: anchors in their W space.

An image type is a mix of ImageNet classes, which means nothing to a StyleGAN trained on
landscapes. For a generator that draws from W (its spec's ``looks``), each image type is a
look, an anchor in W:

- from a seed (``seed = 42`` in a types file, or ``--looks seeds:3,17,42``): the ``w`` that
  the mapping network gives ``z = RandomState(seed).randn(dim_z)``, as NVIDIA's
  ``gen_images.py --seeds`` does, so a seed seen there looks the same here;
- from a ``w`` saved in a file (``w = "looks/sunset.npy"``; NVIDIA's ``projector.py`` writes
  ``projected_w.npz``);
- picked automatically (``--looks auto``, the default): N seeds chosen from
  :data:`AUTO_CANDIDATES` × N candidates to be far apart in W, so the sections of a song look
  different.

A conditional generator draws each look with the type's classes, by index.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganclip.errors import BadInputError, one_line
from ganclip.imagetypes import DEFAULT_TRUNCATION, ImageType

log = logging.getLogger(__name__)

AUTO_CANDIDATES = 16  # candidate seeds per look that the automatic choice picks among
DEFAULT_LOOKS = 6  # looks when neither --looks auto:N nor --types says
_LOOKS = re.compile(r"\s*(auto|seeds)\s*(?::\s*(.*))?", re.IGNORECASE)
EXAMPLE = "auto, auto:8 or seeds:3,17,42"


def parse_looks(text: str) -> tuple[str, tuple[int, ...] | int | None]:
    """``--looks``: ("auto", N or None) or ("seeds", (seed, …)); one line when malformed."""
    match = _LOOKS.fullmatch(str(text))
    if not match:
        raise BadInputError(f"--looks {text!r}: give {EXAMPLE}")
    kind, rest = match[1].lower(), match[2]
    if kind == "auto":
        if rest is None:
            return "auto", None
        if not rest.strip().isdigit() or not 1 <= int(rest) <= 1000:
            raise BadInputError(f"--looks {text!r}: auto:N takes a number of looks 1..1000")
        return "auto", int(rest)
    parts = [p.strip() for p in (rest or "").split(",")]
    if not any(parts):
        raise BadInputError(f"--looks {text!r}: seeds: needs seed numbers after it, e.g. "
                            "seeds:3,17,42")
    if not all(p.isdigit() and int(p) < 2 ** 32 for p in parts):
        raise BadInputError(f"--looks {text!r}: seeds are whole numbers 0..{2 ** 32 - 1}, "
                            "separated by commas")
    seeds = tuple(int(p) for p in parts)
    if len(set(seeds)) < len(seeds):
        raise BadInputError(f"--looks {text!r}: a seed is given twice; give each once")
    return "seeds", seeds


def seed_latents(seeds, dim_z: int) -> np.ndarray:
    """gen_images.py's z of each seed: np.ndarray [shape=(len(seeds), dim_z)], float32."""
    return np.stack([np.random.RandomState(s).randn(dim_z) for s in seeds]).astype(np.float32)


def load_w(path, *, num_ws: int, w_dim: int) -> np.ndarray:
    """A saved ``w`` as np.ndarray [shape=(num_ws, w_dim)], float32.

    Takes a ``.npy`` or ``.npz`` (key ``w``, or its only array) of shape [w_dim],
    [1, w_dim], [num_ws, w_dim] or [1, num_ws, w_dim]; anything else is one line naming the
    file and the shapes this model takes.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        if hasattr(data, "files"):
            with data:
                key = "w" if "w" in data.files else (data.files[0] if len(data.files) == 1
                                                     else None)
                if key is None:
                    raise BadInputError(f"w file {path} holds {', '.join(data.files)}; it "
                                        "needs one array, or one named w")
                w = data[key]
        else:
            w = data
    except BadInputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise BadInputError(f"w file {path} is not a readable .npy/.npz "
                            f"({one_line(exc, limit=100)})") from None
    w = np.asarray(w)
    shape = w.shape
    if w.ndim == 3 and shape[0] == 1:
        w = w[0]
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2 or w.shape[1] != w_dim or w.shape[0] not in (1, num_ws) or \
            not np.issubdtype(w.dtype, np.floating) or not np.all(np.isfinite(w)):
        raise BadInputError(f"w file {path} holds {w.dtype} of shape {list(shape)}; this model "
                            f"takes finite floats of shape [{w_dim}] or [{num_ws}, {w_dim}]")
    return np.broadcast_to(w, (num_ws, w_dim)).astype(np.float32)


def far_apart(points: np.ndarray, n: int, *, given: np.ndarray | None = None) -> list[int]:
    """Indices of ``n`` of ``points`` [M, D] spread out (farthest-point sampling): each the
    point farthest from all chosen so far and from ``given`` [G, D]; with nothing given,
    the first is the point farthest from their mean."""
    points = np.asarray(points, np.float64)

    def distance(to):
        return ((points - to) ** 2).sum(-1)

    if given is not None and len(given):
        nearest = np.min([distance(g) for g in np.asarray(given, np.float64)], axis=0)
        chosen = []
    else:
        chosen = [int(np.argmax(distance(points.mean(0))))]
        nearest = distance(points[chosen[0]])
    while len(chosen) < n:
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, distance(points[chosen[-1]]))
    return chosen


def _classes(image_type: ImageType, position: int, n_classes: int) -> np.ndarray:
    """The class vector a look draws with: its classes by index; a conditional model with
    none of them gets class ``position`` (mod its classes), so each look has one."""
    y = image_type.class_vector(n_classes)
    if n_classes and not y.any():
        y[position % n_classes] = 1.0
    return y


def resolve(image_types, generator, *, looks: str | None = None, n: int | None = None,
            seed: int = 0) -> tuple[list[ImageType], np.ndarray]:
    """The looks of a render and their anchors in ``generator``'s W space.

    Parameters
    ----------
    image_types : list of ImageType, the types chosen as for any generator; those with a
        ``seed`` or ``w`` are kept as they are, the others become automatic looks (keeping
        their names). Not used when ``looks`` says ``seeds:`` or ``auto``.
    generator : a style-based generator: ``dim_z``, ``n_classes``, ``num_ws``, ``w_dim`` and
        ``map(z, y) -> [B, num_ws, w_dim]`` (the mapping network at psi 1)
    looks : ``--looks`` (:func:`parse_looks`), or None
    n : int or None, looks for ``auto`` without a count (``--types``)
    seed : int, the render's seed: which candidates the automatic choice starts from

    Returns
    -------
    image_types : list of ImageType, one per look, with ``seed`` set for seeded ones
    anchors : np.ndarray [shape=(N, num_ws, w_dim)], float32
    """
    if looks is not None:
        kind, value = parse_looks(looks)
        if kind == "seeds":
            image_types = [_seeded(f"seed {s}", s) for s in value]
        else:
            image_types = [_seeded(f"look {k + 1}", None)
                           for k in range(value or n or DEFAULT_LOOKS)]
    auto = [k for k, t in enumerate(image_types) if t.seed is None and t.w is None]
    if auto:
        picked = _auto_seeds(generator, image_types, auto, seed=seed)
        image_types = list(image_types)
        for k, s in zip(auto, picked):
            name = f"seed {s}" if image_types[k].source == "--looks" else image_types[k].name
            image_types[k] = replace(image_types[k], name=name, seed=s)
        log.info("looks: seeds %s, picked far apart in W", ", ".join(map(str, picked)))
    anchors = np.empty((len(image_types), generator.num_ws, generator.w_dim), np.float32)
    seeded = [k for k, t in enumerate(image_types) if t.seed is not None]
    if seeded:
        z = seed_latents([image_types[k].seed for k in seeded], generator.dim_z)
        y = np.stack([_classes(image_types[k], k, generator.n_classes) for k in seeded])
        anchors[seeded] = generator.map(z, y.reshape(len(seeded), generator.n_classes))
    for k, t in enumerate(image_types):
        if t.w is not None:
            anchors[k] = load_w(t.w, num_ws=generator.num_ws, w_dim=generator.w_dim)
    return image_types, anchors


def _seeded(name: str, seed: int | None) -> ImageType:
    return ImageType(name=name, classes=(), truncation=DEFAULT_TRUNCATION, source="--looks",
                     seed=seed)


def _auto_seeds(generator, image_types, which: list[int], *, seed: int) -> list[int]:
    """Seeds for the looks ``which``, far apart in W from each other and from the given
    looks; candidates ``seed·M … seed·M + M - 1`` (M = AUTO_CANDIDATES × looks), so a
    render's seed picks another set."""
    m = AUTO_CANDIDATES * len(image_types)
    candidates = np.arange(seed * m, seed * m + m) % 2 ** 32
    taken = {t.seed for t in image_types if t.seed is not None}
    candidates = np.array([c for c in candidates if c not in taken])
    y = np.zeros((len(candidates), generator.n_classes), np.float32)
    if generator.n_classes:  # each candidate drawn with the class of the look it may become
        y[np.arange(len(candidates)), np.arange(len(candidates)) % generator.n_classes] = 1
    w = generator.map(seed_latents(candidates, generator.dim_z), y)[:, 0]
    given = [generator.map(seed_latents([t.seed], generator.dim_z),
                           _classes(t, k, generator.n_classes)[None])[0, 0]
             if t.seed is not None else
             load_w(t.w, num_ws=generator.num_ws, w_dim=generator.w_dim)[0]
             for k, t in enumerate(image_types) if k not in which]
    order = far_apart(w, len(which), given=np.array(given) if given else None)
    return [int(candidates[k]) for k in order]


def thumbnails(model: str, *, looks: str | None = None, n: int = DEFAULT_LOOKS, seed: int = 0,
               size: int = 128, weights=None, device: str = "cpu"):
    """One picture of each look a W-space model would draw, for galleries.

    Parameters
    ----------
    model : str, a ``--model`` name or file of a model that draws from W
    looks : ``--looks`` or None (auto); n : looks for auto; seed : the render's seed
    size : int, side the frames are drawn for (StyleGAN2 draws its native side)

    Returns
    -------
    list of (np.ndarray [shape=(H, W, 3)] uint8, name)
    """
    from ganclip import generators

    prepared = generators.prepare(model, weights=weights)
    if not prepared.spec.looks:
        raise BadInputError(f"{model} draws image types, not looks in a W space; its image "
                            "types are the gallery's")
    generator = prepared.load(size=size, seed=seed, device=device)
    types, anchors = resolve([], generator, looks=looks or "auto", n=n, seed=seed)
    y = np.stack([_classes(t, k, generator.n_classes) for k, t in enumerate(types)])
    frames = generator(np.zeros((len(types), generator.dim_z), np.float32),
                       y.reshape(len(types), generator.n_classes),
                       np.array([t.truncation for t in types], np.float32),
                       looks=anchors, drive=None)
    return [(frame, t.name) for frame, t in zip(frames, types)]
