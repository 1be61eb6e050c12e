"""The resumable work folder ``<output>.parts/``: a render's plan, identity and segments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ganclip.errors import BadInputError
from ganclip.files import atomic_path
from ganclip.plan import Plan

SEGMENT_SECONDS = 4.0  # video per resumable segment: at most this much drawing is lost to a crash
WORK_VERSION = 2  # of the folder's layout; 2 split what shapes the pixels from the rest


class OtherRenderError(BadInputError):
    """The output's work folder holds an unfinished render with other settings."""


def segments(n_frames: int, fps: float) -> list[tuple[int, int]]:
    """``[start, stop)`` frames of each resumable segment."""
    step = max(1, int(round(SEGMENT_SECONDS * fps)))
    return [(a, min(a + step, n_frames)) for a in range(0, n_frames, step)]


def song_identity(song: Path) -> dict:
    """The song a render is of: where it is, its size and modification time."""
    stat = song.stat()
    return {"path": str(song.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _flat(d: dict, prefix: str = "") -> dict:
    """One level of ``name: value``, for saying what differs: the options by their own names
    (``seed``, ``pulse``), the rest by where they are (``song path``, ``weights sha256``)."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flat(value, prefix if key in ("analysis", "reactive") else
                             f"{prefix}{key} "))
        else:
            out[f"{prefix}{key}"] = value
    return out


class WorkFolder:
    """The work folder ``<output>.parts/`` of a resumable render.

    It holds ``settings.json`` (what the render makes: its identity, and the options to
    resume it with), ``plan.npz`` and the finished segments ``segment_NNNNN.mp4``, each
    written under a temporary name and renamed when complete, so a file there is always
    whole. The identity is what shapes the pixels (analysis options, model, weights, size,
    seed, song); batch, device and precision are not part of it, so a render started on one
    machine can be finished on another.
    """

    def __init__(self, output: Path):
        self.folder = output.with_name(output.name + ".parts")
        self.settings = self.folder / "settings.json"
        self.plan = self.folder / "plan.npz"

    def segment(self, k: int) -> Path:
        return self.folder / f"segment_{k:05d}.mp4"

    def saved(self) -> dict | None:
        """The folder's ``settings.json``; None when there is no folder."""
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
        saved = self.saved()
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
        saved = self.saved()
        if saved is None:
            return None
        theirs = _flat(saved["identity"])
        ours = _flat(json.loads(json.dumps(identity)))
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

    def start(self, identity: dict, options: dict, plan: Plan) -> None:
        """Make the folder for a new render: the plan, then the settings that mark it ready."""
        self.folder.mkdir(exist_ok=True)
        plan.save(self.plan)
        with atomic_path(self.settings) as tmp:
            tmp.write_text(json.dumps({"version": WORK_VERSION, "identity": identity,
                                       "song": identity["song"], "options": options},
                                      indent=1))

    def done_frames(self, plan: Plan) -> int:
        return sum(b - a for k, (a, b) in enumerate(segments(len(plan), plan.fps))
                   if self.segment(k).is_file())

    def describe(self, plan: Plan) -> str:
        """Where the finished work is kept, in words."""
        done = self.done_frames(plan)
        return (f"{done / plan.fps:.0f} of {len(plan) / plan.fps:.0f} s of video "
                f"({100 * done / max(len(plan), 1):.0f} %) are kept in {self.folder}")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
