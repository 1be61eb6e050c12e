"""Song → plan: the analysis half of the orchestration.

``analyze()`` reads a song (streamed, decoded once) and turns it into a
:class:`~ganclip.plan.Plan` with the choreography of its mode; ``analysis_figure()`` shows
what a reactive analysis found. :mod:`ganclip.render` draws a plan into a video.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from ganclip import audio as audio_io
from ganclip import choreography, generators
from ganclip.errors import AudioError, BadInputError
from ganclip.features import FrameSpectra, SongAnalyzer, SongFeatures, to_db
from ganclip.options import AnalysisOptions, build, split
from ganclip.plan import Plan
from ganclip.timebase import frame_count

log = logging.getLogger(__name__)

__all__ = ["analyze", "analysis_figure"]


def _progress(*, total, unit: str, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, leave=False,
                disable=quiet or not sys.stderr.isatty())


def _types_dir(song: Path) -> Path:
    """Where ``imagetypes/`` is looked for: beside ``audioFiles/`` when the song lives there."""
    return song.resolve().parent.parent if song.resolve().parent.name == "audioFiles" \
        else Path.cwd()


def _image_types(song: Path, options: AnalysisOptions, n: int | None = None):
    from ganclip import imagetypes

    available = imagetypes.available_types(types_file=options.types_file,
                                           search_dir=_types_dir(song))
    if options.type_names:
        return imagetypes.choose_types(available, names=list(options.type_names))
    return imagetypes.choose_types(available, n=n or options.types or 6, seed=options.seed)


def _cut(info: audio_io.AudioInfo, options: AnalysisOptions) -> float:
    start = options.start or 0.0
    if info.duration is not None and start >= info.duration:
        raise BadInputError(f"--start {start:g} is past the end of {info.path} "
                            f"({info.duration:.2f} s long)")
    return start


def analyze(audio, *, dim_z: int = 128, n_classes: int = 1000, quiet: bool = True,
            **options) -> Plan:
    """Turn a song (or a part of it) into a per-frame plan.

    Parameters
    ----------
    audio : path of any audio file, or a video file with an audio track
    dim_z, n_classes : int, the latent and class-vector widths of the generator the plan is
        for (:class:`~ganclip.generators.GeneratorSpec`); BigGAN's and cppn's by default
    quiet : bool, no progress bar
    **options : the fields of :class:`~ganclip.options.AnalysisOptions` (``fps``, ``mode``,
        ``types``, ``type_names``, ``types_file``, ``transitions``, ``ema_span``, ``seed``,
        ``start``, ``duration``) and the reactive knobs of
        :class:`~ganclip.options.ReactiveSettings` (``pulse``, ``motion``, …), by keyword

    Returns
    -------
    Plan
    """
    return _analyze(Path(audio), build(AnalysisOptions, options), dim_z=dim_z,
                    n_classes=n_classes, quiet=quiet)[0]


def _read(song: Path, sink, options: AnalysisOptions, info, start: float, *, quiet: bool):
    """Stream the song's part into ``sink`` (a FrameSpectra or SongAnalyzer)."""
    sr = audio_io.ANALYSIS_RATE
    total = options.duration or ((info.duration or 0) - start) or None
    with _progress(total=total and round(total, 1), unit="s", desc="analyse",
                   quiet=quiet) as bar:
        for block in audio_io.stream_mono(song, sr=sr, start=start, duration=options.duration,
                                          info=info):
            sink.push(block)
            bar.update(round(len(block) / sr, 3))
    n_frames = frame_count(sink.n_samples, sr=sr, fps=options.fps)
    if n_frames == 0:
        raise AudioError(f"{song} has {sink.n_samples / sr:.3f} s of audio"
                         f"{' after --start' if start else ''}, shorter than one frame at "
                         f"{options.fps:g} fps; give a longer file or a higher --fps")
    return n_frames


def _analyze(song: Path, options: AnalysisOptions, *, dim_z: int, n_classes: int,
             quiet: bool, info=None, mapper=None) -> tuple[Plan, SongFeatures | None]:
    """:func:`analyze`, also returning the reactive mode's features (None in classic mode);
    ``info`` is the song's :func:`~ganclip.audio.probe`, when the caller has it; ``mapper``
    the generator of a model that draws from W, whose looks it resolves
    (:func:`ganclip.looks.resolve`)."""
    info = info or audio_io.probe(song)
    start = _cut(info, options)
    image_types = _image_types(song, options)  # checked before the long work
    if options.chroma and options.type_names and len(image_types) != 12:
        raise BadInputError(f"--classes-from chroma mixes 12 image types, one per pitch class; "
                            f"--type-names gives {len(image_types)}")
    sr, shape = audio_io.ANALYSIS_RATE, dict(dim_z=dim_z, n_classes=n_classes)
    if options.mode == "classic":
        sink = FrameSpectra(sr=sr, fps=options.fps)
        _read(song, sink, options, info, start, quiet=quiet)
        features = None
        image_types, anchors = _looks(image_types, options, mapper, n=options.types or 6)
        plan = choreography.classic_plan(
            to_db(sink.finish()), fps=options.fps, image_types=image_types,
            transitions=options.transitions, ema_span=options.ema_span, seed=options.seed,
            anchors=anchors, **shape)
    else:
        total = options.duration or ((info.duration or 0) - start) or None
        sink = SongAnalyzer(sr=sr, seconds=total)
        n_frames = _read(song, sink, options, info, start, quiet=quiet)
        features = sink.finish()
        if not options.type_names and options.types is None:  # a look per section kind
            kinds = 12 if options.chroma else max(1, len(np.unique(features.section_labels)))
            image_types = _image_types(song, options, n=kinds)
        image_types, anchors = _looks(image_types, options, mapper, n=len(image_types))
        plan = choreography.reactive_plan(
            features, fps=options.fps, n_frames=n_frames, image_types=image_types,
            transitions=options.transitions, settings=options.reactive, seed=options.seed,
            anchors=anchors, **shape)
        pulse = f"{features.tempo:.1f} BPM" if features.steady else "no steady beat"
        log.debug(f"analysis: {pulse} (tempo confidence {features.tempo_confidence:.2f}), "
                  f"{len(features.beats)} beats, {len(features.events)} events, "
                  f"{len(features.sections)} sections starting at "
                  f"{', '.join(f'{t:.1f}' for t in features.sections[:, 0])} s")
    plan.settings["song"] = str(song)
    plan.start, plan.audio_seconds = start, sink.n_samples / sr
    log.debug(f"plan: {len(plan)} frames at {options.fps:g} fps, {options.mode} mode, image "
              f"types {', '.join(plan.type_names)}")
    return plan, features


def _looks(image_types, options: AnalysisOptions, mapper, *, n: int):
    """The image types as looks in ``mapper``'s W space, and their anchors; for a model
    that does not draw from W (``mapper`` None), the types as they are and no anchors. A
    render that names no types (no --type-names, --types-file or imagetypes/ folder) gets
    ``--looks auto``: ImageNet class mixes mean nothing to such a model."""
    if mapper is None:
        if options.looks is not None:
            raise BadInputError("--looks is for models that draw from a W space (StyleGAN); "
                                "this model takes image types (--type-names, --types-file)")
        return image_types, None
    from ganclip import looks

    named = options.type_names or options.types_file or any(
        t.source != "built-in" for t in image_types)
    image_types, anchors = looks.resolve(image_types, mapper, n=n, seed=options.seed,
                                         looks=options.looks or (None if named else "auto"))
    if options.chroma and len(image_types) != 12:
        raise BadInputError(f"--classes-from chroma mixes 12 looks, one per pitch class; "
                            f"--looks {options.looks} gives {len(image_types)}")
    return image_types, anchors


def _load_plan(path: Path, song: Path, info: audio_io.AudioInfo) -> Plan:
    """A saved plan, checked against the song it is to be drawn over."""
    if not path.is_file():
        raise BadInputError(f"--plan-in {path}: no such file; make one with --plan-out")
    plan = Plan.load(path)
    end = plan.start + len(plan) / plan.fps
    if info.duration is not None and end > info.duration + 1.0:
        raise BadInputError(f"--plan-in {path} covers {plan.start:.1f}-{end:.1f} s but {song} "
                            f"is {info.duration:.1f} s long; was it made from another song?")
    return plan


def analysis_figure(audio, *, output="analysis.png", quiet: bool = True,
                    **options) -> tuple[Path, list[str]]:
    """Analyse a song as a reactive render would, and draw what was found.

    Parameters
    ----------
    audio : path of the song
    output : path of the figure (.png, .svg, .pdf)
    quiet : bool, no progress bars
    **options : :func:`render`'s options; ``model``, ``weights``, ``device`` and
        ``precision`` pick the generator that draws the thumbnails (``mode`` must be
        "reactive")

    Returns
    -------
    path : Path of the figure
    lines : list of str, the analysis as text (tempo, beats, sections, image types)
    """
    from ganclip.figure import THUMB, describe, thumbnails, write_figure

    output = Path(output)
    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise BadInputError(f"-o {output}: the figure is written as .png, .svg or .pdf")
    if not output.parent.is_dir():
        raise BadInputError(f"folder of -o {output} does not exist")
    analysis, gen = split(options)
    if analysis.mode != "reactive":
        raise BadInputError("'ganclip analyze' shows the reactive analysis (beats, sections); "
                            "leave out --mode")
    prepared = generators.prepare(gen.model, weights=gen.weights, quiet=quiet)
    precision = prepared.spec.check_precision(gen.precision, gen.device)
    generator = prepared.load(size=THUMB, seed=analysis.seed, device=gen.device,
                              precision=precision, quiet=quiet)
    plan, features = _analyze(Path(audio), analysis, dim_z=prepared.spec.dim_z,
                              n_classes=prepared.spec.n_classes, quiet=quiet,
                              mapper=generator if prepared.spec.looks else None)
    if prepared.notice:
        log.info(prepared.notice)
    frames = thumbnails(plan, generator, palette=prepared.spec.camera)
    path = write_figure(output, plan, features, frames, title=Path(audio).name)
    return path, describe(plan, features)
