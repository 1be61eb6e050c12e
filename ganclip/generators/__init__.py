"""Generators: each maps ``(z [B, dim_z], y [B, n_classes], truncation [B])`` to frames.

A family's knowledge lives in its :class:`GeneratorSpec`: latent width, classes, native
size, precisions, how to find its weights (:attr:`~GeneratorSpec.prepare`) and how to
build it (:attr:`~GeneratorSpec.load`). The built-in specs register themselves below;
plug-ins register through the ``ganclip.generators`` entry point group
(:func:`load_plugins`). Nothing outside this package names a model family.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ganclip.errors import BadInputError, lookup, one_line

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ENTRY_POINT_GROUP = "ganclip.generators"


class Generator(Protocol):
    name: str
    dim_z: int
    n_classes: int
    size: tuple[int, int]  # (width, height) in pixels of the frames it draws

    def __call__(self, z: np.ndarray, y: np.ndarray, truncation: np.ndarray) -> np.ndarray:
        """Draw a batch of frames.

        Parameters
        ----------
        z : np.ndarray [shape=(B, dim_z)], float32 unit latent, roughly in [-2, 2]
        y : np.ndarray [shape=(B, n_classes)], float32 class weights >= 0 (``n_classes``
            may be 0: then ``y`` is ``[B, 0]`` and ignored)
        truncation : np.ndarray [shape=(B,)], in (0, 1]: how far from the mean picture a
            frame may stray; lower is calmer and cleaner, 1 is the full variety

        Returns
        -------
        frames : np.ndarray [shape=(B, height, width, 3)], uint8 RGB

        A generator whose spec has ``looks=True`` also takes ``looks=`` and ``drive=``
        (:attr:`GeneratorSpec.looks`). A generator whose spec has ``camera=True`` also takes
        ``camera=`` [B, 5] (zoom, angle, shift x, shift y, flash:
        :meth:`~ganclip.plan.Plan.camera`), ``palette=`` [B, K, 3] or None and ``symmetry=``
        [B, 2] (:meth:`~ganclip.plan.Plan.folds`), and draws them itself; its frames have the
        shape of ``size``, and may be smaller, for the encoder to scale up.
        """


@dataclass(frozen=True)
class GeneratorSpec:
    """What ganclip knows of one generator before building it."""

    name: str  # the --model name
    description: str  # one line for listings
    dim_z: int  # latent width
    n_classes: int  # class-vector width; 0 for an unconditional model
    native_size: int | None  # side it draws at; None: any size and shape (drawn at --size)
    precisions: tuple[str, ...]  # arithmetic it accepts ("auto" always is)
    # load(weights, *, size=(width, height), seed, device, precision, quiet), and fit= when
    # ``extends``
    load: Callable[..., Generator]
    prepare: Callable[..., Path | None] = lambda weights=None, *, download=True, quiet=True: None
    # prepare(weights, download=, quiet=) finds or fetches the weights (cheap when cached):
    # the checkpoint path to hand to load(), None for a model without weights
    status: Callable[[], str] = lambda: "built in"  # for listings: "cached", "not cached, …"
    ready: Callable[..., bool] = lambda weights=None: True  # draws without a download?
    family: str | None = None  # what its weights are called in messages ("BigGAN")
    camera: bool = False  # draws the plan's camera, palette and symmetry itself, in the
    # shape of --size; else it draws a still picture that the render warps (ganclip.camera)
    extends: bool = False  # load() takes fit="extend"|"crop" and draws wide or tall
    # frames itself when extending
    looks: bool = False  # draws from a W space (StyleGAN): the image types are looks, anchors
    # in W that its generator's map() gives (ganclip.looks); it also takes looks= [B, num_ws,
    # w_dim] (the plan's anchors mixed) and drive= [B, len(DRIVE)] or None (plan.DRIVE)

    def check_precision(self, precision: str, device: str = "cpu") -> str:
        """``precision`` when this model takes it on ``device``; a one-line error otherwise."""
        return check_precision(precision, accepted=self.precisions, device=device,
                               model=self.name)


REGISTRY: dict[str, GeneratorSpec] = {}
AUTO_PREFERENCE = ("biggan-deep-256", "cppn")  # --model auto: the first of these that is ready
BUILT_IN = "cppn"  # needs no weights: what draws when nothing else can (the page's thumbnails)


def register(spec: GeneratorSpec) -> GeneratorSpec:
    """Add ``spec`` to the registry (a later spec of the same name replaces it)."""
    if not isinstance(spec, GeneratorSpec):
        raise TypeError(f"expected a GeneratorSpec, got {type(spec).__name__}")
    REGISTRY[spec.name] = spec
    return spec


def load_plugins(entry_points=None) -> list[str]:
    """Register the generators that installed packages declare in the ``ganclip.generators``
    entry point group (:mod:`ganclip.generators.plugins`: a factory returning a generator,
    a :class:`GeneratorSpec`, or a function returning one). A plug-in that fails to load is
    skipped with a warning naming it, and says why when it is asked for.

    Returns
    -------
    names : list of str, the models registered
    """
    from ganclip.generators.plugins import load_plugins as load

    return load(entry_points)


def check_device(device) -> str:
    """``device`` as a string when torch can run on it here; a one-line error otherwise."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BadInputError(f"unknown --device '{device}' ({one_line(exc, limit=120)}); "
                            "e.g. cpu, cuda") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"--device '{device}': torch sees no CUDA GPU here; use cpu")
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise BadInputError(f"--device '{device}': ganclip runs on cpu, cuda or mps")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise BadInputError(f"--device '{device}': torch sees no Apple GPU here; use cpu")
    return str(device)


def check_precision(precision: str, *, accepted=PRECISIONS[1:], device="cpu",
                    model: str | None = None) -> str:
    """The one precision check: a known name, one ``model`` accepts, that ``device`` runs."""
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision '{precision}' (--precision); available: "
                            f"{', '.join(PRECISIONS)}")
    if precision != "auto" and precision not in accepted:
        raise BadInputError(f"--precision {precision}: {model or 'this model'} draws in "
                            f"{', '.join(('auto',) + tuple(accepted))}")
    if precision == "fp16" and str(device).split(":")[0] == "cpu":
        # CPUs run fp16 convolutions in slow emulation, if at all: refuse rather than crawl
        raise BadInputError("--precision fp16 needs a CUDA device; on a CPU use fp32")
    return precision


def available_models() -> list[str]:
    """Names ``--model`` accepts, ``auto`` first, then the built-in and plug-in models and
    those added to the cache (``ganclip models add``)."""
    from ganclip.usermodels import added

    return ["auto", *REGISTRY, *(name for name in added() if name not in REGISTRY)]


# suffix → spec_for(path): how a family reads a model file given as --model PATH
FILE_KINDS: dict[str, Callable[[Path], GeneratorSpec]] = {}


def register_file_kind(suffix: str, spec_for: Callable[[Path], GeneratorSpec]) -> None:
    """Let ``--model PATH`` take files ending in ``suffix`` (".onnx"): ``spec_for(path)``
    reads what it needs of the file (cheaply, before any analysis) and returns the spec
    that loads it, named after the path; a bad file gets a one-line error."""
    FILE_KINDS[suffix.lower()] = spec_for


def is_model_file(name) -> bool:
    """Whether a ``--model`` value names a file rather than a registered model."""
    text = str(name)
    return Path(text).suffix.lower() in FILE_KINDS or "/" in text or "\\" in text


_FILE_SPECS: dict[tuple, GeneratorSpec] = {}  # (path, size, mtime) → spec: read a file once


def file_spec(path) -> GeneratorSpec:
    """The spec of a model file (``--model PATH``), read once per version of the file."""
    path = Path(path).expanduser()
    kinds = ", ".join(sorted(FILE_KINDS))
    if path.suffix.lower() not in FILE_KINDS:
        raise BadInputError(f"--model {path}: ganclip reads model files ending in {kinds}, "
                            f"or a model name ({', '.join(available_models())})")
    if not path.is_file():
        raise BadInputError(f"--model {path}: no such file")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_SPECS:
        _FILE_SPECS[key] = FILE_KINDS[path.suffix.lower()](path)
    return _FILE_SPECS[key]


def spec(name: str) -> GeneratorSpec:
    """The spec of ``name`` (not ``auto``): a registered model or a model file; a one-line
    error naming the choices."""
    if name not in REGISTRY and is_model_file(name):
        return file_spec(name)
    if name not in REGISTRY:
        from ganclip.usermodels import path_of

        found = path_of(name)  # a model added to the cache under a name
        if found is not None:
            return replace(file_spec(found), name=name)
    return lookup(REGISTRY, name, what="model", choices=available_models())


def resolve_model(name: str, *, weights=None) -> tuple[str, str | None]:
    """Turn ``auto`` into a concrete model name, with a notice saying why.

    ``auto`` is the first model of :data:`AUTO_PREFERENCE` that draws without a download
    (its weights cached, or given with ``weights``).

    Returns
    -------
    name : str, a key of :data:`REGISTRY`
    notice : str or None, one line for the user when ``auto`` chose
    """
    if name != "auto":
        return spec(name).name, None  # a model file's spec is named after its path
    skipped = []
    for candidate in AUTO_PREFERENCE:
        chosen = REGISTRY.get(candidate)
        if chosen is None:
            continue
        if not chosen.ready(weights):
            skipped.append(candidate)
        elif skipped:
            families = {REGISTRY[n].family or n for n in skipped}
            return chosen.name, (f"model auto: no {' or '.join(sorted(families))} weights are "
                                 f"cached, using the built-in '{chosen.name}' generator")
        elif weights is not None:
            return chosen.name, f"model auto: using {chosen.name} with the weights in {weights}"
        else:
            found = chosen.prepare(None, download=False)
            return chosen.name, (f"model auto: using {chosen.name}"
                                 + (f" from {found.parent}" if found else ""))
    raise BadInputError("model auto: no generator is ready; give --model")


@dataclass(frozen=True)
class Prepared:
    """A model resolved and its weights found, before anything is built."""

    spec: GeneratorSpec
    weights: Path | None  # the checkpoint load() gets; None for a model without weights
    notice: str | None = None  # auto's one line, said once every input has been checked

    def load(self, *, size, seed: int = 0, device: str = "cpu", precision: str = "auto",
             quiet: bool = True, fit: str = "extend") -> Generator:
        """The generator, for frames of ``size`` (width, height; one int is a square)."""
        size = (size, size) if isinstance(size, int) else tuple(size)
        extra = {"fit": fit} if self.spec.extends else {}
        return self.spec.load(self.weights, size=size, seed=seed, device=device,
                              precision=self.spec.check_precision(precision, device),
                              quiet=quiet, **extra)


def prepare(name: str = "auto", *, weights=None, quiet: bool = True) -> Prepared:
    """Resolve ``name`` and find (or fetch) its weights, before any long work."""
    name, notice = resolve_model(name, weights=weights)
    chosen = spec(name)
    return Prepared(chosen, chosen.prepare(weights, download=True, quiet=quiet), notice)


def load_generator(name: str = "auto", *, size=256, seed: int = 0, device: str = "cpu",
                   weights=None, precision: str = "auto", quiet: bool = True,
                   fit: str = "extend") -> Generator:
    """Build a generator by name.

    Parameters
    ----------
    name : str, a name from :func:`available_models`
    size : (width, height) or one side, the frame wanted; resolution-free generators draw
        at it natively, the others at their own size (the render warps and resizes)
    fit : "extend" or "crop", how a square-native generator that ``extends`` fills a wide
        or tall frame
    seed : int, fixes random weights
    device : str, torch device
    weights : path or None, local weights (a folder or a file) for a model that has them
    precision : "auto" or one of the model's precisions
    quiet : bool, no download progress bars
    """
    check_precision(precision, device=device)
    prepared = prepare(name, weights=weights, quiet=quiet)
    if prepared.notice:
        log.info(prepared.notice)
    return prepared.load(size=size, seed=seed, device=check_device(device),
                         precision=precision, quiet=quiet, fit=fit)


def _register_builtins() -> None:
    from ganclip.generators.builtin import SPECS, stylegan_spec
    from ganclip.generators.onnx import spec_for as onnx_spec

    for one in SPECS:
        register(one)
    register_file_kind(".onnx", onnx_spec)
    for suffix in (".pkl", ".safetensors"):  # NVIDIA's StyleGAN snapshots, ganclip's files
        register_file_kind(suffix, stylegan_spec)


_register_builtins()
load_plugins()
