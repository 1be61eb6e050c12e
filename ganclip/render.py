"""The orchestration: song → plan → generator → video, with progress.

``analyze()`` turns a song into a :class:`~ganclip.choreography.Plan`;
``render()`` draws the plan and streams it, with the song, into a video file.
Both take the same keyword options the CLI exposes as flags.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ganclip import audio as audio_io
import numpy as np

from ganclip.choreography import (CLASSES_FROM, Plan, ReactiveSettings, classic_plan,
                                  reactive_plan)
from ganclip.errors import AudioError, BadInputError, EncodingError
from ganclip.features import (FrameSpectra, SongAnalyzer, SongFeatures, frame_count,
                              frame_rate, to_db)

log = logging.getLogger(__name__)

FPS_RANGE = (1.0, 120.0)
SIZE_RANGE = (16, 4096)
MODES = ("reactive", "classic")
SEGMENT_SECONDS = 4.0  # video per resumable segment: at most this much drawing is lost to a crash
WORK_VERSION = 1  # of the work folder's layout


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


def _check_range(value, lo, hi, flag: str, kind=float):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise BadInputError(f"{flag} must be a number between {lo:g} and {hi:g}; got {value!r}")
    if not lo <= value <= hi or (kind is int and int(value) != value):
        what = "a whole number" if kind is int else "a number"
        raise BadInputError(f"{flag} must be {what} between {lo:g} and {hi:g}; got {value:g}")
    return kind(value)


def default_transitions(fps: float) -> int:
    """The seed's 20 transition frames at 60 fps: a third of a second at any rate."""
    return int(round(fps / 3))


def _progress(*, total, unit: str, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, leave=False,
                disable=quiet or not sys.stderr.isatty())


def _types_dir(song: Path) -> Path:
    """Where ``imagetypes/`` is looked for: beside ``audioFiles/`` when the song lives there."""
    return song.resolve().parent.parent if song.resolve().parent.name == "audioFiles" \
        else Path.cwd()


def _image_types(song: Path, *, types: int, type_names, types_file, seed: int):
    from ganclip import imagetypes

    available = imagetypes.available_types(types_file=types_file, search_dir=_types_dir(song))
    if isinstance(type_names, str):
        type_names = [n.strip() for n in type_names.split(",") if n.strip()]
    if type_names:
        return imagetypes.choose_types(available, names=list(type_names))
    return imagetypes.choose_types(available, n=types, seed=seed)


def _cut(info: audio_io.AudioInfo, start, duration) -> tuple[float, float | None]:
    start = 0.0 if start is None else _check_range(start, 0, 1e7, "--start")
    if duration is not None:
        duration = _check_range(duration, 1e-3, 1e7, "--duration")
    if info.duration is not None and start >= info.duration:
        raise BadInputError(f"--start {start:g} is past the end of {info.path} "
                            f"({info.duration:.2f} s long)")
    return start, duration


def analyze(audio, *, fps: float = 30.0, mode: str = "reactive", types: int | None = None,
            type_names=None, types_file=None, transitions: int | None = None,
            ema_span: float = 15.0, pulse: float = ReactiveSettings.pulse,
            motion: float = ReactiveSettings.motion,
            smoothing: float = ReactiveSettings.smoothing,
            sensitivity: float = ReactiveSettings.sensitivity,
            truncation_range=ReactiveSettings.truncation_range,
            classes_from: str = ReactiveSettings.classes_from, seed: int = 0,
            start: float | None = None, duration: float | None = None,
            quiet: bool = True) -> Plan:
    """Turn a song (or a part of it) into a per-frame plan.

    Parameters
    ----------
    audio : path of any audio file, or a video file with an audio track
    fps : float in [1, 120], video frames per second
    mode : "reactive" (beats pulse, loudness moves, sections pick the look) or "classic"
        (the seed's per-frame spectrum and k-means image types)
    types : int, how many image types to pick (seeded) when ``type_names`` is None; None =
        6 in classic mode, one per section kind in reactive mode, 12 with chroma classes
    type_names : list of str or "a,b,c", image types by name
    types_file : path of a TOML/JSON file of extra image types
    transitions : int >= 0, frames of interpolation at each type change; None = fps / 3
    ema_span : float >= 1, classic mode: span in frames of the spectrum's moving average
    pulse, motion, smoothing, sensitivity, truncation_range, classes_from : reactive mode's
        knobs, see :class:`~ganclip.choreography.ReactiveSettings`
    seed : int, fixes type choice, pulse directions, drift path and clustering
    start, duration : seconds, the part of the song to use

    Returns
    -------
    Plan
    """
    return _analyze(audio, **{k: v for k, v in locals().items() if k != "audio"})[0]


def _reactive_settings(pulse, motion, smoothing, sensitivity, truncation_range,
                       classes_from) -> ReactiveSettings:
    given = truncation_range
    if isinstance(truncation_range, str):
        try:
            truncation_range = tuple(float(v) for v in truncation_range.split(","))
        except ValueError:
            truncation_range = ()
    if len(truncation_range) != 2:
        raise BadInputError(f"--truncation-range takes two numbers LO,HI, e.g. 0.6,1.3; got "
                            f"{given!r}")
    lo = _check_range(truncation_range[0], 0.01, 10, "--truncation-range LO")
    hi = _check_range(truncation_range[1], lo, 10, "--truncation-range HI (>= LO)")
    if classes_from not in CLASSES_FROM:
        raise BadInputError(f"unknown --classes-from '{classes_from}'; available: "
                            f"{', '.join(CLASSES_FROM)}")
    return ReactiveSettings(pulse=_check_range(pulse, 0, 10, "--pulse"),
                            motion=_check_range(motion, 0, 10, "--motion"),
                            smoothing=_check_range(smoothing, 0, 10, "--smoothing"),
                            sensitivity=_check_range(sensitivity, 0.05, 20, "--sensitivity"),
                            truncation_range=(lo, hi), classes_from=classes_from)


def _analyze(audio, *, fps, mode, types, type_names, types_file, transitions, ema_span, pulse,
             motion, smoothing, sensitivity, truncation_range, classes_from, seed, start,
             duration, quiet, info=None) -> tuple[Plan, SongFeatures | None]:
    """:func:`analyze`, also returning the reactive mode's features (None in classic mode);
    ``info`` is the song's :func:`~ganclip.audio.probe`, when the caller has it."""
    fps = float(frame_rate(_check_range(fps, *FPS_RANGE, "--fps")))
    if mode not in MODES:
        raise BadInputError(f"unknown mode '{mode}' (--mode); available: {', '.join(MODES)}")
    transitions = default_transitions(fps) if transitions is None else _check_range(
        transitions, 0, 100000, "--transitions", int)
    ema_span = _check_range(ema_span, 1, 100000, "--ema-span")
    if types is not None:
        types = _check_range(types, 1, 1000, "--types", int)
    knobs = _reactive_settings(pulse, motion, smoothing, sensitivity, truncation_range,
                               classes_from)
    song = Path(audio)
    info = info or audio_io.probe(song)
    start, duration = _cut(info, start, duration)
    chroma = mode == "reactive" and knobs.classes_from == "chroma"
    if chroma and types not in (None, 12):
        raise BadInputError(f"--classes-from chroma mixes 12 image types, one per pitch class; "
                            f"got --types {types} (leave --types out, or give 12 --type-names)")
    image_types = _image_types(song, types=types or 6, type_names=type_names,
                               types_file=types_file, seed=seed)  # checked before the long work
    if chroma and type_names and len(image_types) != 12:
        raise BadInputError(f"--classes-from chroma mixes 12 image types, one per pitch class; "
                            f"--type-names gives {len(image_types)}")

    sr = audio_io.ANALYSIS_RATE
    total = duration or ((info.duration or 0) - start) or None
    sink = FrameSpectra(sr=sr, fps=fps) if mode == "classic" else SongAnalyzer(sr=sr,
                                                                                 seconds=total)
    with _progress(total=total and round(total, 1), unit="s", desc="analyse",
                   quiet=quiet) as bar:
        for block in audio_io.stream_mono(song, sr=sr, start=start, duration=duration, info=info):
            sink.push(block)
            bar.update(round(len(block) / sr, 3))
    n_frames = frame_count(sink.n_samples, sr=sr, fps=fps)
    if n_frames == 0:
        seconds = sink.n_samples / sr
        raise AudioError(f"{song} has {seconds:.3f} s of audio"
                         f"{' after --start' if start else ''}, shorter than one frame at "
                         f"{fps:g} fps; give a longer file or a higher --fps")
    features = None
    if mode == "classic":
        plan = classic_plan(to_db(sink.finish()), fps=fps, image_types=image_types,
                            transitions=transitions, ema_span=ema_span, seed=seed)
    else:
        features = sink.finish()
        if not type_names and types is None:  # one look per section kind, or per pitch class
            kinds = 12 if chroma else max(1, len(np.unique(features.section_labels)))
            image_types = _image_types(song, types=kinds, type_names=None,
                                       types_file=types_file, seed=seed)
        plan = reactive_plan(features, fps=fps, n_frames=n_frames, image_types=image_types,
                             transitions=transitions, settings=knobs, seed=seed)
    plan.settings.update(song=str(song), start=start, duration=len(plan) / fps,
                         audio_seconds=sink.n_samples / sr)
    if features is not None:
        log.debug(f"analysis: {features.tempo:.1f} BPM, {len(features.beats)} beats, "
                  f"{len(features.sections)} sections starting at "
                  f"{', '.join(f'{t:.1f}' for t in features.sections[:, 0])} s")
    log.debug(f"plan: {len(plan)} frames at {fps:g} fps, {mode} mode, image types "
              f"{', '.join(plan.type_names)}")
    return plan, features


def _load_plan(path, song: Path, info: audio_io.AudioInfo) -> Plan:
    """A saved plan, checked against the song it is to be drawn over."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"--plan-in {path}: no such file; make one with --plan-out")
    plan = Plan.load(path)
    start = float(plan.settings.get("start", 0.0))
    seconds = float(plan.settings.get("audio_seconds", len(plan) / plan.fps))
    plan.settings.setdefault("start", start)
    plan.settings.setdefault("audio_seconds", seconds)
    if info.duration is not None and start + len(plan) / plan.fps > info.duration + 1.0:
        raise BadInputError(f"--plan-in {path} covers {start:.1f}-"
                            f"{start + len(plan) / plan.fps:.1f} s but {song} is "
                            f"{info.duration:.1f} s long; was it made from another song?")
    return plan


def render(audio, *, output=None, fps: float = 30.0, size: int = 256, model: str = "auto",
           mode: str = "reactive", types: int | None = None, type_names=None,
           types_file=None, transitions: int | None = None, ema_span: float = 15.0,
           pulse: float = ReactiveSettings.pulse, motion: float = ReactiveSettings.motion,
           smoothing: float = ReactiveSettings.smoothing,
           sensitivity: float = ReactiveSettings.sensitivity,
           truncation_range=ReactiveSettings.truncation_range,
           classes_from: str = ReactiveSettings.classes_from, seed: int = 0,
           start: float | None = None, duration: float | None = None, frames_dir=None,
           plan_out=None, plan_in=None, batch: int = 8, device: str = "cpu", weights=None,
           precision: str = "auto", resume: bool = False, restart: bool = False,
           progress=None, quiet: bool = False) -> RenderResult:
    """Make a music video of a song.

    Parameters are those of :func:`analyze`, plus:

    output : path of the video (.mp4 or .mkv); default ``<song stem>.mp4`` in the
        current folder
    size : int, output side in pixels (rounded up to even for H.264)
    model : generator name, or "auto" (BigGAN-deep 256 when cached, else cppn)
    weights : local BigGAN weights, a folder with ``config.json`` or a weights file
    precision : "auto", "fp32", "bf16" or "fp16": BigGAN's arithmetic
    frames_dir : also write every frame as PNG into this folder
    plan_out : also save the plan to this ``.npz`` file
    plan_in : draw this saved plan (``--plan-out``) instead of analysing the song; its
        frame rate, part of the song and choreography are the plan's, and the analysis
        options are not used
    batch : frames drawn per generator call
    device : torch device for the generator
    resume : continue the unfinished render in ``<output>.parts/`` with the settings saved
        there (the other options are not used); an error when there is none
    restart : throw away an unfinished render in ``<output>.parts/`` and start over
    progress : callable ``progress(frames_done, frames_total)``, called after every batch; it
        may raise ``KeyboardInterrupt`` to stop the render, which keeps what is finished
    quiet : no progress bars

    The render is resumable: it keeps the plan, its settings and every finished
    :data:`SEGMENT_SECONDS` of encoded video in ``<output>.parts/``. Running the same
    render again (or with ``resume``) after a crash, a full disk or Ctrl-C continues after the
    last finished segment; the segments are joined into ``output`` without re-encoding, with
    the song's audio muxed once, and the folder is removed. Running another render against
    it is an error, unless ``restart``.

    Returns
    -------
    RenderResult
    """
    from ganclip.video import check_output

    began = time.perf_counter()
    options = {k: str(v) if isinstance(v, Path) else v for k, v in locals().items()
               if k not in ("audio", "output", "resume", "restart", "quiet", "began",
                            "check_output", "frames_dir", "plan_out", "progress")}
    song = Path(audio)
    output = check_output(Path(output) if output else Path.cwd() / f"{song.stem}.mp4")
    work = _Work(output)
    if resume and restart:
        raise BadInputError("--resume and --restart contradict each other; give one")
    if resume:
        options = work.saved_options(song)
    elif restart:
        work.remove()
    return _render(song, output, work, options, frames_dir=frames_dir, plan_out=plan_out,
                   progress=progress, quiet=quiet, began=began)


def _render(song: Path, output: Path, work: "_Work", options: dict, *, frames_dir, plan_out,
            progress, quiet: bool, began: float) -> RenderResult:
    from ganclip.generators import load_generator
    from ganclip.video import VideoWriter

    o = dict(options)
    size = _check_range(o["size"], *SIZE_RANGE, "--size", int)
    size += size % 2  # H.264 4:2:0 needs an even side
    batch = _check_range(o["batch"], 1, 1024, "--batch", int)
    if plan_out is not None and not Path(plan_out).parent.is_dir():
        raise BadInputError(f"folder of --plan-out {plan_out} does not exist")
    model_name, weights, notice = _resolve_model(o["model"], o["weights"], quiet=quiet)

    info = audio_io.probe(song)
    identity = {"options": {**o, "model": model_name}, "song": _song_identity(song)}
    plan = work.open(identity)
    if plan is None:
        if o["plan_in"] is not None:
            plan = _load_plan(o["plan_in"], song, info)
        else:
            plan, _ = _analyze(song, info=info, quiet=quiet, **{
                k: o[k] for k in inspect.signature(analyze).parameters
                if k not in ("audio", "quiet")})
        plan.settings.update(model=model_name, size=size)
        work.start(identity, plan)
    else:
        log.info(f"resuming the render in {work.folder}: {work.done_frames(plan)} of "
                 f"{len(plan)} frames are done")
    if notice:  # once every input has been checked
        log.info(notice)
    plan_path = plan.save(plan_out) if plan_out is not None else None
    segments = _segments(len(plan), plan.fps)
    todo = [k for k in range(len(segments)) if not work.segment(k).is_file()]
    if todo:
        generator = load_generator(model_name, size=size, seed=o["seed"], device=o["device"],
                                   weights=weights, precision=o["precision"], quiet=quiet)
        log.debug(f"generator {model_name} on {o['device']}, precision {o['precision']}, "
                  f"{size}² frames in batches of {batch}")
        log.debug(f"{len(segments)} segments of up to {SEGMENT_SECONDS:g} s; "
                  f"{len(segments) - len(todo)} already done")
    try:
        with _progress(total=len(plan), unit="frame", desc="render", quiet=quiet) as bar:
            done = work.done_frames(plan)
            bar.update(done)
            for k in todo:
                a, b = segments[k]
                with VideoWriter(work.segment(k), fps=plan.fps, size=size,
                                 frames_dir=frames_dir, first_frame=a) as writer:
                    for first in range(a, b, batch):
                        frames = _interruptible(generator, *plan.batch(first, min(first + batch,
                                                                                  b)))
                        writer.write(frames)
                        bar.update(len(frames))
                        done += len(frames)
                        if progress is not None:
                            progress(done, len(plan))
                log.debug(f"segment {k + 1}/{len(segments)} done: frames {a}-{b - 1}")
        log.debug(f"joining {len(segments)} segment{'s' if len(segments) != 1 else ''} into "
                  f"{output} and muxing the audio")
        with VideoWriter(output, fps=plan.fps, size=size, audio=info,
                         audio_start=plan.settings["start"],
                         audio_duration=plan.settings["audio_seconds"],
                         template=work.segment(0)) as writer:
            for k in range(len(segments)):
                writer.append(work.segment(k))
            if writer.count != len(plan):
                raise EncodingError(f"the segments in {work.folder} hold {writer.count} "
                                    f"frames, not {len(plan)}; rerun with --restart")
            path = writer.close()
    except KeyboardInterrupt as exc:
        exc.kept = work.describe(plan)
        raise
    except EncodingError as exc:
        raise EncodingError(f"{exc}; {work.describe(plan)}: run the same command again to "
                            "resume") from None
    work.remove()
    return RenderResult(path=path, frames=len(plan), fps=plan.fps,
                        duration=len(plan) / plan.fps, seconds=time.perf_counter() - began,
                        model=model_name, plan_path=plan_path)


def _resolve_model(model: str, weights, *, quiet: bool):
    """The concrete model for ``--model``, its weights fetched or found before any long work,
    and ``auto``'s one-line notice (None otherwise)."""
    from ganclip.generators import resolve_model

    model_name, notice = resolve_model(model, weights=weights)
    if model_name.startswith("biggan"):
        from ganclip.weights import resolve_weights

        weights = resolve_weights(model_name, weights, download=True, quiet=quiet)
    return model_name, weights, notice


class OtherRenderError(BadInputError):
    """The output's work folder holds an unfinished render with other settings."""


def _segments(n_frames: int, fps: float) -> list[tuple[int, int]]:
    """``[start, stop)`` frames of each resumable segment."""
    step = max(1, int(round(SEGMENT_SECONDS * fps)))
    return [(a, min(a + step, n_frames)) for a in range(0, n_frames, step)]


def _song_identity(song: Path) -> dict:
    stat = song.stat()
    return {"path": str(song.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _interruptible(fn, *args):
    """``fn(*args)`` in a worker thread, so Ctrl-C stops the render at once instead of after
    the generator's batch (seconds to minutes for BigGAN on a CPU)."""
    result, done = {}, threading.Event()

    def work():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # handed to the waiting thread
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, daemon=True, name="ganclip-generator").start()
    while not done.wait(0.1):
        pass
    if "error" in result:
        raise result["error"]
    return result["value"]


class _Work:
    """The work folder ``<output>.parts/`` of a resumable render.

    It holds ``settings.json`` (what the render was asked to make), ``plan.npz`` and the
    finished segments ``segment_NNNNN.mp4``, each written under a temporary name and renamed
    when complete, so a file there is always whole.
    """

    def __init__(self, output: Path):
        self.folder = output.with_name(output.name + ".parts")
        self.settings = self.folder / "settings.json"
        self.plan = self.folder / "plan.npz"

    def segment(self, k: int) -> Path:
        return self.folder / f"segment_{k:05d}.mp4"

    def _saved(self) -> dict | None:
        if not self.folder.exists():
            return None
        try:
            saved = json.loads(self.settings.read_text())
            if saved.get("version") != WORK_VERSION or not self.plan.is_file():
                raise ValueError("another version")
            return saved
        except (OSError, ValueError, AttributeError):
            raise BadInputError(f"{self.folder} is not a ganclip render in progress (or is "
                                "damaged); move it away, or add --restart to replace it") from None

    def saved_options(self, song: Path) -> dict:
        """The options of the render to resume (``--resume``)."""
        saved = self._saved()
        if saved is None:
            raise BadInputError(f"--resume: there is no unfinished render of this output "
                                f"({self.folder} does not exist); leave out --resume")
        if saved["song"]["path"] != str(song.resolve()):
            raise BadInputError(f"--resume: {self.folder} is a render of "
                                f"{saved['song']['path']}, not of {song}")
        return saved["options"]

    def open(self, identity: dict) -> Plan | None:
        """The saved plan when the folder holds this very render; None when there is none.
        Another render's folder is an error naming what differs."""
        saved = self._saved()
        if saved is None:
            return None
        theirs = {**saved["options"], **{f"song {k}": v for k, v in saved["song"].items()}}
        ours = json.loads(json.dumps({**identity["options"], **{
            f"song {k}": v for k, v in identity["song"].items()}}))
        differ = [k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
        if differ:
            what = "; ".join(f"{k} {theirs.get(k)!r} there, {ours.get(k)!r} now"
                             for k in differ[:3])
            raise OtherRenderError(f"{self.folder} holds an unfinished render with other "
                                   f"settings ({what}); run that command again (or add "
                                   f"--resume) to finish it, or add --restart to start over")
        for stale in self.folder.glob(".*.part"):  # a segment cut off by a crash
            stale.unlink(missing_ok=True)
        return Plan.load(self.plan)

    def start(self, identity: dict, plan: Plan) -> None:
        """Make the folder for a new render: the plan, then the settings that mark it ready."""
        self.folder.mkdir(exist_ok=True)
        plan.save(self.plan)
        tmp = self.settings.with_name(".settings.json.tmp")
        tmp.write_text(json.dumps({"version": WORK_VERSION, **identity}, indent=1))
        os.replace(tmp, self.settings)

    def done_frames(self, plan: Plan) -> int:
        segments = _segments(len(plan), plan.fps)
        return sum(b - a for k, (a, b) in enumerate(segments) if self.segment(k).is_file())

    def describe(self, plan: Plan) -> str:
        """Where the finished work is kept, in words."""
        done = self.done_frames(plan)
        return (f"{done / plan.fps:.0f} of {len(plan) / plan.fps:.0f} s of video "
                f"({100 * done / max(len(plan), 1):.0f} %) are kept in {self.folder}")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def analysis_figure(audio, *, output="analysis.png", model: str = "auto", weights=None,
                    device: str = "cpu", precision: str = "auto", quiet: bool = True,
                    **options) -> tuple[Path, list[str]]:
    """Analyse a song as a reactive render would, and draw what was found.

    Parameters
    ----------
    audio : path of the song
    output : path of the figure (.png, .svg, .pdf)
    model, weights, device, precision : the generator that draws the thumbnails
    **options : :func:`analyze`'s options (``mode`` must be "reactive")

    Returns
    -------
    path : Path of the figure
    lines : list of str, the analysis as text (tempo, beats, sections, image types)
    """
    from ganclip.figure import THUMB, describe, thumbnails, write_figure
    from ganclip.generators import load_generator

    output = Path(output)
    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise BadInputError(f"-o {output}: the figure is written as .png, .svg or .pdf")
    if not output.parent.is_dir():
        raise BadInputError(f"folder of -o {output} does not exist")
    if options.get("mode", "reactive") != "reactive":
        raise BadInputError("'ganclip analyze' shows the reactive analysis (beats, sections); "
                            "leave out --mode")
    model_name, weights, notice = _resolve_model(model, weights, quiet=quiet)
    defaults = {k: p.default for k, p in inspect.signature(analyze).parameters.items()
                if k != "audio"}
    plan, features = _analyze(audio, **{**defaults, **options, "quiet": quiet})
    if notice:
        log.info(notice)
    generator = load_generator(model_name, size=THUMB, seed=options.get("seed", 0),
                               device=device, weights=weights, precision=precision,
                               quiet=quiet)
    frames = thumbnails(plan, generator)
    path = write_figure(output, plan, features, frames, title=Path(audio).name)
    return path, describe(plan, features)
