"""Every option, once: frozen dataclasses with defaults, ranges, choices and help.

The library builds them from its keyword arguments, the CLI builds its flags from their
fields (:func:`fields_of`), and the web page its controls; each checks its values once, in
``__post_init__``, so a bad value gets the same one-line error everywhere.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ganclip.errors import BadInputError
from ganclip.timebase import frame_rate

log = logging.getLogger(__name__)

MODES = ("reactive", "classic")
CLASSES_FROM = ("sections", "chroma")
FITS = ("extend", "crop")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
           "veryslow")  # libx264's speed presets
MAX_SEED = 2 ** 32 - 1  # numpy's seeds are 32-bit
MIN_SIDE, MAX_SIDE = 16, 4096  # pixels per side of a frame
SIZE_PRESETS = {  # the shapes people publish, width x height
    "square": (1080, 1080), "landscape": (1920, 1080), "portrait": (1080, 1920),
    "4k": (3840, 2160), "720p": (1280, 720), "feed": (1080, 1350),
    "4k-portrait": (2160, 3840)}
_SIZE = re.compile(r"\s*(\d+)\s*[x×]\s*(\d+)\s*")


def preset_list() -> str:
    """The size presets as ``name (WxH)``, for help texts and messages."""
    return ", ".join(f"{k} ({w}x{h})" for k, (w, h) in SIZE_PRESETS.items())


def parse_size(value, name: str = "--size") -> tuple[int, int]:
    """A frame shape ``(width, height)`` from ``"WxH"``, one side (a square), a preset name
    (:data:`SIZE_PRESETS`) or a pair. Each side is 16-4096; an odd side is rounded up to even
    (H.264's 4:2:0 colour needs even sides), with a note."""
    given = value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in SIZE_PRESETS:
            return SIZE_PRESETS[text]
        match = _SIZE.fullmatch(text)
        if match:
            value = (int(match[1]), int(match[2]))
        elif text.isdigit():
            value = int(text)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and int(v) == v for v in value)):
        raise BadInputError(f"{name} {given!r}: give WxH (e.g. 1920x1080), one side for a "
                            f"square (e.g. 512) or a preset: {preset_list()}")
    w, h = (int(v) for v in value)
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise BadInputError(f"{name} {w}x{h}: each side must be {MIN_SIDE}-{MAX_SIDE} pixels")
    even = (w + w % 2, h + h % 2)
    if even != (w, h):
        log.info(f"{name} {w}x{h}: rounded up to {even[0]}x{even[1]} (H.264 needs even "
                 "sides)")
    return even


def option(default, help: str, *, lo=None, hi=None, kind=float, choices=None,
           default_text: str | None = None, ui: tuple | None = None):
    """A dataclass field with what the CLI and the page need to show it.

    ``lo``/``hi`` bound a number (``kind`` int or float); ``choices`` list the allowed
    strings; ``default_text`` says what a None default means; ``ui`` is the page's slider
    range where it is narrower than the valid one.
    """
    kind = str if choices is not None else kind
    return field(default=default, metadata=dict(help=help, lo=lo, hi=hi, kind=kind,
                                                 choices=choices, default_text=default_text,
                                                 ui=ui))


def flag(name: str) -> str:
    """The command-line flag of a field: ``type_names`` → ``--type-names``."""
    return "--" + name.replace("_", "-")


def check_range(value, lo, hi, name: str, kind=float):
    """``value`` as ``kind`` when it is a number in ``[lo, hi]``; else a one-line error
    naming ``name`` (a flag)."""
    between = f"between {_number(lo)} and {_number(hi)}"
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise BadInputError(f"{name} must be a number {between}; got {value!r}")
    if not lo <= value <= hi or (kind is int and int(value) != value):
        what = "a whole number" if kind is int else "a number"
        raise BadInputError(f"{name} must be {what} {between}; got {_number(value)}")
    return kind(value)


def _number(x) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _check_fields(obj) -> None:
    """Check (and normalise) every field of ``obj`` that declares a range or choices."""
    for f in dataclasses.fields(obj):
        meta, value = f.metadata, getattr(obj, f.name)
        if value is None or not meta:
            continue
        if meta.get("choices") is not None and value not in meta["choices"]:
            raise BadInputError(f"unknown {flag(f.name)[2:]} '{value}' ({flag(f.name)}); "
                                f"available: {', '.join(meta['choices'])}")
        if meta.get("lo") is not None:
            object.__setattr__(obj, f.name, check_range(value, meta["lo"], meta["hi"],
                                                        flag(f.name), meta["kind"]))


def default_transitions(fps: float) -> int:
    """A third of a second of blending at each image-type change (GAN_PI-2's 20 frames at
    60 fps)."""
    return int(round(fps / 3))


@dataclass(frozen=True)
class ReactiveSettings:
    """The reactive mode's knobs; defaults chosen by eye on the recordings in shared/audio."""

    pulse: float = option(0.7, "reactive: size of the jolt on each beat, in units of z's "
                          "spread; 0 for none", lo=0, hi=10, ui=(0, 3))
    motion: float = option(1.0, "reactive: speed of the loudness-driven drift; 0 stands "
                           "still between beats", lo=0, hi=10, ui=(0, 3))
    smoothing: float = option(0.25, "reactive: seconds of inertia of the loudness and "
                              "spectrum the drift follows", lo=0, hi=10, ui=(0, 2))
    sensitivity: float = option(1.0, "reactive: above 1 quieter hits and passages react "
                                "more, below 1 less", lo=0.05, hi=20, ui=(0.1, 5))
    truncation_range: tuple[float, float] = option(
        (0.6, 1.3), "reactive: LO,HI factors on the image type's truncation from the calmest "
        "to the loudest moment; calm is cleaner, loud is wilder", kind=tuple, ui=(0.05, 3))
    classes_from: str = option("sections", "reactive: what picks the image type: sections "
                               "(each section kind its type) or chroma (the 12 pitch classes "
                               "mix 12 image types)", choices=CLASSES_FROM)

    zoom: float = option(1.0, "reactive: the camera's push in on each beat (scaled by the "
                         "hit's loudness) and slow drift in and out with the loudness; 0 for "
                         "none", lo=0, hi=10, ui=(0, 4))
    rotate: float = option(1.0, "reactive: the camera's rotation drifting with the harmonic "
                           "energy (1 turns up to about 10 degrees either way); 0 for none",
                           lo=0, hi=10, ui=(0, 4))
    shake: float = option(1.0, "reactive: the camera's small jolt sideways on percussive "
                          "hits; 0 for none", lo=0, hi=10, ui=(0, 4))
    flash: float = option(1.0, "reactive: a brightness lift on the strongest hits; 0 for "
                          "none", lo=0, hi=10, ui=(0, 4))
    structure: float = option(1.0, "reactive, StyleGAN: how far the bass and the hits move "
                              "the coarse layers (the picture's layout); 0 for none", lo=0,
                              hi=10, ui=(0, 4))
    texture: float = option(1.0, "reactive, StyleGAN: how far the harmony (chroma) and the "
                            "highs move the fine layers (texture, colour); 0 for none", lo=0,
                            hi=10, ui=(0, 4))
    noise: float = option(1.0, "reactive, StyleGAN2: how much the onsets stir the noise "
                          "inputs (grain, hair, foliage); 0 keeps them still", lo=0, hi=10,
                          ui=(0, 4))

    def __post_init__(self):
        _check_fields(self)
        given = self.truncation_range
        pair = given
        if isinstance(given, str):
            try:
                pair = tuple(float(v) for v in given.split(","))
            except ValueError:
                pair = ()
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise BadInputError(f"--truncation-range takes two numbers LO,HI, e.g. 0.6,1.3; "
                                f"got {given!r}")
        lo = check_range(pair[0], 0.01, 10, "--truncation-range LO")
        hi = check_range(pair[1], lo, 10, "--truncation-range HI (>= LO)")
        object.__setattr__(self, "truncation_range", (lo, hi))


@dataclass(frozen=True)
class AnalysisOptions:
    """What turns a song into a plan: the choreography and the part of the song."""

    fps: float = option(30.0, "frames per second, 1-120; 23.976, 29.97, 59.94 are the exact "
                        "NTSC rates", lo=1, hi=120)
    mode: str = option("reactive", "choreography: reactive (beats pulse the picture, "
                       "loudness moves it, each section gets its image type) or classic "
                       "(GAN_PI-2's per-frame spectrum and k-means image types)", choices=MODES)
    types: int | None = option(None, "number of image types, picked by --seed", lo=1,
                               hi=1000, kind=int, default_text="one per section kind; 12 with "
                               "--classes-from chroma; 6 in classic mode")
    type_names: tuple[str, ...] | None = option(
        None, "comma-separated image types by name (see 'ganclip types'); overrides --types",
        kind=str)
    types_file: str | None = option(None, "TOML or JSON file of extra image types, or a "
                                    "Ganbreeder/Artbreeder keyframe JSON", kind=str)
    looks: str | None = option(None, "StyleGAN and other W-space models: the looks, "
                               "auto (N seeds far apart in W, N from --types), auto:N, or "
                               "seeds:3,17,42", kind=str, default_text="the image types' "
                               "seeds and w files, auto for the others")
    transitions: int | None = option(None, "frames of interpolation at each image-type "
                                     "change, 0 for hard cuts", lo=0, hi=100000, kind=int,
                                     default_text="fps/3")
    ema_span: float = option(15.0, "classic: span in frames of the spectrum's moving average",
                             lo=1, hi=100000)
    reactive: ReactiveSettings = field(default_factory=ReactiveSettings)
    seed: int = option(0, "makes the whole result reproducible: type choice, pulse "
                       "directions, drift path, clustering, generator", lo=0, hi=MAX_SEED,
                       kind=int)
    start: float | None = option(None, "seconds into the song to begin", lo=0, hi=1e7,
                                 default_text="the beginning")
    duration: float | None = option(None, "seconds of song to use", lo=1e-3, hi=1e7,
                                    default_text="to the end")

    def __post_init__(self):
        _check_fields(self)
        object.__setattr__(self, "fps", float(frame_rate(self.fps)))
        if self.transitions is None:
            object.__setattr__(self, "transitions", default_transitions(self.fps))
        names = self.type_names
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        object.__setattr__(self, "type_names", tuple(names) if names else None)
        if self.types_file is not None:
            object.__setattr__(self, "types_file", str(self.types_file))
        if self.looks is not None:
            from ganclip.looks import parse_looks

            parse_looks(self.looks)  # checked once, with the other options
        if not isinstance(self.reactive, ReactiveSettings):
            raise TypeError(f"reactive must be ReactiveSettings, not {type(self.reactive)}")
        if self.chroma and self.types not in (None, 12):
            raise BadInputError(f"--classes-from chroma mixes 12 image types, one per pitch "
                                f"class; got --types {self.types} (leave --types out, or give "
                                "12 --type-names)")

    @property
    def chroma(self) -> bool:
        """Whether the 12 pitch classes pick the image types."""
        return self.mode == "reactive" and self.reactive.classes_from == "chroma"


@dataclass(frozen=True)
class GeneratorOptions:
    """What draws the frames, at what shape, and how they are encoded."""

    model: str = option("auto", "generator (see 'ganclip models')", kind=str,
                        default_text="auto: biggan-deep-256 when its weights are cached, "
                        "else the built-in cppn")
    weights: str | None = option(None, "local weights: for BigGAN a folder with config.json "
                                 "and pytorch_model.bin or model.safetensors, or the weights "
                                 "file itself", kind=str)
    device: str = option("cpu", "torch device, e.g. cpu or cuda", kind=str)
    precision: str = option("auto", "arithmetic: auto is the fastest that passes the "
                            "quality check on this device", choices=("auto", "fp32", "bf16",
                                                                     "fp16"))
    size: tuple[int, int] = option(
        (256, 256), "frame shape: WxH (e.g. 1920x1080), one side for a square, or a preset: "
        + preset_list() + "; sides 16-4096, an odd one rounded up to even", kind=str,
        default_text="256 (256x256)")
    fit: str = option("extend", "how a square-native generator (BigGAN) fills a wide or tall "
                      "frame: extend widens its own first feature map so it paints the whole "
                      "scene; crop scales its square to cover the frame", choices=FITS)
    batch: int = option(8, "frames per generator call", lo=1, hi=1024, kind=int)
    quality: int = option(20, "H.264 quality (x264's crf): lower is better and bigger, "
                          "18 looks lossless, 23 is x264's default", lo=0, hi=51, kind=int)
    preset: str = option("veryfast", "x264's speed preset: slower ones make smaller files at "
                         "the same quality", choices=PRESETS)

    def __post_init__(self):
        from ganclip import generators

        _check_fields(self)
        object.__setattr__(self, "size", parse_size(self.size))
        if self.model != "auto":
            generators.spec(self.model)
        if self.weights is not None:
            object.__setattr__(self, "weights", str(self.weights))
        object.__setattr__(self, "device", generators.check_device(self.device))
        generators.check_precision(self.precision, device=self.device)
        if self.model != "auto":
            generators.spec(self.model).check_precision(self.precision, self.device)


def fields_of(cls) -> list[dataclasses.Field]:
    """The option fields of ``cls``, nested settings (``reactive``) flattened in place."""
    out = []
    for f in dataclasses.fields(cls):
        if f.default_factory is ReactiveSettings:
            out.extend(fields_of(ReactiveSettings))
        else:
            out.append(f)
    return out


def build(cls, values: dict, *, strict: bool = True):
    """``cls`` from flat keyword ``values`` (the reactive knobs beside the others); values
    that are None take the default. ``strict``: an unknown key is a TypeError, as for any
    function's keywords."""
    names = {f.name for f in fields_of(cls)}
    if strict and (unknown := sorted(set(values) - names)):
        raise TypeError(f"unexpected option{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)}")
    given = {k: v for k, v in values.items() if k in names}
    if cls is AnalysisOptions:
        knobs = {f.name for f in dataclasses.fields(ReactiveSettings)}
        reactive = ReactiveSettings(**{k: given.pop(k) for k in list(given) if k in knobs})
        return cls(reactive=reactive, **given)
    return cls(**given)


REMOTE_DEVICES = ("auto", "cpu", "cuda")  # --device with --ray: the actors' kind of device;
# auto (the flag left out) is the cluster's GPUs when it has any, else its CPUs


def split(values: dict, *, remote: bool = False) -> tuple[AnalysisOptions, GeneratorOptions]:
    """Flat keyword options → the analysis and generator options; a TypeError names an
    unknown one.

    ``remote``: the frames are drawn on a Ray cluster (``--ray``), so ``device`` names the
    actors' kind of device (:data:`REMOTE_DEVICES`, "auto" when not given) and is checked
    by name, not against this machine, and ``precision`` against that kind."""
    analysis = {f.name for f in fields_of(AnalysisOptions)}
    generator = {f.name for f in fields_of(GeneratorOptions)}
    if unknown := sorted(set(values) - analysis - generator):
        raise TypeError(f"unexpected option{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)}")
    gen = {k: v for k, v in values.items() if k in generator}
    if remote:
        device, precision = gen.pop("device", None), gen.pop("precision", None)
    built = (build(AnalysisOptions, {k: v for k, v in values.items() if k in analysis}),
             build(GeneratorOptions, gen))
    return (built[0], _remote(built[1], device or "auto", precision or "auto")) if remote \
        else built


def _remote(options: GeneratorOptions, device: str, precision: str) -> GeneratorOptions:
    """``options`` with the device and precision of actors on a cluster (:func:`split`)."""
    from ganclip import generators

    if device not in REMOTE_DEVICES:
        raise BadInputError(f"--device {device} with --ray: cpu or cuda for the cluster's "
                            "actors, or leave it out for its GPUs when it has some, else its "
                            "CPUs")
    kind = "cuda" if device == "auto" else device  # auto may land on GPUs: fp16 allowed
    generators.check_precision(precision, device=kind)
    if options.model != "auto":
        generators.spec(options.model).check_precision(precision, kind)
    # __post_init__ would check the device against this machine: the fields are set past it
    object.__setattr__(options, "device", device)
    object.__setattr__(options, "precision", precision)
    return options


def to_dict(options) -> dict:
    """JSON-ready dict of an options dataclass (nested settings stay nested)."""
    def plain(value):
        return list(value) if isinstance(value, tuple) else value

    return {k: ({kk: plain(vv) for kk, vv in v.items()} if isinstance(v, dict) else plain(v))
            for k, v in dataclasses.asdict(options).items()}


def from_dict(cls, d: dict):
    """Inverse of :func:`to_dict`."""
    d = dict(d)
    if cls is AnalysisOptions and isinstance(d.get("reactive"), dict):
        d["reactive"] = ReactiveSettings(**d["reactive"])
    return cls(**d)


@dataclass(frozen=True)
class RenderJob:
    """One render: a song, the video it makes, and the options of each stage."""

    song: Path
    output: Path
    analysis: AnalysisOptions
    generator: GeneratorOptions
    plan_in: Path | None = None  # draw this saved plan instead of analysing the song
    plan_out: Path | None = None  # also save the plan here
    frames_dir: Path | None = None  # also write every frame as PNG here
    ray: object = None  # None: draw here; else a Ray address ("local", "auto", HOST:PORT)
    # or a ganclip.cluster.Pool to draw the segments on (ganclip.cluster)
