"""``ganclip web``: a local Gradio page over the same library calls as the command line.

Every button calls :func:`ganclip.render.render` or :func:`ganclip.render.analysis_figure`
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

from ganclip.errors import BadInputError, GanclipError

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

    def __init__(self, max_minutes: float):
        self.max_minutes = max_minutes
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


def _options(model, mode, fps, size, types, transitions, pulse, motion, smoothing,
             sensitivity, truncation_lo, truncation_hi, classes_from, seed, start, duration):
    """The page's choices as :func:`ganclip.render.render` keyword options."""
    for value, label in ((fps, "Frames per second"), (size, "Size"), (seed, "Seed")):
        if value is None:
            raise BadInputError(f"{label} is empty; give it a number")
    return dict(model=model, mode=mode, fps=float(fps), size=int(size),
                type_names=list(types) or None, transitions=None if transitions is None
                or transitions < 0 else int(transitions), pulse=pulse, motion=motion,
                smoothing=smoothing, sensitivity=sensitivity,
                truncation_range=(truncation_lo, truncation_hi), classes_from=classes_from,
                seed=int(seed), start=float(start) if start else None,
                duration=float(duration) if duration else None)


def _model_choices() -> list[tuple[str, str]]:
    from ganclip import weights

    choices = [("auto: BigGAN-deep 256 when cached, else cppn", "auto"),
               ("cppn: built in", "cppn")]
    for m in weights.list_models():
        state = "cached" if m.cached else f"not cached, {m.size_mb:.0f} MB to download"
        choices.append((f"{m.name}: {state}", m.name))
    return choices


def _thumbnails(types) -> list[tuple[np.ndarray, str]]:
    """One small picture of each image type, by the built-in generator."""
    from ganclip.choreography import type_arrays
    from ganclip.generators import load_generator

    frames = load_generator("cppn", size=THUMB, seed=0)(*type_arrays(types))
    return [(frame, t.name) for frame, t in zip(frames, types)]


def build(*, max_minutes: float = MAX_MINUTES):
    """The Gradio page, not yet launched."""
    import gradio as gr

    from ganclip.choreography import CLASSES_FROM, ReactiveSettings as R
    from ganclip.imagetypes import available_types
    from ganclip.render import MODES, OtherRenderError, analysis_figure, render

    jobs = Jobs(max_minutes)
    songs = sorted(p.name for p in AUDIO_FOLDER.glob("*") if p.is_file()) \
        if AUDIO_FOLDER.is_dir() else []
    image_types = available_types(search_dir=Path.cwd())

    def failed(exc: Exception) -> str:
        return f"**error:** {' '.join(str(exc).split())}"

    def analyse(upload, pick, *choices):
        try:
            song = jobs.song(upload, pick)
            o = _options(*choices)
            for key in ("fps", "size", "transitions"):
                o.pop(key)
            path, lines = analysis_figure(song, output=jobs.folder / "analysis.png",
                                          **o, quiet=True)
            return "```\n" + "\n".join(lines) + "\n```", str(path)
        except GanclipError as exc:
            return failed(exc), None

    def make(upload, pick, *choices, preview: bool, progress):
        jobs.cancel.clear()
        try:
            song = jobs.song(upload, pick)
            o = _options(*choices)
            if preview:
                o.update(size=min(o["size"], PREVIEW_SIZE), fps=min(o["fps"], PREVIEW_FPS),
                         duration=min(o["duration"] or PREVIEW_SECONDS, PREVIEW_SECONDS))
            output = jobs.folder / f"{song.stem}{'.preview' if preview else ''}.mp4"
            try:  # the same choices as a cancelled render go on from where it stopped
                result = render(song, output=output, **o, restart=preview,
                                progress=jobs.progress(progress), quiet=True)
            except OtherRenderError:  # other choices: a new render
                result = render(song, output=output, **o, restart=True,
                                progress=jobs.progress(progress), quiet=True)
            said = (f"wrote {result.path.name}: {result.frames} frames at {result.fps:g} fps "
                    f"({result.duration:.1f} s) with {result.model} in {result.seconds:.1f} s")
            return said, str(result.path), str(result.path)
        except Cancelled as exc:
            return (f"cancelled: {getattr(exc, 'kept', 'nothing was kept')}; press Render "
                    "again with the same choices to go on", None, None)
        except GanclipError as exc:
            return failed(exc), None, None

    def render_full(upload, pick, *choices, progress=gr.Progress()):
        return make(upload, pick, *choices, preview=False, progress=progress)

    def render_preview(upload, pick, *choices, progress=gr.Progress()):
        return make(upload, pick, *choices, preview=True, progress=progress)

    def cancel():
        jobs.cancel.set()
        return "cancelling: the render stops after its current batch"

    with gr.Blocks(title="ganclip", delete_cache=(3600, 3600)) as page:
        gr.Markdown("# ganclip\nTurn a song into a generated music video.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Song (any audio file, or a video with sound)",
                                 elem_id="song")
                pick = gr.Dropdown(songs, value=None, label="…or one from audioFiles/",
                                   elem_id="pick")
                model = gr.Dropdown(_model_choices(), value="auto", label="Model",
                                    elem_id="model")
                mode = gr.Radio(list(MODES), value="reactive", label="Mode", elem_id="mode")
                with gr.Row():
                    fps = gr.Number(30, label="Frames per second", minimum=1, maximum=120,
                                    elem_id="fps")
                    size = gr.Number(256, label="Size (px)", minimum=16, maximum=4096,
                                     precision=0, elem_id="size")
                    transitions = gr.Number(-1, label="Transition frames (-1: fps/3)",
                                            precision=0, elem_id="transitions")
                types = gr.Dropdown([t.name for t in image_types], value=[], multiselect=True,
                                    label="Image types (empty: chosen by the seed)",
                                    elem_id="types")
                gr.Gallery(_thumbnails(image_types), label="Image types", columns=8, height=220,
                           allow_preview=False)
                with gr.Accordion("Reactive knobs", open=False):
                    pulse = gr.Slider(0, 3, R.pulse, label="Pulse (jolt on the beat)")
                    motion = gr.Slider(0, 3, R.motion, label="Motion (drift with loudness)")
                    smoothing = gr.Slider(0, 2, R.smoothing, label="Smoothing (s)")
                    sensitivity = gr.Slider(0.1, 5, R.sensitivity, label="Sensitivity")
                    lo = gr.Slider(0.05, 2, R.truncation_range[0], label="Truncation, calm")
                    hi = gr.Slider(0.05, 3, R.truncation_range[1], label="Truncation, loud")
                    classes_from = gr.Radio(list(CLASSES_FROM), value=R.classes_from,
                                            label="Image types from")
                with gr.Row():
                    seed = gr.Number(0, label="Seed", precision=0, elem_id="seed")
                    start = gr.Number(0, label="Start (s)", minimum=0, elem_id="start")
                    duration = gr.Number(0, label="Duration (s, 0: to the end)", minimum=0,
                                         elem_id="duration")
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
        choices = [model, mode, fps, size, types, transitions, pulse, motion, smoothing,
                   sensitivity, lo, hi, classes_from, seed, start, duration]
        job = dict(concurrency_limit=1, concurrency_id="ganclip")  # one job per server
        analyse_button.click(analyse, [upload, pick, *choices], [status, figure], **job)
        preview_button.click(render_preview, [upload, pick, *choices],
                             [status, video, download], **job)
        render_button.click(render_full, [upload, pick, *choices], [status, video, download],
                            **job)
        cancel_button.click(cancel, None, status, queue=False)
    page.jobs = jobs
    return page


def serve(*, host: str = LOOPBACK, port: int = 7860, max_minutes: float = MAX_MINUTES,
          block: bool = True):
    """Start the page; returns Gradio's (app, local URL, share URL) when ``block`` is False."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise BadInputError("'ganclip web' needs Gradio: pip install 'ganclip[web]' (or pip "
                            "install gradio)") from None
    if not is_loopback(host):
        log.warning(f"listening on {host}: anyone who can reach this machine on port {port} "
                    "can use the page and the files it makes")
    page = build(max_minutes=max_minutes)
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
