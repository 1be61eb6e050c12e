"""``ganclip web``: a local Gradio page over the same library calls as the command line.

Every button calls :func:`ganclip.render.render` or :func:`ganclip.analysis.analysis_figure`
with the page's choices as their keyword options; nothing of the pipeline lives here.
One job runs at a time per server (the others wait in Gradio's queue, which shows their
place); Cancel stops a render between batches and keeps its resumable work folder.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from ganclip.errors import BadInputError, GanclipError, one_line
from ganclip.options import (SIZE_PRESETS, AnalysisOptions, GeneratorOptions, fields_of,
                             parse_size)

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MAX_MINUTES = 30.0  # longest upload the page takes, by default
PREVIEW_SECONDS = 10.0  # Preview renders this much of the song
PREVIEW_SIZE = 128  # at most this side, and at most PREVIEW_FPS
PREVIEW_FPS = 15.0
THUMB = 96  # px, the image types' thumbnails
UPLOAD_MB_PER_MINUTE = 20  # upload cap per allowed minute: 16-bit 44.1 kHz stereo WAV is 10
AUDIO_FOLDER = Path("audioFiles")


class Cancelled(KeyboardInterrupt):
    """Raised inside a render when the page's Cancel button was pressed."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Jobs:
    """The running job's cancel flag and the page's private folders."""

    def __init__(self, max_minutes: float, ray=None):
        self.max_minutes = max_minutes
        self.ray = ray  # where Render draws (--ray): None here, else a Ray address
        self.cancel = threading.Event()
        self.folder = Path(tempfile.mkdtemp(prefix="ganclip-web-"))  # mode 0700
        atexit.register(shutil.rmtree, self.folder, ignore_errors=True)
        # Gradio keeps uploads in GRADIO_TEMP_DIR: this private folder, removed at exit
        os.environ["GRADIO_TEMP_DIR"] = str(self.folder / "uploads")

    def song(self, upload, pick) -> Path:
        """The song to use: the upload, else the file picked from ``audioFiles/``."""
        from ganclip import audio as audio_io

        if upload:
            song = Path(upload if isinstance(upload, str) else upload.name)
        elif pick:
            song = AUDIO_FOLDER / pick
        else:
            raise BadInputError("no song: upload one, or pick one from audioFiles/")
        info = audio_io.probe(song)  # not audio: AudioError, naming the file
        if info.duration is not None and info.duration > self.max_minutes * 60:
            raise BadInputError(f"{song.name} is {info.duration / 60:.1f} minutes long; this "
                                f"page takes songs up to {self.max_minutes:g} minutes (start "
                                f"it with --max-minutes to change that)")
        return song

    def progress(self, report):
        """A render's progress hook: reports to the page, stops when Cancel was pressed."""
        def hook(done: int, total: int) -> None:
            if self.cancel.is_set():
                raise Cancelled("cancelled")
            report((done, total), desc="rendering", unit="frames")
        return hook


def _field(cls, name: str):
    return next(f for f in fields_of(cls) if f.name == name)


CHOICES = ("model", "mode", "fps", "size", "fit", "types", "transitions", "pulse", "motion",
           "smoothing", "sensitivity", "truncation_lo", "truncation_hi", "classes_from", "zoom",
           "rotate", "shake", "flash", "looks", "structure", "texture", "noise", "seed",
           "start", "duration", "quality",
           "preset")  # the page's controls, in the order _choice_inputs makes them


def _options(*values) -> dict:
    """The page's choices (in :data:`CHOICES` order) as :func:`ganclip.render.render`
    keyword options."""
    v = dict(zip(CHOICES, values, strict=True))
    for key, label in (("fps", "Frames per second"), ("seed", "Seed"),
                       ("quality", "Quality")):
        if v[key] is None:
            raise BadInputError(f"{label} is empty; give it a number")
    if not v["size"]:
        raise BadInputError("Frame size is empty; pick a preset or type WxH, e.g. 1920x1080")
    knobs = {k: v[k] for k in ("pulse", "motion", "smoothing", "sensitivity", "classes_from",
                               "zoom", "rotate", "shake", "flash", "fit", "preset", "model",
                               "mode", "structure", "texture", "noise")}
    return dict(knobs, fps=float(v["fps"]), size=str(v["size"]),
                type_names=list(v["types"]) or None,
                transitions=None if v["transitions"] is None or v["transitions"] < 0
                else int(v["transitions"]),
                truncation_range=(v["truncation_lo"], v["truncation_hi"]),
                seed=int(v["seed"]), quality=int(v["quality"]),
                looks=(v["looks"] or "").strip() or None,
                start=float(v["start"]) if v["start"] else None,
                duration=float(v["duration"]) if v["duration"] else None)


def preview_size(size) -> tuple[int, int]:
    """The frame shape of a preview: the render's shape scaled to at most
    :data:`PREVIEW_SIZE` on its long side, sides even."""
    w, h = parse_size(size, "Frame size")
    scale = min(1.0, PREVIEW_SIZE / max(w, h))
    return tuple(max(16, 2 * round(side * scale / 2)) for side in (w, h))


def _size_choices() -> list[tuple[str, str]]:
    return [("256x256 (fast)", "256x256")] + [
        (f"{name} {w}x{h}", name) for name, (w, h) in SIZE_PRESETS.items()]


def _model_choices() -> list[tuple[str, str]]:
    from ganclip import generators

    from ganclip.usermodels import added

    return [("auto: " + _field(GeneratorOptions, "model").metadata["default_text"]
             .removeprefix("auto: "), "auto")] + [
        (f"{spec.name}: {spec.status()}", spec.name) for spec in generators.REGISTRY.values()
    ] + [(f"{m.name}: {m.kind} {m.resolution}, added", m.name) for m in added().values()]


def _thumbnails(types) -> list[tuple[np.ndarray, str]]:
    """One small picture of each image type, by the built-in generator."""
    from ganclip.choreography import type_arrays
    from ganclip.generators import BUILT_IN, load_generator
    from ganclip.plan import PALETTE_COLOURS, fold_weights

    palettes = np.stack([t.palette_array(PALETTE_COLOURS) for t in types])
    folds = fold_weights(np.eye(len(types)), [t.symmetry for t in types])  # each type pure
    frames = load_generator(BUILT_IN, size=THUMB, seed=0)(*type_arrays(types),
                                                          palette=palettes, symmetry=folds)
    return [(frame, t.name) for frame, t in zip(frames, types)]


def _look_thumbnails(model: str, looks: str | None, seed: int) -> list[tuple[np.ndarray, str]]:
    """The looks a W-space model would draw (:func:`ganclip.looks.thumbnails`)."""
    from ganclip.looks import thumbnails

    return thumbnails(model, looks=looks, seed=seed, size=THUMB)


def failed(exc: BaseException) -> str:
    """One readable line for the page; an unexpected exception's details go to the log."""
    if isinstance(exc, GanclipError):
        return f"**error:** {one_line(exc)}"
    log.error("the page's job failed", exc_info=exc)
    return (f"**error:** something went wrong inside ganclip ({type(exc).__name__}: "
            f"{one_line(exc, limit=160)}); the details are in the server's log")


class _Page:
    """The page's handlers: each calls the same library function as the command line."""

    def __init__(self, jobs: Jobs):
        self.jobs = jobs

    def analyse(self, upload, pick, *choices):
        from ganclip.analysis import analysis_figure

        try:
            song = self.jobs.song(upload, pick)
            options = _options(*choices)
            for key in ("fps", "size", "transitions", "fit", "quality", "preset"):
                options.pop(key)
            path, lines = analysis_figure(song, output=self.jobs.folder / "analysis.png",
                                          **options, quiet=True)
            return "```\n" + "\n".join(lines) + "\n```", str(path)
        except Exception as exc:
            return failed(exc), None

    def make(self, upload, pick, *choices, preview: bool, progress):
        from ganclip.render import OtherRenderError, render

        self.jobs.cancel.clear()
        try:
            song = self.jobs.song(upload, pick)
            options = _options(*choices)
            if preview:
                options.update(size=preview_size(options["size"]),
                               fps=min(options["fps"], PREVIEW_FPS),
                               duration=min(options["duration"] or PREVIEW_SECONDS,
                                            PREVIEW_SECONDS))
            output = self.jobs.folder / f"{song.stem}{'.preview' if preview else ''}.mp4"
            hook = self.jobs.progress(progress)
            # a preview is drawn here: a few seconds of frames, less than Ray takes to start
            where = dict(ray=None if preview else self.jobs.ray)
            try:  # the same choices as a cancelled render go on from where it stopped
                result = render(song, output=output, **options, restart=preview,
                                progress=hook, quiet=True, **where)
            except OtherRenderError:  # other choices: a new render
                result = render(song, output=output, **options, restart=True, progress=hook,
                                quiet=True, **where)
            said = (f"wrote {result.path.name}: {result.frames} frames at {result.fps:g} fps "
                    f"({result.duration:.1f} s) with {result.model} in {result.seconds:.1f} s"
                    f"{'' if where['ray'] is None else ' on Ray (' + where['ray'] + ')'}")
            return said, str(result.path), str(result.path)
        except Cancelled as exc:
            return (f"cancelled: {getattr(exc, 'kept', None) or 'nothing was kept'}; press "
                    "Render again with the same choices to go on", None, None)
        except Exception as exc:
            return failed(exc), None, None

    def show_looks(self, *choices):
        """The gallery: the chosen model's looks (a StyleGAN's), or the image types."""
        try:
            options = _options(*choices)
            return _look_thumbnails(options["model"], options["looks"], options["seed"]), \
                "looks of " + options["model"]
        except Exception as exc:
            return None, failed(exc)

    def cancel(self):
        self.jobs.cancel.set()
        return "cancelling: the render stops after its current batch"


def _number(cls, name: str, label: str, **extra):
    import gradio as gr

    f = _field(cls, name)
    meta = f.metadata
    return gr.Number(f.default, label=label, minimum=meta["lo"],
                     maximum=meta["hi"], elem_id=name,
                     precision=0 if meta["kind"] is int else None, **extra)


def _slider(name: str, label: str, value=None, ui=None):
    import gradio as gr

    f = _field(AnalysisOptions, name)
    lo, hi = ui or f.metadata["ui"]
    return gr.Slider(lo, hi, f.default if value is None else value, label=label,
                     info=f.metadata["help"].removeprefix("reactive: "))


def _song_inputs(songs):
    import gradio as gr

    upload = gr.File(label="Song (any audio file, or a video with sound)", elem_id="song")
    pick = gr.Dropdown(songs, value=None, label="…or one from audioFiles/", elem_id="pick")
    return upload, pick


def _choice_inputs(image_types) -> list:
    """The controls whose values :func:`_options` reads, in its order."""
    import gradio as gr

    model = gr.Dropdown(_model_choices(), value="auto", allow_custom_value=True,
                        label="Model (or the path of a .pkl, .safetensors or .onnx)",
                        elem_id="model")
    mode_field = _field(AnalysisOptions, "mode")
    mode = gr.Radio(list(mode_field.metadata["choices"]), value=mode_field.default,
                    label="Mode", elem_id="mode")
    with gr.Row():
        fps = _number(AnalysisOptions, "fps", "Frames per second")
        size = gr.Dropdown(_size_choices(), value="256x256", allow_custom_value=True,
                           label="Frame size (a preset, or type WxH)", elem_id="size")
        transitions = gr.Number(-1, label="Transition frames (-1: fps/3)", precision=0,
                                elem_id="transitions")
    fit_field = _field(GeneratorOptions, "fit")
    fit = gr.Radio(list(fit_field.metadata["choices"]), value=fit_field.default,
                   label="BigGAN in a wide or tall frame", info=fit_field.metadata["help"],
                   elem_id="fit")
    types = gr.Dropdown([t.name for t in image_types], value=[], multiselect=True,
                        label="Image types (empty: chosen by the seed)", elem_id="types")
    gallery = gr.Gallery(_thumbnails(image_types), label="Image types (Show looks: the "
                         "model's)", columns=8, height=220, allow_preview=False,
                         elem_id="gallery")
    with gr.Accordion("Reactive knobs", open=False):
        pair = _field(AnalysisOptions, "truncation_range")
        lo, hi = pair.metadata["ui"]
        source = _field(AnalysisOptions, "classes_from")
        reactive = [
            _slider("pulse", "Pulse (jolt on the beat)"),
            _slider("motion", "Motion (drift with loudness)"),
            _slider("smoothing", "Smoothing (s)"), _slider("sensitivity", "Sensitivity"),
            _slider("truncation_range", "Truncation, calm", pair.default[0], (lo, 2)),
            _slider("truncation_range", "Truncation, loud", pair.default[1], (lo, hi)),
            gr.Radio(list(source.metadata["choices"]), value=source.default,
                     label="Image types from")]
    with gr.Accordion("Camera", open=False):
        camera = [_slider("zoom", "Zoom (push on the beat, drift with loudness)"),
                  _slider("rotate", "Rotate (drift with the harmonic energy)"),
                  _slider("shake", "Shake (jolt on hits)"),
                  _slider("flash", "Flash (lift on the strongest hits)")]
    with gr.Accordion("StyleGAN: looks and layers", open=False):
        looks = gr.Textbox("", label="Looks", info=_field(AnalysisOptions, "looks").metadata[
            "help"], placeholder="auto, auto:8 or seeds:3,17,42", elem_id="looks")
        layers = [_slider("structure", "Structure (coarse layers: bass and hits)"),
                  _slider("texture", "Texture (fine layers: harmony and highs)"),
                  _slider("noise", "Noise (StyleGAN2: onsets)")]
        show = gr.Button("Show looks", elem_id="show-looks")
    with gr.Row():
        seed = _number(AnalysisOptions, "seed", "Seed")
        start = gr.Number(0, label="Start (s)", minimum=0, elem_id="start")
        duration = gr.Number(0, label="Duration (s, 0: to the end)", minimum=0,
                             elem_id="duration")
    with gr.Row():
        quality = _number(GeneratorOptions, "quality", "Quality (crf, lower is better)")
        preset_field = _field(GeneratorOptions, "preset")
        preset = gr.Dropdown(list(preset_field.metadata["choices"]),
                             value=preset_field.default, label="Encoder preset",
                             elem_id="preset")
    choices = [model, mode, fps, size, fit, types, transitions, *reactive, *camera, looks,
               *layers, seed, start, duration, quality, preset]
    return choices, gallery, show


def build(*, max_minutes: float = MAX_MINUTES, ray=None):
    """The Gradio page, not yet launched; its Render button draws on the Ray cluster at
    ``ray`` when given (see :func:`ganclip.render.render`)."""
    import gradio as gr

    from ganclip.imagetypes import available_types

    jobs = Jobs(max_minutes, ray=ray)
    handlers = _Page(jobs)
    songs = sorted(p.name for p in AUDIO_FOLDER.glob("*") if p.is_file()) \
        if AUDIO_FOLDER.is_dir() else []
    image_types = available_types(search_dir=Path.cwd())

    def render_full(upload, pick, *choices, progress=gr.Progress()):
        return handlers.make(upload, pick, *choices, preview=False, progress=progress)

    def render_preview(upload, pick, *choices, progress=gr.Progress()):
        return handlers.make(upload, pick, *choices, preview=True, progress=progress)

    with gr.Blocks(title="ganclip", delete_cache=(3600, 3600)) as page:
        gr.Markdown("# ganclip\nTurn a song into a generated music video.")
        with gr.Row():
            with gr.Column():
                upload, pick = _song_inputs(songs)
                choices, gallery, show = _choice_inputs(image_types)
                with gr.Row():
                    analyse_button = gr.Button("Analyse", elem_id="analyse")
                    preview_button = gr.Button("Preview (10 s, small)", elem_id="preview")
                    render_button = gr.Button("Render", variant="primary", elem_id="render")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                video = gr.Video(label="Video", elem_id="video", interactive=False)
                download = gr.File(label="Download", elem_id="download", interactive=False)
                figure = gr.Image(label="Analysis", elem_id="analysis", interactive=False)
        job = dict(concurrency_limit=1, concurrency_id="ganclip")  # one job per server
        inputs = [upload, pick, *choices]
        analyse_button.click(handlers.analyse, inputs, [status, figure], **job)
        preview_button.click(render_preview, inputs, [status, video, download], **job)
        render_button.click(render_full, inputs, [status, video, download], **job)
        cancel_button.click(handlers.cancel, None, status, queue=False)
        show.click(handlers.show_looks, choices, [gallery, status], **job)
    page.jobs = jobs
    return page


def serve(*, host: str = LOOPBACK, port: int = 7860, max_minutes: float = MAX_MINUTES,
          block: bool = True, ray=None):
    """Start the page; returns Gradio's (app, local URL, share URL) when ``block`` is False.
    ``ray``: None, or the Ray address its renders are drawn on ("local", "auto",
    "HOST:PORT"), checked here first."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise BadInputError("'ganclip web' needs Gradio: pip install 'ganclip[web]' (or pip "
                            "install gradio)") from None
    if not is_loopback(host):
        log.warning(f"listening on {host}: anyone who can reach this machine on port {port} "
                    "can use the page and the files it makes")
    if ray is not None:
        from ganclip import cluster

        cluster.check(ray)
    page = build(max_minutes=max_minutes, ray=ray)
    page.queue(default_concurrency_limit=1)
    try:
        return page.launch(server_name=host, server_port=port, prevent_thread_lock=not block,
                           allowed_paths=[str(page.jobs.folder)], show_error=False,
                           max_file_size=f"{int(max_minutes * UPLOAD_MB_PER_MINUTE)}mb",
                           quiet=False)
    except OSError:  # Gradio's message is about its own launch() arguments
        raise BadInputError(f"cannot listen on {host} port {port}: it is in use, or the "
                            "address is not this machine's; choose another --port or --host"
                            ) from None
