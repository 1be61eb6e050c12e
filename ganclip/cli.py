"""Command line: parse flags, call the library, turn known errors into one line.

``ganclip render SONG`` makes a video, ``ganclip types`` lists image types, and
``ganclip`` alone in a terminal asks for GAN_PI-2's choices (track, frame rate, image
types, transitions, frame shape, camera) one by one; a wrong answer is asked again in
plain words ("a whole number from 1 to 18, e.g. 6").
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from ganclip.errors import BadInputError, GanclipError, one_line
from ganclip.options import SIZE_PRESETS, AnalysisOptions, GeneratorOptions, fields_of, flag

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif",
                  ".aiff", ".wma", ".mp4", ".mkv", ".webm", ".mov"}


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other ganclip error."""

    def error(self, message):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _add_options(p: argparse.ArgumentParser, cls, *, skip=()) -> None:
    """One flag per option field of ``cls`` (:mod:`ganclip.options`): its name, help,
    default and choices come from the field. Flags left out are None, so the dataclass's
    own default applies."""
    for f in fields_of(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        shown = meta["default_text"] or (",".join(f"{v:g}" for v in f.default)
                                         if isinstance(f.default, tuple) else f"{f.default:g}"
                                         if isinstance(f.default, float) else f.default)
        kind = meta["kind"] if meta["kind"] in (int, float) else str
        p.add_argument(flag(f.name), type=kind, default=None, choices=meta["choices"],
                       help=f"{meta['help']} (default {shown})")


def _add_render_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("song", nargs="+", help="audio file (wav, flac, mp3, ogg, opus, m4a, or a "
                   "video's sound); several, or a folder of them, each make their own video")
    p.add_argument("-o", "--output", help="video file to write, .mp4 or .mkv "
                   "(default: <song stem>.mp4 in the current folder); with several songs, "
                   "the folder to write them into")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS", help="draw the "
                   "segments on a Ray cluster: alone, one started on this machine for the "
                   "render; auto or HOST:PORT, a running one (needs ganclip[ray])")
    _add_options(p, GeneratorOptions)
    _add_options(p, AnalysisOptions)
    p.add_argument("--plan-in", help="render this saved plan (from --plan-out) instead of "
                   "analysing the song; its frame rate, part of the song and choreography are "
                   "used, the analysis flags are not")
    p.add_argument("--frames-dir", help="also write every frame as PNG into this folder")
    p.add_argument("--plan-out", help="also save the per-frame plan (.npz)")
    p.add_argument("--resume", action="store_true", help="finish the unfinished render of "
                   "this output (kept in <output>.parts/) with the settings it was started with; "
                   "running the same command again does the same")
    p.add_argument("--restart", action="store_true", help="throw away an unfinished render "
                   "of this output and start over")


def _options(args, *classes) -> dict:
    """The given option flags of ``classes`` as keyword options (absent ones left out)."""
    return {f.name: getattr(args, f.name) for cls in classes for f in fields_of(cls)
            if getattr(args, f.name, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganclip", description="Turn a song into a generated music video. "
                     "Run with no arguments in a terminal to be asked step by step.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes")
    common.add_argument("-v", "--verbose", action="store_true", help="say what is happening")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    render = sub.add_parser("render", parents=[common], help="make a video of a song")
    _add_render_flags(render)
    analyze = sub.add_parser("analyze", parents=[common], help="show the tempo, beats, "
                             "sections and image types a render would use, as text and a "
                             "figure")
    analyze.add_argument("song", help="audio file")
    analyze.add_argument("-o", "--output", default="analysis.png", help="figure to write, "
                         ".png, .svg or .pdf (default analysis.png)")
    _add_options(analyze, AnalysisOptions, skip=("fps", "transitions"))
    _add_options(analyze, GeneratorOptions, skip=("size", "batch"))
    types = sub.add_parser("types", parents=[common], help="list the image types")
    types.add_argument("--types-file", help="also load this TOML or JSON file of image types")
    types.add_argument("--classes", action="store_true",
                       help="list the 1000 ImageNet class names and indices instead")
    models = sub.add_parser("models", parents=[common], help="list the generators and their "
                            "weights; 'models download NAME' fetches one, 'models add NAME "
                            "PATH|URL' adds your own, 'models convert IN.pkl OUT.safetensors' "
                            "converts a StyleGAN snapshot")
    models.add_argument("action", nargs="?", choices=MODEL_ACTIONS, default="list",
                        help="list (default), download NAME, add NAME PATH|URL, or convert "
                        "IN.pkl OUT.safetensors")
    models.add_argument("name", nargs="?", help="model to download or add, e.g. "
                        "biggan-deep-256; for convert the snapshot")
    models.add_argument("source", nargs="?", help="add: the model file or its http(s) URL; "
                        "convert: the .safetensors to write")
    models.add_argument("--sha256", help="add: the digest the file must have")
    web = sub.add_parser("web", parents=[common], help="start the web page (Gradio) on this "
                         "machine")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                     "127.0.0.1: this machine only)")
    web.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    web.add_argument("--max-minutes", type=float, default=30.0, help="longest song the page "
                     "accepts, in minutes (default 30)")
    web.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS", help="draw the "
                     "page's renders (not its previews) on a Ray cluster: alone, one started "
                     "on this machine for each render; auto or HOST:PORT, a running one")
    return parser


def _web(args) -> int:
    from ganclip.web import serve

    if not 0 < args.port < 65536:
        raise BadInputError(f"--port must be between 1 and 65535; got {args.port}")
    if not args.max_minutes > 0:
        raise BadInputError(f"--max-minutes must be positive; got {args.max_minutes:g}")
    serve(host=args.host, port=args.port, max_minutes=args.max_minutes, ray=args.ray)
    return 0


def _setup_logging(*, quiet: bool, verbose: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("note: %(message)s"))
    root = logging.getLogger("ganclip")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _songs(given: list[str]) -> list[Path]:
    """The songs named: files as given, a folder's audio files in name order."""
    songs = []
    for name in given:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise BadInputError(f"{path} holds no audio files "
                                    f"({', '.join(sorted(AUDIO_SUFFIXES))})")
            songs += found
        else:
            songs.append(path)
    return songs


def _said(result) -> str:
    return (f"wrote {result.path}: {result.frames} frames at {result.fps:g} fps "
            f"({result.duration:.1f} s) with {result.model} in {result.seconds:.1f} s "
            f"({result.realtime_factor:.2f}x real time)")


def _render(args) -> int:
    from ganclip.render import render, render_many

    songs = _songs(args.song)
    options = _options(args, AnalysisOptions, GeneratorOptions)
    if len(songs) == 1:
        print(_said(render(songs[0], output=args.output, plan_in=args.plan_in,
                           plan_out=args.plan_out, frames_dir=args.frames_dir,
                           resume=args.resume, restart=args.restart, quiet=args.quiet,
                           ray=args.ray, **options)))
        return 0
    for flag_name in ("plan_in", "plan_out", "frames_dir", "resume"):
        if getattr(args, flag_name):
            raise BadInputError(f"{flag(flag_name)} is for one song; {len(songs)} were given")
    results = render_many(songs, output_dir=args.output, ray=args.ray, quiet=args.quiet,
                          restart=args.restart, **options)
    for song, result in zip(songs, results):
        if isinstance(result, GanclipError):
            print(f"error: {song}: {one_line(result)}", file=sys.stderr)
        else:
            print(_said(result))
    failed = sum(isinstance(r, GanclipError) for r in results)
    if failed:
        print(f"error: {failed} of {len(songs)} songs failed", file=sys.stderr)
    return 1 if failed else 0


def _analyze(args) -> int:
    from ganclip.analysis import analysis_figure

    path, lines = analysis_figure(args.song, output=args.output, quiet=args.quiet,
                                  **_options(args, AnalysisOptions, GeneratorOptions))
    print("\n".join(lines))
    print(f"wrote {path}")
    return 0


def _types(args) -> int:
    from ganclip import imagetypes

    if args.classes:
        for index, name in enumerate(imagetypes.class_names()):
            print(f"{index:4d}  {name}")
        return 0
    names = imagetypes.class_names()
    for t in imagetypes.available_types(types_file=args.types_file):
        mix = ", ".join(f"{names[i]} {w:.2f}" for i, w in t.classes[:4])
        more = f" +{len(t.classes) - 4} more" if len(t.classes) > 4 else ""
        latent = " [latent]" if t.latent is not None else ""
        latent += f"  seed {t.seed}" if t.seed is not None else ""
        latent += f"  w {t.w}" if t.w is not None else ""
        palette = " ".join(imagetypes.hex_colour(c) for c in t.colours())
        derived = "" if t.palette is not None else " (from name)"
        fold = {0: "", 2: "  mirror"}.get(t.symmetry, f"  {t.symmetry}-fold")
        print(f"{t.name:<22} truncation {t.truncation:.2f}  {mix}{more}{latent}  palette {palette}{derived}{fold}"
              f"{'' if t.source == 'built-in' else f'  ({t.source})'}")
    return 0


MODEL_ACTIONS = ("list", "download", "add", "convert")


def _models(args) -> int:
    from ganclip import generators, usermodels, weights

    if args.action == "add":
        if not (args.name and args.source):
            raise BadInputError("'ganclip models add NAME PATH|URL': give a name and the model "
                                "file (.pkl, .safetensors, .onnx) or its URL")
        model = usermodels.add(args.name, args.source, sha256=args.sha256, quiet=args.quiet,
                               reserved=tuple(generators.REGISTRY))
        print(f"added {model.name}: {model.kind} {model.resolution}, "
              f"{model.bytes / 1e6:.1f} MB in {model.path}; use --model {model.name}")
        return 0
    if args.action == "convert":
        if not (args.name and args.source):
            raise BadInputError("'ganclip models convert IN.pkl OUT.safetensors': give the "
                                "snapshot and the file to write")
        from ganclip.generators.stylegan.formats import convert

        if not Path(args.source).expanduser().parent.is_dir():
            raise BadInputError(f"folder of {args.source} does not exist")
        out = convert(args.name, args.source)
        print(f"wrote {out}: loads with --model {out}, no pickle needed")
        return 0
    if args.source:
        raise BadInputError(f"'ganclip models {args.action}' takes one name; got "
                            f"{args.name} {args.source}")
    if args.action == "download":
        if not args.name:
            raise BadInputError("which model? e.g. 'ganclip models download biggan-deep-256'")
        checkpoint = generators.spec(args.name).prepare(None, download=True, quiet=args.quiet)
        print(f"{args.name}: " + (f"weights in {checkpoint.parent}" if checkpoint else
                                  "built in, nothing to download"))
        return 0
    if args.name:
        raise BadInputError(f"'ganclip models {args.name}': did you mean "
                            f"'ganclip models download {args.name}'?")
    for spec in generators.REGISTRY.values():
        print(f"{spec.name:<17} {spec.status():<34} {spec.description}")
    for model in usermodels.added().values():
        print(f"{model.name:<17} {'added':<34} {model.kind}, {model.resolution}, "
              f"{model.bytes / 1e6:.1f} MB, from {model.source}")
    print(f"cache: {weights.cache_dir()} (set GANCLIP_CACHE to move it)")
    return 0


def _ask(prompt: str, default, parse):
    """Ask until ``parse`` accepts the answer; an empty answer takes the default."""
    while True:
        answer = input(f"{prompt} [{default}]: ").strip()
        if not answer:
            return default
        try:
            return parse(answer)
        except (ValueError, GanclipError) as exc:
            print(f"  {exc}; try again")


def _interactive() -> list[str]:
    """GAN_PI-2's flow (the program ganclip descends from): pick a track in audioFiles/,
    then frame rate, types, transitions, size."""
    from ganclip.options import default_transitions

    folder = Path("audioFiles")
    tracks = sorted(p for p in folder.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES) \
        if folder.is_dir() else []
    for i, track in enumerate(tracks, 1):
        print(f"  {i}. {track.name}")
    if not tracks:
        print("  (no audioFiles/ folder here: type the path of a song)")

    def track(answer: str) -> str:
        if answer.isdigit() and 1 <= int(answer) <= len(tracks):
            return str(tracks[int(answer) - 1])
        if not Path(answer).is_file():
            raise ValueError(f"no such file '{answer}'")
        return answer

    def number(kind, lo, hi, example):
        what = "a whole number" if kind is int else "a number"

        def parse(answer):
            try:
                value = kind(answer)
            except ValueError:  # Python's own wording is not for a person
                value = None
            if value is None or not lo <= value <= hi:
                raise ValueError(f"{what} from {lo:g} to {hi:g}, e.g. {example}")
            return value
        return parse

    def shape(answer):
        from ganclip.options import parse_size

        try:
            w, h = parse_size(answer)
        except GanclipError:
            raise ValueError("WxH like 1920x1080, one side like 512, or a preset name: "
                             + ", ".join(SIZE_PRESETS)) from None
        return f"{w}x{h}"

    def camera(answer):
        parts = [p.strip() for p in answer.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) not in (1, 4) or not all(0 <= v <= 10 for v in values):
            raise ValueError("one number from 0 (still) to 10 for all four, or four "
                             "for zoom, rotate, shake, flash, e.g. 1 or 1,0,0.5,1")
        return values * 4 if len(values) == 1 else values

    song = _ask("track (number or path)", str(tracks[0]) if tracks else "", track)
    if not song:
        raise GanclipError("no track chosen")
    from ganclip.imagetypes import available_types

    def field(cls, name):
        return next(f for f in fields_of(cls) if f.name == name)

    def ranged(cls, name, kind, example):
        meta = field(cls, name).metadata
        return number(kind, meta["lo"], meta["hi"], example)

    fps = _ask("frame rate", f"{field(AnalysisOptions, 'fps').default:g}",
               ranged(AnalysisOptions, "fps", float, 30))
    types = _ask("number of image types", 6, number(int, 1, len(available_types()), 6))
    transitions = _ask("transition frames", default_transitions(float(fps)),
                       number(int, 0, 10000, 10))
    print(f"  sizes: WxH, one side for a square, or {', '.join(SIZE_PRESETS)}")
    size = _ask("frame size", "256x256", shape)
    moves = _ask("camera (zoom, rotate, shake, flash; 0 is still)", "1", camera)
    moves = moves if isinstance(moves, list) else [1.0] * 4
    knobs = [a for name, v in zip(("zoom", "rotate", "shake", "flash"), moves)
             for a in (f"--{name}", f"{v:g}")]
    return ["render", song, "--fps", f"{float(fps):g}", "--types", str(types),
            "--transitions", str(transitions), "--size", size, *knobs]


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so unfinished files are cleaned up."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum, frame):
    raise _Stopped(signum)


def main(argv=None) -> int:
    """Run the command line; returns the exit code."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stopped)
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if not argv:
            if not sys.stdin.isatty():
                parser.print_usage(sys.stderr)
                return 2
            argv = _interactive()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, or a flag argparse refused (already printed)
            return exc.code if isinstance(exc.code, int) else 2
        _setup_logging(quiet=args.quiet, verbose=args.verbose)
        if args.command == "render":
            return _render(args)
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "types":
            return _types(args)
        if args.command == "models":
            return _models(args)
        if args.command == "web":
            return _web(args)
        parser.print_usage(sys.stderr)
        return 2
    except GanclipError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except EOFError:
        print("error: no answer given (stdin closed)", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (ganclip types | head): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        kept = getattr(exc, "kept", None)
        print(f"error: interrupted ({signal.Signals(signum).name}); "
              + (f"{kept}: run the same command again (or add --resume) to go on" if kept
                 else "nothing was kept"), file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
