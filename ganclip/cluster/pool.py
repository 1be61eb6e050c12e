"""The driver side: a pool of Ray actors, and the loop that hands them segments.

The constants below are read when used: tests patch them here (``RESOURCE_WAIT``).

The driver keeps :data:`IN_FLIGHT` segments queued on each actor (one drawing, the next
waiting, so an actor never idles between two), writes each finished one into the work
folder under a temporary name then renames it, as a local render does, and requeues the
segments of an actor or node that died (at most :data:`MAX_ATTEMPTS` tries each).
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field

from ganclip.cluster.connect import ClusterError, connect, disconnect, import_ray
from ganclip.cluster.worker import Painter, pack_weights
from ganclip.errors import BadInputError, EncodingError, GanclipError, one_line

log = logging.getLogger("ganclip.cluster")

IN_FLIGHT = 2  # segments queued on an actor at once: one drawing, one waiting its turn
MAX_ATTEMPTS = 3  # tries of a segment whose actor or node died under it, before giving up
ACTOR_RESTARTS = 3  # times Ray starts a dead actor again (on another node, if need be)
RESOURCE_WAIT = 60.0  # seconds without any actor running before saying the cluster is full
CPU_THREADS = 2  # torch threads of a CPU actor by default: more actors, fewer threads each
# draw more frames per second than fewer actors with more threads, at a model's memory each
POLL = 0.5  # seconds between looks at the clock while waiting (for Ctrl-C and stalls)


@dataclass(eq=False)
class _Actor:
    handle: object
    number: int
    starting: object = None  # ObjectRef of where() until the actor answers (again)
    where: dict = field(default_factory=dict)  # node, host, pid, once it has answered
    busy: int = 0  # segments in flight on it


@dataclass
class _Run:
    """One render's segments on the pool."""

    work: object
    plan: object
    parts: list
    refs: list  # [ObjectRef of the plan, of the packed weights], handed to every segment
    settings: dict
    queue: collections.deque
    inflight: dict = field(default_factory=dict)  # ObjectRef → (segment, _Actor)
    attempts: collections.Counter = field(default_factory=collections.Counter)
    done: int = 0


class Pool:
    """Ray actors that each load the generator once and draw segments of any number of
    renders (songs) with it; a context manager.

    GPU clusters get one actor per GPU (``num_gpus=1``, drawing on ``cuda``); clusters
    without GPUs get CPU actors spread over the nodes, each keeping to its ``threads`` CPUs
    (torch's threads to draw, then as many of x264's to encode).

    The weights travel once, from this machine, through Ray's object store: a model file
    (``--model FILE.pkl``, ``.safetensors``, ``.onnx``, an added model) or a checkpoint
    from the cache or ``--weights`` (with the ``config.json`` beside it) is read here and
    written by each node into a temporary folder of its own (``ganclip-weights-<uid>``)
    under the same name, so nodes need neither the file nor the network. Plug-in models
    must be installed on every node, as ganclip itself is.

    Parameters
    ----------
    address : None or "local" (start Ray on this machine's CPUs and GPUs, shut down by
        :meth:`close`), "auto" (the cluster ``ray start`` made here, or $RAY_ADDRESS) or
        "HOST:PORT" of a cluster's head (joined, and left by :meth:`close`)
    prepared : :class:`ganclip.generators.Prepared`, the model and its weights found here
    load : dict of :meth:`~ganclip.generators.Prepared.load`'s keywords (size, seed,
        precision, fit…; ``device`` is each actor's own)
    actors : int or None, how many (default: one per GPU, else as many as the nodes' CPUs
        hold at ``threads`` each)
    threads : int or None, CPUs (torch threads) per actor (default :data:`CPU_THREADS`, or
        the cluster's CPUs shared among ``actors``; 1 on GPUs)
    device : None (default: ``load["device"]``, where "auto" or None is GPUs when the
        cluster has any, else CPUs), "cuda" or "cpu"
    quiet : bool, no output from the actors even with ``-v``

    Attributes
    ----------
    loads : int, times an actor loaded the model (once per actor, more after a restart)
    requeued : int, segments drawn again because their actor or node died
    """

    def __init__(self, address=None, *, prepared, load: dict, actors: int | None = None,
                 threads: int | None = None, device: str | None = None, quiet: bool = True):
        if actors is not None and actors < 1 or threads is not None and threads < 1:
            raise BadInputError(f"a Ray pool needs at least one actor and one thread each, "
                                f"not actors={actors}, threads={threads}")
        device = device or load.get("device")
        device = None if device == "auto" else device
        if device not in (None, "cpu", "cuda"):
            raise BadInputError(f"device of a Ray pool: None, 'cpu' or 'cuda', not {device!r}")
        self.ray = import_ray()
        self.prepared, self.load = prepared, dict(load)
        self.loads = self.requeued = 0
        self.actors: list[_Actor] = []
        self._idle_since = None
        self._deaths: list[str] = []
        self._connection = connect(address, verbose=log.isEnabledFor(logging.DEBUG)
                                   and not quiet)
        self.address = self._connection.address
        try:
            self._start(actors, threads, device)
        except BaseException:
            self.close()
            raise

    def _start(self, actors, threads, device) -> None:
        from ganclip.generators import REGISTRY

        ray = self.ray
        nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
        gpus = int(sum(n.get("GPU", 0) for n in nodes))
        if device == "cuda" or device is None and gpus:
            count, threads, self.device = actors or max(gpus, 1), threads or 1, "cuda"
            resources = {"num_gpus": 1, "num_cpus": threads}
            self.need = "1 GPU"
        else:
            cpus = [int(n.get("CPU", 0)) for n in nodes if n.get("CPU", 0) >= 1] or [1]
            if threads is None:
                threads = max(1, sum(cpus) // actors) if actors else min(CPU_THREADS,
                                                                          min(cpus))
            count = actors or max(1, sum(c // threads for c in cpus))
            self.device, resources = "cpu", {"num_cpus": threads}
            self.need = f"{threads} CPU{'s' if threads > 1 else ''}"
        self.threads = threads
        # fp16 asked of a cluster that turned out to have no GPU: said here, not by each actor
        self.prepared.spec.check_precision(self.load.get("precision", "auto"), self.device)
        model = None if self.prepared.spec.name not in REGISTRY else self.prepared.spec.name
        if model is None and self.prepared.weights is None:
            raise BadInputError(f"--model {self.prepared.spec.name}: no file to send to the "
                                "cluster's nodes")
        self._weights = ray.put(pack_weights(self.prepared.weights))  # once, for every actor
        remote = ray.remote(Painter).options(
            max_restarts=ACTOR_RESTARTS, max_task_retries=0, scheduling_strategy="SPREAD",
            **resources)
        load = dict(self.load, device=self.device)
        for number in range(count):
            handle = remote.remote(model, load, threads)
            self.actors.append(_Actor(handle, number, starting=handle.where.remote()))
        log.debug(f"{count} Ray actor{'s' if count > 1 else ''} for {self.prepared.spec.name}"
                  f" on {self.device}, {self.need} each, over {len(nodes)} node"
                  f"{'s' if len(nodes) > 1 else ''} ({self.address})")

    # ------------------------------------------------------------------------------------

    def draw(self, job, work, plan, todo, *, progress=None, quiet: bool = True) -> None:
        """Draw the unfinished segments ``todo`` of ``plan`` into ``work`` (a
        :class:`~ganclip.work.WorkFolder`), each finished one written and renamed into
        place as it comes, ``progress(frames_done, frames_total)`` called after each.

        Raises
        ------
        GanclipError naming the segment, when the generator or encoder fails in an actor
            (not retried; the finished segments are kept)
        ClusterError when a segment was lost :data:`MAX_ATTEMPTS` times, every actor died,
            or none could start within :data:`RESOURCE_WAIT` seconds
        KeyboardInterrupt, after cancelling the segments in flight and killing the actors
        """
        from ganclip.render import _progress
        from ganclip.work import segments

        if not self.actors:
            raise ClusterError("this Ray pool is closed (or its actors were stopped)")
        self._check(job, plan)
        gen = job.generator
        run = _Run(work=work, plan=plan, parts=segments(len(plan), plan.fps),
                   refs=[self.ray.put(plan), self._weights], queue=collections.deque(todo),
                   settings={"fps": plan.fps, "size": tuple(gen.size), "batch": gen.batch,
                             "crf": gen.quality, "preset": gen.preset})
        self._idle_since = None
        with _progress(total=len(plan), unit="frame", desc="render", quiet=quiet) as bar:
            run.done = work.done_frames(plan)
            bar.update(run.done)
            try:
                while run.queue or run.inflight:
                    self._submit(run)
                    self._step(run, bar, progress)
            except KeyboardInterrupt:
                self._cancel(run)
                self._kill()
                raise
            except BaseException:
                self._cancel(run)
                raise

    def ready(self, timeout: float | None = None) -> int:
        """Wait until every actor has started (imported torch and ganclip, answered where
        it runs), for at most ``timeout`` seconds (default :data:`RESOURCE_WAIT`), and
        return how many run. :meth:`draw` does not need it, as it hands segments to each
        actor once it answers; it makes a first render spread over all of them.

        Raises
        ------
        ClusterError when no actor started in time, or every one died
        """
        wait = RESOURCE_WAIT if timeout is None else timeout
        limit = time.monotonic() + wait
        while True:
            starting = {a.starting: a for a in self.actors if a.starting is not None}
            left = limit - time.monotonic()
            if not starting or left <= 0:
                break
            ready, _ = self.ray.wait(list(starting), num_returns=len(starting),
                                     timeout=min(left, POLL))
            for ref in ready:
                self._started(starting[ref], ref)
        running = sum(a.starting is None for a in self.actors)
        if not running:
            why = self._deaths[-1] if self._deaths else f"none within {wait:g} s"
            raise ClusterError(f"--ray {self.address}: no Ray actor started ({why}); each "
                               f"needs {self.need}")
        return running

    def _check(self, job, plan) -> None:
        """A render this pool's actors can draw: their model, size, seed and fit."""
        ours = (self.prepared.spec.name, tuple(self.load["size"]), self.load["seed"],
                self.load.get("fit", "extend"))
        theirs = (plan.model or self.prepared.spec.name, tuple(job.generator.size),
                  job.analysis.seed, job.generator.fit)
        if ours != theirs:
            names = ("model", "size", "seed", "fit")
            what = "; ".join(f"{n} {a!r} in the pool, {b!r} in the render"
                             for n, a, b in zip(names, ours, theirs) if a != b)
            raise BadInputError(f"this Ray pool's actors draw another model or picture "
                                f"({what}); open a Pool for this render")

    def _submit(self, run: _Run) -> None:
        """Queue segments on the running actors, the least busy first."""
        while run.queue:
            free = [a for a in self.actors if a.starting is None and a.busy < IN_FLIGHT]
            if not free:
                return
            actor = min(free, key=lambda a: a.busy)
            k = run.queue.popleft()
            first, last = run.parts[k]
            ref = actor.handle.segment.remote(run.refs, k, first, last, run.settings)
            run.inflight[ref] = (k, actor)
            actor.busy += 1

    def _step(self, run: _Run, bar, progress) -> None:
        """Wait (up to :data:`POLL`) for a segment or an actor, and deal with it."""
        starting = {a.starting: a for a in self.actors if a.starting is not None}
        refs = [*run.inflight, *starting]
        if not refs:
            raise ClusterError(f"--ray {self.address}: every Ray actor died "
                               f"({self._deaths[-1] if self._deaths else 'no reason given'})"
                               f"; {run.work.describe(run.plan)}")
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=POLL)
        for ref in ready:
            if ref in starting:
                self._started(starting[ref], ref)
            else:
                self._finished(run, ref, bar, progress)
        self._stalled(run)

    def _started(self, actor: _Actor, ref) -> None:
        try:
            actor.where = self.ray.get(ref)
            actor.starting = None
            log.debug(f"Ray actor {actor.number} runs on {actor.where['host']} (node "
                      f"{actor.where['node'][:8]}, pid {actor.where['pid']})")
        except self.ray.exceptions.RayError as exc:  # died for good: restarts used up
            self.actors.remove(actor)
            self._deaths.append(_why(exc))
            log.debug(f"Ray actor {actor.number} is gone: {_why(exc)}")

    def _finished(self, run: _Run, ref, bar, progress) -> None:
        from ganclip.files import atomic_path

        ray = self.ray
        k, actor = run.inflight.pop(ref)
        actor.busy -= 1
        first, last = run.parts[k]
        try:
            result = ray.get(ref)
        except _lost_errors(ray) as exc:
            self._lost(run, k, actor, exc)
            return
        except ray.exceptions.RayTaskError as exc:
            raise self._failure(run, k, actor, exc) from None
        with atomic_path(run.work.segment(k), suffix=".part") as tmp:
            tmp.write_bytes(result["data"])
        self.loads += bool(result["loaded"])
        run.done += last - first
        bar.update(last - first)
        log.debug(f"segment {k + 1}/{len(run.parts)} (frames {first}-{last - 1}) drawn on "
                  f"{result['host']} (node {result['node'][:8]}, actor {actor.number}, pid "
                  f"{result['pid']}) in {result['seconds']:.1f} s")
        if progress is not None:
            progress(run.done, len(run.plan))

    def _lost(self, run: _Run, k: int, actor: _Actor, exc) -> None:
        """A segment whose actor or node died: draw it again elsewhere, a few times."""
        first, last = run.parts[k]
        run.attempts[k] += 1
        self.requeued += 1
        self._deaths.append(_why(exc))
        if run.attempts[k] >= MAX_ATTEMPTS:
            raise ClusterError(f"segment {k + 1} of {len(run.parts)} (frames {first}-"
                               f"{last - 1}) was lost {run.attempts[k]} times, its actor or "
                               f"node dying under it (last: {_why(exc)}); "
                               f"{run.work.describe(run.plan)}")
        log.info(f"segment {k + 1} (frames {first}-{last - 1}) was lost ({_why(exc)}); "
                 f"drawing it again (try {run.attempts[k] + 1} of {MAX_ATTEMPTS})")
        run.queue.appendleft(k)
        if actor in self.actors and actor.starting is None:  # used again once restarted
            actor.starting = actor.handle.where.remote()

    def _failure(self, run: _Run, k: int, actor: _Actor, exc) -> GanclipError:
        """The generator or encoder failed in an actor: one line naming the segment."""
        first, last = run.parts[k]
        cause = getattr(exc, "cause", None)
        if cause is None:
            text = one_line(str(exc).strip().splitlines()[-1], limit=300)
        elif isinstance(cause, GanclipError):
            text = one_line(cause, limit=300)
        else:
            text = f"{type(cause).__name__}: {one_line(cause, limit=300)}"
        host = actor.where.get("host", "the cluster")
        message = (f"segment {k + 1} of {len(run.parts)} (frames {first}-{last - 1}) failed "
                   f"on {host}: {text}")
        kind = type(cause) if isinstance(cause, GanclipError) else GanclipError
        if not issubclass(kind, EncodingError):  # the render adds where the work is kept
            message += f"; {run.work.describe(run.plan)}"
        try:
            return kind(message)
        except TypeError:  # an error class of another shape
            return GanclipError(message)

    def _stalled(self, run: _Run) -> None:
        """A :class:`ClusterError` once no actor has run for :data:`RESOURCE_WAIT` s."""
        if any(a.starting is None for a in self.actors):
            self._idle_since = None
            return
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        elif now - self._idle_since > RESOURCE_WAIT:
            total, free = self.ray.cluster_resources(), self.ray.available_resources()
            have = ", ".join(f"{free.get(r, 0):g} of {total[r]:g} {r}" for r in ("CPU", "GPU")
                             if r in total) or "nothing"
            raise ClusterError(f"--ray {self.address}: no Ray actor could start in "
                               f"{RESOURCE_WAIT:g} s; each needs {self.need}, and the cluster "
                               f"has {have} free; free some or add a node"
                               f"{'' if self.device == 'cuda' else ', or ask fewer threads'}")

    def _cancel(self, run: _Run) -> None:
        """Call off the segments in flight (an actor checks between two batches)."""
        for ref in run.inflight:
            try:
                self.ray.cancel(ref)
            except Exception:  # already finished, or its actor is gone
                pass
        run.inflight.clear()
        for actor in self.actors:
            actor.busy = 0

    def _kill(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor.handle, no_restart=True)
            except Exception:  # already dead
                pass
        self.actors.clear()

    def close(self) -> None:
        """Stop the actors, and Ray itself when this pool started or joined it here."""
        if "_connection" not in self.__dict__:
            return
        self._kill()
        self._weights = None
        disconnect(self._connection)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Pool({self.address!r}, {len(self.actors)} actors on {self.device}, "
                f"{self.loads} loads)")


def _lost_errors(ray) -> tuple:
    """What Ray raises for a task whose actor, worker or node died under it."""
    x = ray.exceptions
    return (x.RayActorError, x.WorkerCrashedError, x.NodeDiedError, x.ObjectLostError,
            x.OutOfMemoryError)


def _why(exc) -> str:
    """Why Ray says the actor died: its line "The actor is dead because …" (its process
    or node died, it was killed), else the error's first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    because = [line for line in lines if " because " in line]
    return one_line((because or lines or [type(exc).__name__])[0], limit=160)


def draw(job, work, plan, prepared, todo, *, load: dict, progress=None,
         quiet: bool = True) -> None:
    """Draw the segments ``todo`` on Ray: with ``job.ray`` when it is a :class:`Pool`,
    else with a pool opened for the address ``job.ray`` and closed after (which shuts down
    a Ray it started). ``prepared`` and ``load`` are the render's model and
    :meth:`~ganclip.generators.Prepared.load` keywords."""
    if isinstance(job.ray, Pool):
        job.ray.draw(job, work, plan, todo, progress=progress, quiet=quiet)
        return
    with Pool(job.ray, prepared=prepared, load=load, quiet=quiet) as pool:
        pool.draw(job, work, plan, todo, progress=progress, quiet=quiet)
