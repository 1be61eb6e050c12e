"""Generator plug-ins: a package adds ``--model NAME`` by declaring an entry point ``NAME``
in the ``ganclip.generators`` group.

The entry point names a **factory** that returns a generator (the
:class:`~ganclip.generators.Generator` protocol: ``name``, ``dim_z``, ``n_classes``,
``size`` and ``__call__(z, y, truncation) -> uint8 [B, H, W, 3]``), called with keywords::

    factory(*, size=(width, height), seed=0, device="cpu", precision="auto", weights=None)

- ``size`` : (int, int), the frame the render wants; the generator may draw another
  size (its ``size``), which the render scales and moves its camera over
- ``seed`` : int, for random weights
- ``device`` : str, a torch device ganclip has checked ("cpu", "cuda", "cuda:1", "mps")
- ``precision`` : "auto" or one of ``factory.precisions``
- ``weights`` : Path or None, the file given with ``--weights``

A factory may take fewer of these (only those it names are passed; ``**kwargs`` gets them
all), but at least one, or declare ``dim_z``: a callable without parameters is taken for
a function returning a :class:`~ganclip.generators.GeneratorSpec` and called when ganclip
starts. Optional attributes on the factory say more before anything is built:
``dim_z`` and ``n_classes`` (without them the generator is built once when the model is
first asked for, to read them, and kept for the first load that asks for the same
keywords: size (256, 256), seed 0, device "cpu", precision "auto"), ``precisions``
(default all when it takes ``precision``, else fp32), ``description`` (default its
docstring's first line) and ``native_size``.

An entry point may also name a GeneratorSpec, or a function without parameters that
returns one, registered under the spec's own name.

A plug-in that fails to import is skipped with a warning, and asking for it says why;
one whose factory raises, or returns something that is not a generator, is a one-line
``generator plug-in 'NAME' (module:attr) failed: …`` when it is used.
"""

from __future__ import annotations

import inspect
import logging
import operator
from pathlib import Path

from ganclip import generators
from ganclip.errors import BadInputError, one_line
from ganclip.generators import ENTRY_POINT_GROUP, PRECISIONS, GeneratorSpec

log = logging.getLogger(__name__)

KEYWORDS = ("size", "seed", "device", "precision", "weights")  # what a factory may take
PROBE = {"size": (256, 256), "seed": 0, "device": "cpu", "precision": "auto",
         "weights": None}  # a generator built only to read its widths (--size's default)
PROTOCOL = ("a factory returns a generator with int dim_z and n_classes, size (width, "
            "height) and __call__(z, y, truncation)")


def load_plugins(entry_points=None) -> list[str]:
    """Register what each entry point of the ``ganclip.generators`` group names (see the
    module's docstring); a plug-in that does not load is skipped with a warning naming it
    and stands in the registry, unless the name is taken, to say why when asked for.

    Parameters
    ----------
    entry_points : iterable of importlib.metadata.EntryPoint, or None for those installed

    Returns
    -------
    names : list of str, the models registered (not the stand-ins of broken plug-ins)
    """
    if entry_points is None:
        from importlib.metadata import entry_points as installed

        entry_points = installed(group=ENTRY_POINT_GROUP)
    names = []
    for entry in entry_points:
        try:
            names.append(generators.register(spec_of(entry)).name)
        except Exception as exc:  # a broken plug-in must not stop ganclip
            log.warning(f"{label(entry)} was not loaded: {reason(exc)}")
            if entry.name not in generators.REGISTRY:
                generators.register(_broken(entry, exc))
    return names


def label(entry) -> str:
    """How messages name a plug-in: ``generator plug-in 'NAME' (module:attr)``."""
    return f"generator plug-in '{entry.name}' ({entry.value})"


def reason(exc: BaseException) -> str:
    """An exception as a plug-in failure's one line: its type, then its message."""
    return f"{type(exc).__name__}: {one_line(exc, limit=300)}"


def spec_of(entry) -> GeneratorSpec:
    """The spec an entry point gives: the spec it names, the one its function returns, or
    a :class:`FactorySpec` for a factory (nothing is built here)."""
    target = entry.load()
    if isinstance(target, GeneratorSpec):
        return target
    if not callable(target):
        raise TypeError(f"it names a {type(target).__name__}, not a generator factory or a "
                        "GeneratorSpec")
    plugin = Plugin(entry, target)
    if plugin.keywords or plugin.declared:
        return plugin.spec()
    made = target()  # a function returning a spec, or a factory that takes no keywords
    if isinstance(made, GeneratorSpec):
        return made
    if problems := _problems(made):
        raise TypeError(f"it returned a value of type {type(made).__name__}, neither a "
                        f"GeneratorSpec nor a generator ({', '.join(problems)})")
    plugin.keep(made, {})
    return plugin.spec()


def _broken(entry, exc: Exception) -> GeneratorSpec:
    """A stand-in for a plug-in that did not load: listed as such, one line when used."""
    message = f"{label(entry)} failed: {reason(exc)}"

    def fail(*args, **kwargs):
        raise BadInputError(message)

    return GeneratorSpec(name=entry.name, description=f"did not load: {reason(exc)}",
                         dim_z=0, n_classes=0, native_size=None, precisions=PRECISIONS[1:],
                         load=fail, prepare=fail, status=lambda: "plug-in, broken",
                         ready=lambda weights=None: False)


def _keywords(factory) -> tuple[str, ...]:
    """Which of :data:`KEYWORDS` ``factory`` takes (all with ``**kwargs`` or no signature)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: give it the contract
        return KEYWORDS
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return KEYWORDS
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return tuple(k for k in KEYWORDS if k in named)


def _count(value, *, least: int) -> int | None:
    """``value`` as an int of at least ``least``, else None (bools are not counts)."""
    if isinstance(value, bool):
        return None
    try:
        value = operator.index(value)
    except TypeError:
        return None
    return value if value >= least else None


def _problems(made) -> list[str]:
    """How ``made`` falls short of a generator (:data:`PROTOCOL`); empty when it does not."""
    problems = [f"{field} {getattr(made, field, None)!r}" for field, least in
                (("dim_z", 1), ("n_classes", 0))
                if _count(getattr(made, field, None), least=least) is None]
    size = getattr(made, "size", None)
    try:
        fits = len(size) == 2 and all(_count(side, least=1) for side in size)
    except TypeError:
        fits = False
    return problems + ([] if fits else [f"size {size!r}"]) + (
        [] if callable(made) else ["no __call__"])


class Plugin:
    """One factory entry point: builds its generators and knows their widths.

    Parameters
    ----------
    entry : importlib.metadata.EntryPoint, for its name and messages
    factory : callable, what the entry point names
    """

    def __init__(self, entry, factory):
        self.entry, self.factory, self.name = entry, factory, entry.name
        self.keywords = _keywords(factory)
        self.declared = hasattr(factory, "dim_z") or hasattr(factory, "n_classes")
        self.widths = None  # {"dim_z": int, "n_classes": int} once known
        self.first = None  # (keywords, generator): built before any load, for the first
        if self.declared:
            widths = {"dim_z": _count(getattr(factory, "dim_z", None), least=1),
                      "n_classes": _count(getattr(factory, "n_classes", None), least=0)}
            if None in widths.values():
                raise TypeError(f"its factory declares dim_z={getattr(factory, 'dim_z', None)!r}"
                                f" and n_classes={getattr(factory, 'n_classes', None)!r}; "
                                "give both as ints, or neither")
            self.widths = widths

    def spec(self) -> FactorySpec:
        """The spec that registers this plug-in as ``--model NAME``."""
        factory = self.factory
        precisions = getattr(factory, "precisions", None) or (
            PRECISIONS[1:] if "precision" in self.keywords else ("fp32",))
        doc = (inspect.getdoc(factory) or "").strip().splitlines()
        description = getattr(factory, "description", None) or (
            doc[0] if doc else f"plug-in {self.entry.value}")
        return FactorySpec.of(self, name=self.name, description=str(description),
                              native_size=getattr(factory, "native_size", None),
                              precisions=tuple(precisions), load=self.load,
                              prepare=self.prepare, status=lambda: "plug-in")

    def width(self, field: str, *, weights=None) -> int:
        """``dim_z`` or ``n_classes``: declared, else read off a generator built for it."""
        if self.widths is None:
            keywords = {**PROBE, "weights": weights}
            self.keep(self.build(keywords), keywords)
        return self.widths[field]

    def prepare(self, weights=None, *, download: bool = True, quiet: bool = True):
        """Check ``--weights`` and learn the widths (building once when not declared)."""
        if weights is not None:
            if "weights" not in self.keywords:
                raise BadInputError(f"--weights {weights}: {label(self.entry)} takes no "
                                    "weights file")
            weights = Path(weights).expanduser()
            if not weights.is_file():
                raise BadInputError(f"--weights {weights}: no such file (for "
                                    f"{label(self.entry)})")
        self.width("dim_z", weights=weights)
        return weights

    def load(self, weights, *, size, seed: int, device: str, precision: str, quiet: bool):
        """The generator for these keywords; the one built to read the widths when it was
        built for the same."""
        keywords = {"size": tuple(size), "seed": seed, "device": device,
                    "precision": precision, "weights": weights}
        first, self.first = self.first, None
        if first is not None and self._given(first[0]) == self._given(keywords):
            return first[1]
        return self.build(keywords)

    def build(self, keywords: dict):
        """Call the factory with the keywords it takes; one line naming the plug-in when it
        raises or returns something that is not a generator."""
        try:
            made = self.factory(**self._given(keywords))
        except Exception as exc:  # the plug-in's own failure, whatever it is
            raise BadInputError(f"{label(self.entry)} failed: {reason(exc)}") from None
        return self.check(made)

    def keep(self, made, keywords: dict) -> None:
        """Keep a generator built before any load, and its widths."""
        self.first = (keywords, made)
        self.widths = {"dim_z": made.dim_z, "n_classes": made.n_classes}

    def check(self, made):
        """``made`` when it is a generator with the widths this plug-in said; else one line."""
        if problems := _problems(made):
            raise BadInputError(f"{label(self.entry)} failed: it returned a value of type "
                                f"{type(made).__name__} with {', '.join(problems)}; "
                                f"{PROTOCOL}")
        widths = {"dim_z": int(made.dim_z), "n_classes": int(made.n_classes)}
        if self.widths is not None and widths != self.widths:
            said = ", ".join(f"{k} {v}" for k, v in self.widths.items())
            raise BadInputError(f"{label(self.entry)} failed: its generator takes "
                                f"dim_z {widths['dim_z']}, n_classes {widths['n_classes']}, "
                                f"but it said {said}; they must not change")
        return made

    def _given(self, keywords: dict) -> dict:
        """The keywords the factory takes (``weights`` only when it has some or takes it)."""
        return {k: v for k, v in keywords.items() if k in self.keywords}


class _Width:
    """A spec field the plug-in knows (``dim_z``, ``n_classes``): declared, or read off its
    generator, built on the first read (:meth:`Plugin.width`)."""

    def __set_name__(self, owner, name: str):
        self.field = name

    def __get__(self, spec, owner=None):
        return self if spec is None else spec.plugin.width(self.field)

    def __set__(self, spec, value):
        pass  # GeneratorSpec's __init__ stores a placeholder; the plug-in knows the width


class FactorySpec(GeneratorSpec):
    """A factory plug-in's spec: a :class:`~ganclip.generators.GeneratorSpec` whose
    ``dim_z`` and ``n_classes`` the plug-in gives when first read (the render reads them
    after ``prepare``, before the analysis)."""

    dim_z = _Width()
    n_classes = _Width()

    @classmethod
    def of(cls, plugin: Plugin, **fields) -> FactorySpec:
        spec = cls(dim_z=0, n_classes=0, **fields)
        object.__setattr__(spec, "plugin", plugin)  # frozen like any spec once made
        return spec

    # one spec per plug-in: compared and hashed as itself, shown without building anything
    __eq__, __hash__ = object.__eq__, object.__hash__

    def __repr__(self) -> str:
        return f"FactorySpec(name={self.name!r}, plug-in {self.plugin.entry.value!r})"
