"""The orchestration: song → plan → generator → video, with progress.

``render()`` analyses the song (:mod:`ganclip.analysis`), or loads a saved plan, draws the
plan here or on a Ray cluster (:mod:`ganclip.cluster`) and streams it, with the song, into
a video file; ``render_many()`` does so for several songs. Both take the keyword options
of :class:`~ganclip.options.AnalysisOptions` and :class:`~ganclip.options.GeneratorOptions`
(the CLI's flags), check them once and pass the dataclasses along.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganclip import audio as audio_io
from ganclip import generators
from ganclip.analysis import _analyze, _load_plan, _progress
from ganclip.errors import BadInputError, EncodingError
from ganclip.options import AnalysisOptions, RenderJob, from_dict, split, to_dict
from ganclip.plan import Plan
from ganclip.work import SEGMENT_SECONDS, OtherRenderError, WorkFolder, segments, song_identity

log = logging.getLogger(__name__)

__all__ = ["RenderResult", "render", "render_many", "OtherRenderError", "SEGMENT_SECONDS"]


@dataclass(frozen=True)
class RenderResult:
    """What a render made and how fast."""

    path: Path  # the video file
    frames: int  # video frames written
    fps: float
    duration: float  # seconds of video
    seconds: float  # wall-clock seconds the render took, analysis included
    model: str  # generator that drew the frames
    plan_path: Path | None = None  # where the plan was saved, if asked

    @property
    def realtime_factor(self) -> float:
        """Seconds of video made per second of wall time (above 1 is faster than real time)."""
        return self.duration / self.seconds if self.seconds > 0 else math.inf

def render(audio, *, output=None, plan_in=None, plan_out=None, frames_dir=None,
           resume: bool = False, restart: bool = False, progress=None, quiet: bool = False,
           ray=None, **options) -> RenderResult:
    """Make a music video of a song.

    Parameters
    ----------
    audio : path of the song (any audio file, or a video's sound)
    output : path of the video (.mp4 or .mkv); default ``<song stem>.mp4`` in the
        current folder
    plan_in : draw this saved plan (``--plan-out``) instead of analysing the song; its
        frame rate, part of the song and choreography are the plan's, and the analysis
        options are not used
    plan_out : also save the plan to this ``.npz`` file
    frames_dir : also write every frame as PNG into this folder
    resume : continue the unfinished render in ``<output>.parts/`` with what it was started
        with (the analysis options, model, weights and size given here are not used; batch,
        device and precision are); an error when there is none
    restart : throw away an unfinished render in ``<output>.parts/`` and start over
    progress : callable ``progress(frames_done, frames_total)``, called after every batch; it
        may raise ``KeyboardInterrupt`` to stop the render, which keeps what is finished
    quiet : no progress bars
    ray : None to draw here; "local" (a Ray cluster started on this machine for the
        render), "auto" or "HOST:PORT" (a running cluster), or a
        :class:`ganclip.cluster.Pool` already open: the segments are drawn by Ray actors
        (:mod:`ganclip.cluster`), into the same work folder, frame for frame the same video
    **options : the fields of :class:`~ganclip.options.AnalysisOptions` (with the reactive
        knobs) and of :class:`~ganclip.options.GeneratorOptions` (``model``, ``weights``,
        ``device``, ``precision``, ``size``, ``batch``), by keyword

    The render is resumable (``<output>.parts/``, :mod:`ganclip.work`): run again after a
    crash or Ctrl-C, it continues after the last finished segment, also with another
    ``batch``, ``device`` or ``precision``; a render with other pixels is refused unless
    ``restart``.

    Returns
    -------
    RenderResult
    """
    from ganclip.video import check_output

    began = time.perf_counter()
    song = Path(audio)
    output = check_output(Path(output) if output else Path.cwd() / f"{song.stem}.mp4")
    work = WorkFolder(output)
    if resume and restart:
        raise BadInputError("--resume and --restart contradict each other; give one")
    remote = ray is not None
    # every option checked before anything is written; with --ray, the device is the actors'
    analysis, generator = split(options, remote=remote)
    if remote:
        from ganclip import cluster

        cluster.check(ray)  # Ray installed, its head listening: before the long analysis
    if resume:
        saved = work.saved_options(song)
        analysis = from_dict(AnalysisOptions, saved["analysis"])
        pixels = dict(saved["generator"])
        if options.get("weights") is not None:  # the same weights in another place; the
            pixels.pop("weights")                # identity (their sha256) must still match
        generator = split({**options, **pixels}, remote=remote)[1]
        plan_in = saved["plan_in"]
    elif restart:
        work.remove()
    if plan_out is not None and not Path(plan_out).parent.is_dir():
        raise BadInputError(f"folder of --plan-out {plan_out} does not exist")
    if ray is not None and frames_dir is not None:
        raise BadInputError("--frames-dir writes the frames where they are drawn; with --ray "
                            "they are drawn on the cluster: leave one out")
    job = RenderJob(song=song, output=output, analysis=analysis, generator=generator,
                    plan_in=None if plan_in is None else Path(plan_in),
                    plan_out=None if plan_out is None else Path(plan_out),
                    frames_dir=None if frames_dir is None else Path(frames_dir), ray=ray)
    return _render(job, work, progress=progress, quiet=quiet, began=began)


def render_many(songs, *, output_dir=None, ray=None, restart: bool = False,
                quiet: bool = False, **options) -> list:
    """Render each of ``songs`` to its own video, ``<output_dir>/<song stem>.mp4``.

    A song that fails (a bad file) is reported and the others go on. With ``ray``, one
    :class:`ganclip.cluster.Pool` draws the segments of every song: a model is loaded once
    per actor, not once per song.

    Parameters
    ----------
    songs : sequence of paths; output_dir : folder of the videos (default: the current one)
    ray : None, a Ray address or an open :class:`ganclip.cluster.Pool` (see :func:`render`)
    restart : throw away each song's unfinished render first
    **options : :func:`render`'s options, the same for every song

    Returns
    -------
    list, for each song its RenderResult or the GanclipError that stopped it
    """
    from ganclip.errors import GanclipError

    import os

    folder = Path(output_dir) if output_dir is not None else Path.cwd()
    if not folder.is_dir():
        raise BadInputError(f"-o {folder}: with several songs -o names a folder, and this "
                            "one does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(f"-o {folder}: this folder is not writable; choose another")
    stems = [Path(song).stem for song in songs]
    twice = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twice:
        raise BadInputError(f"several songs would make {twice[0]}.mp4; rename one, or render "
                            "them into different folders")
    analysis, gen = split(options, remote=ray is not None)  # checked once, before any song
    pool = ray if ray is not None and not isinstance(ray, str) else None  # open already
    if isinstance(ray, str):
        from ganclip import cluster

        cluster.check(ray)
        prepared = generators.prepare(gen.model, weights=gen.weights, quiet=quiet)
        load = dict(size=gen.size, seed=analysis.seed, device=gen.device, quiet=quiet,
                    precision=prepared.spec.check_precision(gen.precision, gen.device),
                    fit=gen.fit)
        pool = cluster.Pool(ray, prepared=prepared, load=load, quiet=quiet)
    results = []
    try:
        with _progress(total=len(songs), unit="song", desc="songs", quiet=quiet) as bar:
            for song, stem in zip(songs, stems):
                try:
                    results.append(render(song, output=folder / f"{stem}.mp4", quiet=quiet,
                                          restart=restart, ray=pool or ray, **options))
                except GanclipError as exc:
                    results.append(exc)
                bar.update(1)
    finally:
        if pool is not None and pool is not ray:
            pool.close()
    return results


def _identity(job: RenderJob, prepared, size: tuple[int, int]) -> tuple[dict, dict]:
    """What shapes the pixels (a resumed render must match it), and what ``--resume``
    restores: the same, in the options' own terms."""
    from ganclip.weights import weights_identity

    weights = None if prepared.weights is None else weights_identity(prepared.weights)
    plan_in = None if job.plan_in is None else {
        k: v for k, v in song_identity(job.plan_in).items() if k != "mtime_ns"}
    analysis = {k: v for k, v in to_dict(job.analysis).items() if k != "seed"}
    gen = job.generator
    shape = {"size": list(size), "fit": gen.fit, "quality": gen.quality,
             "preset": gen.preset}  # the encoder's settings too: segments must join
    identity = {"analysis": None if plan_in else analysis, "plan in": plan_in,
                "model": prepared.spec.name, "weights": weights, **shape,
                "seed": job.analysis.seed, "song": song_identity(job.song)}
    restore = {"analysis": to_dict(job.analysis), "plan_in": None if job.plan_in is None
               else str(job.plan_in.resolve()),
               "generator": {"model": prepared.spec.name, **shape, "weights": None
                             if job.generator.weights is None else
                             str(Path(job.generator.weights).resolve())}}
    return identity, restore


def _plan_for(job: RenderJob, info, spec, *, quiet: bool, generator=None) -> Plan:
    if job.plan_in is not None:
        plan = _load_plan(job.plan_in, job.song, info)
    else:
        plan, _ = _analyze(job.song, job.analysis, dim_z=spec.dim_z, n_classes=spec.n_classes,
                           quiet=quiet, info=info, mapper=generator if spec.looks else None)
    plan.check(spec.dim_z, spec.n_classes, source=job.plan_in or "the plan")
    return plan


def _render(job: RenderJob, work: WorkFolder, *, progress, quiet: bool,
            began: float) -> RenderResult:
    gen = job.generator
    size = gen.size  # (width, height), even sides
    prepared = generators.prepare(gen.model, weights=gen.weights, quiet=quiet)
    precision = prepared.spec.check_precision(gen.precision, gen.device)
    info = audio_io.probe(job.song)
    identity, restore = _identity(job, prepared, size)
    plan = work.open(identity)
    fresh = plan is None
    load = dict(size=size, seed=job.analysis.seed, device=gen.device, precision=precision,
                quiet=quiet, fit=gen.fit)
    remote = job.ray is not None  # the cluster's actors load their own, on their device
    # a model that draws from W is needed to make the plan: its looks are anchors in W
    # (found here, on this machine's CPU, when the frames are drawn on a cluster)
    generator = prepared.load(**(dict(load, device="cpu", precision="auto") if remote else
                                 load)) if fresh and prepared.spec.looks and \
        job.plan_in is None else None
    if fresh:
        plan = _plan_for(job, info, prepared.spec, quiet=quiet, generator=generator)
        plan.model, plan.size = prepared.spec.name, size
    else:
        log.info(f"resuming the render in {work.folder}: {work.done_frames(plan)} of "
                 f"{len(plan)} frames are done")
    if prepared.notice:  # once every input has been checked
        log.info(prepared.notice)
    plan_path = plan.save(job.plan_out) if job.plan_out is not None else None
    parts = segments(len(plan), plan.fps)
    todo = [k for k in range(len(parts)) if not work.segment(k).is_file()]
    try:
        if generator is None and todo and not remote:
            generator = prepared.load(**load)
        if fresh:
            work.start(identity, restore, plan)
        log.debug(f"generator {prepared.spec.name} on {'Ray actors: ' if remote else ''}"
                  f"{gen.device}, precision {precision}, "
                  f"{size[0]}x{size[1]} frames in batches of {gen.batch}; {len(parts)} "
                  f"segments of up to {SEGMENT_SECONDS:g} s, {len(parts) - len(todo)} already "
                  "done")
        if remote and todo:
            from ganclip import cluster

            cluster.draw(job, work, plan, prepared, todo, load=load, progress=progress,
                         quiet=quiet)
        else:
            _draw(job, work, plan, generator, prepared.spec, todo, size=size,
                  progress=progress, quiet=quiet)
        path = _join(job, work, plan, info, size=size)
    except KeyboardInterrupt as exc:
        if work.folder.exists() and work.done_frames(plan) == 0 and fresh:
            work.remove()  # nothing was finished: leave no folder
        else:
            exc.kept = work.describe(plan) if work.folder.exists() else None
        raise
    except EncodingError as exc:
        raise EncodingError(f"{exc}; {work.describe(plan)}: run the same command again to "
                            "resume") from None
    except BaseException:
        if fresh and work.folder.exists() and work.done_frames(plan) == 0:
            work.remove()
        raise
    work.remove()
    return RenderResult(path=path, frames=len(plan), fps=plan.fps,
                        duration=len(plan) / plan.fps, seconds=time.perf_counter() - began,
                        model=prepared.spec.name, plan_path=plan_path)


def _draw(job: RenderJob, work: WorkFolder, plan: Plan, generator, spec, todo: list[int], *,
          size: tuple[int, int], progress, quiet: bool) -> None:
    """Draw and encode the unfinished segments ``todo``, each into its own file.

    The generator draws the next batch in this thread while a
    :class:`~ganclip.video.SegmentEncoder` thread encodes the last ones, with at most
    :data:`~ganclip.video.AHEAD` batches waiting in between: memory
    stays a few batches, and a GPU draws while the CPU encodes. (Torch's OpenMP runs at
    half speed in a thread other than the main one, so drawing stays here; PyAV's encoder
    lets go of the GIL.) On the CPU, while the encoder is busy (:data:`BUSY_ENCODER`) the
    drawing takes :data:`DRAW_THREADS` thread and leaves it the other cores: at 1080p that
    makes a cppn render 1.3x faster than drawing on every core beside it."""
    from ganclip.video import SegmentEncoder, VideoWriter

    parts, batch = segments(len(plan), plan.fps), job.generator.batch
    with _progress(total=len(plan), unit="frame", desc="render", quiet=quiet) as bar:
        done = work.done_frames(plan)
        bar.update(done)
        gen = job.generator
        encoder = SegmentEncoder(
            lambda k: VideoWriter(work.segment(k), fps=plan.fps, size=size,
                                  frames_dir=job.frames_dir, first_frame=parts[k][0],
                                  crf=gen.quality, preset=gen.preset),
            lengths=[b - a for a, b in parts], on_finished=lambda k: _done(k, parts))
        threads = torch_threads(None)
        try:
            for k in todo:
                for first in range(parts[k][0], parts[k][1], batch):
                    last = min(first + batch, parts[k][1])
                    encoder.put(k, _frames(generator, spec, plan, first, last, size))
                    if job.generator.device == "cpu":  # the cores go where the work is
                        torch_threads(DRAW_THREADS if encoder.load() > BUSY_ENCODER
                                      else threads)
                    bar.update(last - first)
                    done += last - first
                    if progress is not None:
                        progress(done, len(plan))
            encoder.finish()
        except BaseException:
            encoder.abort()
            raise
        finally:
            torch_threads(threads)


DRAW_THREADS = 1  # torch threads drawing beside a busy encoder on the CPU: with all the
# cores, each OpenMP barrier waits on a thread the encoder has preempted, and both slow down
BUSY_ENCODER = 0.3  # share of the wall time the encoder works for to count as busy


def torch_threads(n: int | None) -> int | None:
    """Set torch's intra-op threads to ``n`` (None: leave them); returns the previous count,
    or None without torch (a generator that does not use it)."""
    if "torch" not in sys.modules:
        return None
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    return before


def _done(k: int, parts) -> None:
    log.debug(f"segment {k + 1}/{len(parts)} done: frames {parts[k][0]}-{parts[k][1] - 1}")


def _frames(generator, spec, plan: Plan, first: int, last: int,
            size: tuple[int, int]) -> np.ndarray:
    """Frames ``first:last`` of the plan at ``size``: drawn with the camera by a generator
    that moves its own (:attr:`~ganclip.generators.GeneratorSpec.camera`), else drawn still
    and warped by the camera in the pass that scales them to the frame."""
    from ganclip.camera import warp

    z, y, truncation = plan.batch(first, last)
    camera = plan.camera(first, last)
    styles = {"looks": plan.looks(first, last), "drive": plan.drives(first, last)} \
        if spec.looks else {}
    if spec.camera:
        return generator(z, y, truncation, camera=camera, palette=plan.palette(first, last),
                         symmetry=plan.folds(first, last), **styles)
    frames = generator(z, y, truncation, **styles)
    still = np.array_equal(camera, np.tile(np.float32([1, 0, 0, 0, 0]), (len(camera), 1)))
    if still and frames.shape[1:3] == (size[1], size[0]):
        return frames
    return warp(frames, camera, size)


def _join(job: RenderJob, work: WorkFolder, plan: Plan, info, *,
          size: tuple[int, int]) -> Path:
    """The segments joined without re-encoding, with the song's audio muxed once."""
    from ganclip.video import VideoWriter

    n = len(segments(len(plan), plan.fps))
    log.debug(f"joining {n} segment{'s' if n != 1 else ''} into {job.output} and muxing the "
              "audio")
    with VideoWriter(job.output, fps=plan.fps, size=size, audio=info, audio_start=plan.start,
                     audio_duration=plan.audio_seconds, template=work.segment(0)) as writer:
        for k in range(n):
            writer.append(work.segment(k))
        if writer.count != len(plan):
            raise EncodingError(f"the segments in {work.folder} hold {writer.count} frames, "
                                f"not {len(plan)}; rerun with --restart")
        return writer.close()
