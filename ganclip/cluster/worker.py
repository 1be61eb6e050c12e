"""The worker side: a Ray actor that loads the generator once and turns segments of a plan
into encoded H.264 files, handed back as bytes.

Runs in the actors' processes, on any node: ganclip, torch, PyAV and any plug-in model
must be installed there (the same versions as the driver's). The weights are not looked
for on the node: they come from the driver through Ray's object store
(:func:`pack_weights`, :func:`unpack_weights`), so a worker never downloads at render time.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from ganclip.errors import BadInputError

log = logging.getLogger("ganclip.cluster")

PLANS_KEPT = 4  # plans an actor keeps deserialised: a few songs drawn by one pool at once


def pack_weights(path: Path | None) -> dict | None:
    """What :func:`unpack_weights` needs to rebuild ``path`` on another node: a file with
    the ``config.json`` beside it, if any (a BigGAN checkpoint's layout,
    :data:`ganclip.weights.CONFIG`), or a folder with every file in it.

    Returns
    -------
    None when ``path`` is None; else ``{"name": path.name, "folder": bool, "files":
    {relative path: bytes}, "digest": sha256 hex of it all}``
    """
    from ganclip.weights import CONFIG

    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        files = {str(p.relative_to(path)): p.read_bytes()
                 for p in sorted(path.rglob("*")) if p.is_file()}
    else:
        files = {path.name: path.read_bytes()}
        if path.name != CONFIG and path.with_name(CONFIG).is_file():
            files[CONFIG] = path.with_name(CONFIG).read_bytes()
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return {"name": path.name, "folder": path.is_dir(), "files": files,
            "digest": digest.hexdigest()}


def unpack_weights(packed: dict, root: Path | None = None) -> Path:
    """Write what :func:`pack_weights` packed into ``<temp>/ganclip-weights-<uid>/<digest>/``
    (each file under a temporary name, then renamed; reused by the node's other actors and
    later renders) and return the path that stands for the original: the file, of the same
    name and suffix, or the folder."""
    from ganclip.files import atomic_path

    root = (Path(root) / "ganclip-weights" if root else _temp("weights")) / \
        packed["digest"][:24]
    for name, data in packed["files"].items():
        target = root / (Path(packed["name"]) / name if packed["folder"] else name)
        if target.is_file() and target.stat().st_size == len(data):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target, suffix=".part") as tmp:
            tmp.write_bytes(data)
    return root / packed["name"]


def _temp(what: str) -> Path:
    """``<temp>/ganclip-<what>-<uid>``: one per node and user, shared by its actors."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"ganclip-{what}-{uid}"


def _sweep(folder: Path) -> None:
    """Remove the unfinished segments (``.<pid>_segment_….part``) of actors that were
    killed: their processes are gone."""
    for stale in folder.glob(".*_segment_*.part"):
        pid = stale.name[1:].split("_")[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except (ValueError, OSError):  # not ours, or another user's process
            pass


class Painter:
    """One actor: a generator, loaded on its first segment, drawing and encoding segments.

    A CPU actor keeps to the CPUs Ray gave it: it draws with ``threads`` torch threads,
    then encodes with as many x264 threads, one after the other, so that actors filling a
    node's CPUs do not crowd each other (a local render overlaps the two instead, for a
    machine it has to itself). A GPU actor draws on its GPU while a thread encodes the
    last batches, as a local render does.

    Parameters
    ----------
    model : str, the ``--model`` name of a registered (built-in or plug-in) model, or None
        for a model file, whose copy the weights then are
    load : dict of :meth:`ganclip.generators.Prepared.load`'s keywords, ``device`` this
        actor's own
    threads : int, the CPUs it may use
    """

    def __init__(self, model: str | None, load: dict, threads: int):
        self.model, self.threads = model, threads
        self.load = dict(load, quiet=True)
        self.generator = self.spec = None
        self.plans: dict[str, object] = {}
        self.scratch = _temp("segments")
        self.scratch.mkdir(exist_ok=True)
        _sweep(self.scratch)
        # torch's import (about 1 s of CPU) is paid here, while the driver waits for the
        # actors to start, not in the first segment: there it slowed the second of two
        # actors to ~28 frames/s against ~40 for a warm one
        import ganclip.render  # noqa: F401
        import ganclip.video  # noqa: F401
        if "torch" not in sys.modules and importlib.util.find_spec("torch") is not None:
            import torch  # noqa: F401

    def where(self) -> dict:
        """Which node and process this actor runs in: answered once it has started."""
        import ray

        context = ray.get_runtime_context()
        return {"node": context.get_node_id(), "host": ray.util.get_node_ip_address(),
                "pid": os.getpid()}

    def _load(self, weights) -> bool:
        """Build the generator the first time, from ``weights`` (an ObjectRef of
        :func:`pack_weights`'s dict, or of None); True when this call did."""
        import ray

        from ganclip import generators
        from ganclip.render import torch_threads

        if self.generator is not None:
            return False
        packed = ray.get(weights)
        local = None if packed is None else unpack_weights(packed)
        if self.model is None:  # a model file: its spec is read from the copy
            chosen = generators.spec(str(local))
            path = chosen.prepare(None, download=False, quiet=True)
        else:
            try:
                chosen = generators.spec(self.model)
            except BadInputError:
                raise BadInputError(f"model {self.model} is not installed on the node "
                                    f"{ray.util.get_node_ip_address()}: a plug-in model must "
                                    "be installed on every node, as ganclip is") from None
            path = None if local is None else chosen.prepare(local, download=False,
                                                             quiet=True)
        self.spec = chosen
        self.generator = generators.Prepared(chosen, path).load(**self.load)
        torch_threads(self.threads)
        return True

    def _plan(self, ref):
        import ray

        key = ref.hex()
        if key not in self.plans:
            while len(self.plans) >= PLANS_KEPT:
                self.plans.pop(next(iter(self.plans)))
            # Ray hands numpy arrays over read-only, in its shared memory; a generator may
            # write into what it is given (torch warns of that), so the actor has its copy
            self.plans[key] = copy.deepcopy(ray.get(ref))
        return self.plans[key]

    def segment(self, refs: list, k: int, first: int, last: int, settings: dict) -> dict:
        """Draw frames ``first:last`` of the plan in batches from ``first``, as a local
        render does, and encode them as one segment.

        Parameters
        ----------
        refs : [ObjectRef of the plan, ObjectRef of the packed weights], in a list so that
            Ray hands them over unresolved: each is fetched once, when first needed
        settings : dict of ``fps``, ``size`` (width, height), ``batch``, ``crf``, ``preset``

        Returns
        -------
        dict: ``data`` (bytes of the .mp4), ``node``, ``host``, ``pid``, ``seconds`` (of
        drawing and encoding), ``loaded`` (whether the model was loaded for it)
        """
        from ganclip.video import VideoWriter

        began = time.perf_counter()
        loaded = self._load(refs[1])
        plan = self._plan(refs[0])
        path = self.scratch / f"{os.getpid()}_segment_{k:05d}.mp4"

        def writer(_=None):
            video = VideoWriter(path, fps=settings["fps"], size=tuple(settings["size"]),
                                first_frame=first, crf=settings["crf"],
                                preset=settings["preset"])
            if self.load["device"] == "cpu":  # the encoder keeps to the actor's CPUs too
                video.video.thread_count = self.threads  # (x264's output is the same)
            return video

        batches = self._batches(plan, first, last, settings)
        try:
            if self.load["device"] == "cpu":
                with writer() as video:
                    for frames in batches:
                        video.write(frames)
            else:
                self._overlapped(writer, batches, k, last - first)
            data = path.read_bytes()
        finally:
            path.unlink(missing_ok=True)
        return {"data": data, **self.where(), "seconds": time.perf_counter() - began,
                "loaded": loaded}

    def _batches(self, plan, first: int, last: int, settings: dict):
        """The segment's frames, a batch at a time; stops when the driver cancels."""
        import ray

        from ganclip.render import _frames

        context = ray.get_runtime_context()
        for start in range(first, last, settings["batch"]):
            if context.is_canceled():  # the driver gave up on this render
                raise ray.exceptions.TaskCancelledError()
            stop = min(start + settings["batch"], last)
            yield _frames(self.generator, self.spec, plan, start, stop,
                          tuple(settings["size"]))

    @staticmethod
    def _overlapped(writer, batches, k: int, n: int) -> None:
        """Encode in a thread while the next batch is drawn (a GPU's actor)."""
        from ganclip.video import SegmentEncoder

        encoder = SegmentEncoder(writer, lengths={k: n})
        try:
            for frames in batches:
                encoder.put(k, frames)
            encoder.finish()
        except BaseException:
            encoder.abort()
            raise
