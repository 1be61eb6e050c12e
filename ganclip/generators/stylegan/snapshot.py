"""Reading NVIDIA's StyleGAN network snapshots (``.pkl``) as data, never as code.

NVIDIA's training loops pickle each network as
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta`` holds the
whole Python source of the module that defined the class, the class name and the object's
``__dict__``. Unpickling such a file the usual way imports ``torch_utils`` and executes that
source, so a snapshot from a stranger can run anything. :func:`read_snapshot` unpickles
with a restricted :class:`pickle.Unpickler` whose ``find_class`` knows only the handful of
globals that tensors, numpy scalars and plain containers need; each persistent object comes
back as a :class:`Persistent` (class name, source digest and state: tensors, numbers,
dicts), and the embedded source is kept as text and never executed or imported. Anything
else in the file is refused with an error naming it.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganclip.errors import GanclipError, WeightsError, one_line

TF_MODULES = ("dnnlib.tflib", "tensorflow")  # what a TensorFlow-era StyleGAN pickle needs
TF_HELP = ("convert it to a PyTorch snapshot with NVIDIA's stylegan2-ada-pytorch "
           "(python legacy.py --source=OLD.pkl --dest=NEW.pkl), then give NEW.pkl")


class SnapshotError(WeightsError):
    """A ``.pkl`` that is not a StyleGAN snapshot ganclip can read as data."""


class EasyDict(dict):
    """``dnnlib.util.EasyDict`` read as data: a dict whose keys are also attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class Persistent:
    """One of NVIDIA's persistent network objects, as data."""

    class_name: str  # "Generator", "SynthesisLayer", …: no module name is stored
    source_sha256: str  # digest of the embedded module source (never run)
    source: str = field(repr=False)  # that source, as text
    state: dict = field(repr=False)  # the object's __dict__: _parameters, _modules, …

    @property
    def params(self) -> dict:
        """Name → tensor of the module's own parameters (None entries dropped)."""
        return {k: v for k, v in (self.state.get("_parameters") or {}).items()
                if v is not None}

    @property
    def buffers(self) -> dict:
        """Name → tensor of the module's own buffers."""
        return {k: v for k, v in (self.state.get("_buffers") or {}).items() if v is not None}

    @property
    def children(self) -> dict:
        """Name → child module (:class:`Persistent`)."""
        return dict(self.state.get("_modules") or {})

    @property
    def init_kwargs(self) -> dict:
        """The keyword arguments the object was built with (``_init_kwargs``)."""
        return dict(self.state.get("_init_kwargs") or {})

    def tensors(self, prefix: str = "") -> dict:
        """Every parameter and buffer below this module, by ``state_dict()`` name."""
        out = {prefix + k: v for k, v in {**self.params, **self.buffers}.items()}
        for name, child in self.children.items():
            if isinstance(child, Persistent):
                out.update(child.tensors(f"{prefix}{name}."))
        return out

    def walk(self):
        """This object and every persistent object below it, depth first."""
        for _, node in self.named_nodes():
            yield node

    def named_nodes(self, prefix: str = ""):
        """(``prefix`` + dotted path + ".", object) for this object and every persistent
        object below it, depth first; this object's path is ``prefix`` itself."""
        yield prefix, self
        for name, child in self.children.items():
            if isinstance(child, Persistent):
                yield from child.named_nodes(f"{prefix}{name}.")


def _persistent(meta) -> Persistent:
    if not isinstance(meta, dict) or meta.get("type") != "class" or \
            not isinstance(meta.get("class_name"), str) or not isinstance(meta.get("state"), dict):
        raise SnapshotError("holds a persistent object of an unknown layout")
    source = meta.get("module_src") or ""
    return Persistent(class_name=meta["class_name"], source=source, state=meta["state"],
                      source_sha256=hashlib.sha256(source.encode()).hexdigest())


def _storage(payload: bytes):
    import torch

    # each storage is a small legacy torch.save stream; torch's own weights-only reader
    # takes it (tensors and storages only)
    return torch.load(io.BytesIO(payload), weights_only=True)


def _parameter(data, requires_grad=False, hooks=None):
    return data  # a parameter is its tensor; nothing here trains


def _multiarray():
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    return multiarray


def _allowed() -> dict:
    import torch._utils

    multiarray = _multiarray()
    table = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent,
        ("dnnlib.util", "EasyDict"): EasyDict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_parameter"): _parameter,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch.storage", "_load_from_bytes"): _storage,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "scalar")] = multiarray.scalar
        table[(module, "_reconstruct")] = multiarray._reconstruct
    return table


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed: dict):
        super().__init__(file)
        self._allowed = allowed

    def find_class(self, module: str, name: str):
        found = self._allowed.get((module, name))
        if found is not None:
            return found
        if module.startswith(TF_MODULES):
            raise _TensorFlow(f"{module}.{name}")
        raise SnapshotError(f"holds '{module}.{name}', which is not the data of a StyleGAN "
                            "snapshot (ganclip never runs code from a pickle)")

    def persistent_load(self, pid):
        raise SnapshotError("holds persistent ids, which StyleGAN snapshots do not use")


class _TensorFlow(Exception):
    pass


def read_pickle(path) -> object:
    """Unpickle ``path`` with only the globals a PyTorch StyleGAN snapshot needs.

    Returns
    -------
    the unpickled object: dicts, lists, tensors, numpy values and :class:`Persistent`

    Raises
    ------
    SnapshotError
        a TensorFlow-era pickle (saying how to convert it), a global that is not data
        (naming it), or a truncated or damaged file
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _SafeUnpickler(f, _allowed()).load()
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
    except _TensorFlow as exc:
        raise SnapshotError(f"{path} is a TensorFlow-era StyleGAN pickle (it needs {exc}), "
                            f"which ganclip does not read; {TF_HELP}") from None
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or one_line(exc)}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, RuntimeError, MemoryError, UnicodeDecodeError) as exc:
        # a cut-off file ends in EOFError or a bad opcode; a damaged tensor payload in
        # torch's reader (RuntimeError)
        raise SnapshotError(f"{path} is truncated or damaged, not a readable pickle "
                            f"({one_line(exc, limit=120)}); download it again") from None


def read_snapshot(path) -> Persistent:
    """The ``G_ema`` generator of a StyleGAN training snapshot, read as data.

    Raises
    ------
    SnapshotError
        see :func:`read_pickle`; also a pickle that is not a snapshot with ``G_ema``
    """
    data = read_pickle(path)
    if isinstance(data, dict) and isinstance(data.get("G_ema"), Persistent):
        return data["G_ema"]
    if isinstance(data, Persistent) and data.class_name == "Generator":
        return data  # a generator pickled on its own
    keys = ", ".join(map(str, list(data)[:6])) if isinstance(data, dict) else \
        type(data).__name__
    raise SnapshotError(f"{path} is not a StyleGAN snapshot: it holds {keys or 'nothing'}, "
                        "not a G_ema generator")


# -- from a snapshot's objects to ganclip's modules ---------------------------------------------

def plain(value):
    """A JSON-able copy of init kwargs: dicts (EasyDict), lists, tuples and arrays become
    dicts and lists, numpy scalars Python numbers; the rest is kept."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def tensor_problems(model, tensors: dict) -> str | None:
    """What keeps ``tensors`` from being exactly the names and shapes of
    ``model.state_dict()``, in a few words; None when they are."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = []
    for what, names in (("lacks", sorted(set(expected) - set(given))),
                        ("has unexpected", sorted(set(given) - set(expected)))):
        if names:
            problems.append(f"{what} {len(names)} tensor(s) ({', '.join(names[:3])}"
                            f"{', …' if len(names) > 3 else ''})")
    wrong = sorted(k for k in set(expected) & set(given) if expected[k] != given[k])
    if wrong:
        problems.append(f"has {len(wrong)} of the wrong shape ({wrong[0]}: "
                        f"{list(given[wrong[0]])}, not {list(expected[wrong[0]])})")
    return "; ".join(problems) or None


def load_persistent(node: Persistent, build, *, family: str, known_classes, where,
                    layout_problem=None):
    """A snapshot's generator as one of ganclip's modules, checked at every step and its
    tensors loaded strictly; in eval mode, without gradients.

    Parameters
    ----------
    node : Persistent, the ``G_ema`` generator, as data
    build : callable, () -> the module its options describe (TypeError, ValueError or a
        GanclipError for options ganclip does not know)
    family : str, what the messages call the family ('StyleGAN2')
    known_classes : collection of str, the class names NVIDIA's family has
    where : str or Path, what the messages name (the file)
    layout_problem : callable or None, (module, node) -> what differs in a record the
        snapshot keeps beside its tensors, or None

    Raises
    ------
    SnapshotError
        a class the family does not have (naming it and where), options ganclip does not
        know, a module tree, layout or tensors that are not exactly the architecture's
    """
    for path, child in node.named_nodes("G_ema."):
        if child.class_name not in known_classes:
            raise SnapshotError(
                f"{where}: {path.rstrip('.')} is a class '{child.class_name}' that NVIDIA's "
                f"{family} does not have; the snapshot comes from modified network code, which "
                "ganclip cannot load (only NVIDIA's StyleGAN2, 2-ADA and 3 generators)")
    try:
        model = build()
    except (TypeError, ValueError, GanclipError) as exc:
        raise SnapshotError(f"{where}: its generator was built with options ganclip's "
                            f"{family} does not know ({one_line(exc, limit=160)})") from None
    for path, child in node.named_nodes():
        try:
            ours = type(model.get_submodule(path.rstrip("."))).__name__
        except AttributeError:
            ours = None
        if ours != child.class_name:
            raise SnapshotError(
                f"{where}: G_ema.{path.rstrip('.')} is a '{child.class_name}' where {family} "
                f"has {f'a {ours!r}' if ours else 'nothing'}; the file is damaged or from a "
                "modified network")
    tensors = node.tensors()
    problem = (layout_problem and layout_problem(model, node)) or \
        tensor_problems(model, tensors)
    if problem:
        raise SnapshotError(f"{where}: the generator {problem} for the architecture its "
                            "options describe; the file is damaged or from a modified network")
    model.load_state_dict(tensors, strict=True)
    return model.eval().requires_grad_(False)
