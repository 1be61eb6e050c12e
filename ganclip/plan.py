"""The plan: what to draw at every video frame, the contract between analysis and rendering.

Plain numpy arrays, one row per frame, plus typed metadata; saved and loaded as ``.npz``
without pickles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganclip.errors import BadInputError
from ganclip.files import atomic_path

PLAN_VERSION = 5  # 2 added the feature times, 3 typed metadata and ``look``, 4 the camera,
# 5 the looks in W and the style drives
Z_LIMIT = 2.0  # |z| bound, the range of BigGAN's truncated normal
_ARRAYS = ("times", "z", "mix", "classes", "truncation", "look")
CAMERA = ("zoom", "angle", "shift", "flash")  # per-frame arrays, still camera when absent
PALETTE_COLOURS = 5  # colours of each image type's palette ramp in a plan
PITCHES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# the style drives, per frame: how far a style-based generator's coarse, middle and fine
# layers move and how much its noise stirs (0 still, 1 at full strength with the knobs at 1),
# then the weights of the 12 pitch classes (summing to 1) that steer the fine layers
# (:func:`ganclip.choreography.style_drive`)
DRIVE = ("coarse", "middle", "fine", "noise", *(f"chroma {p}" for p in PITCHES))


def fold_weights(mix: np.ndarray, symmetry) -> np.ndarray:
    """The symmetry of pictures mixing image types by ``mix`` [B, N], the types' orders
    ``symmetry`` [N] (0 none, 2 mirror, k kaleidoscope): np.ndarray [shape=(B, 2)], float32
    columns order and amount (0..1). The order is that of the symmetric type that weighs
    most, the amount the weight of the types of that order, so a change to or from a
    symmetric type folds the scene gradually; 0, 0 where no symmetric type weighs."""
    mix, symmetry = np.asarray(mix), np.asarray(symmetry)
    out = np.zeros((len(mix), 2), np.float32)
    if not np.any(symmetry):
        return out
    weights = np.where(symmetry[None] > 0, mix, 0.0)
    order = np.where(weights.max(axis=1) > 0, symmetry[weights.argmax(axis=1)], 0)
    out[:, 0] = order
    out[:, 1] = np.where(order > 0, (mix * (symmetry[None] == order[:, None])).sum(1), 0.0)
    return out


@dataclass
class Plan:
    """What to draw at every video frame.

    The class vectors are stored factored, ``y = mix @ classes``, so a 10-minute
    plan holds ``T × n_types`` weights instead of ``T × n_classes`` floats.
    """

    fps: float  # video frames per second
    times: np.ndarray  # [T] seconds, each frame's timestamp in the video
    z: np.ndarray  # [T, dim_z] float32 latent, in [-Z_LIMIT, Z_LIMIT]
    mix: np.ndarray  # [T, N] float32 weight of each image type; rows sum to 1
    classes: np.ndarray  # [N, n_classes] float32 class vector of each image type
    truncation: np.ndarray  # [T] float32 in (0, 1]
    look: np.ndarray  # [T] int, the image type (0..N-1) that weighs most in the frame
    type_names: tuple[str, ...]  # [N] names of the image types
    start: float = 0.0  # seconds into the song where frame 0 begins
    audio_seconds: float | None = None  # seconds of song the video covers (None: T / fps)
    model: str | None = None  # the generator the plan was drawn with, once rendered
    size: tuple[int, int] | None = None  # the video's (width, height), once rendered
    settings: dict = field(default_factory=dict)  # the choreography that made it (JSON)
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [b] seconds, if known
    sections: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [s, 2] start, end s
    section_labels: np.ndarray = field(  # [s] int label of each section; repeats share one
        default_factory=lambda: np.zeros(0, np.int64))
    # the camera, per frame; a still camera when not given
    zoom: np.ndarray | None = None  # [T] float32 magnification, 1 = as drawn
    angle: np.ndarray | None = None  # [T] float32 radians, counter-clockwise
    shift: np.ndarray | None = None  # [T, 2] float32 (x, y) in frame heights, right and up
    flash: np.ndarray | None = None  # [T] float32 0..1 brightness lift
    palettes: np.ndarray | None = None  # [N, PALETTE_COLOURS, 3] float32 RGB 0..1 per type
    symmetry: np.ndarray | None = None  # [N] int per type: 0 none, 2 mirror, k kaleidoscope
    # a style-based generator's looks: each type's anchor in its W space, and what drives
    # its layers; absent (shape [N, 0, 0] and [T, 0]) for the others
    anchors: np.ndarray | None = None  # [N, num_ws, w_dim] float32
    drive: np.ndarray | None = None  # [T, len(DRIVE)] float32 >= 0, or [T, 0]

    def __post_init__(self):
        if self.audio_seconds is None:
            self.audio_seconds = len(self.times) / self.fps if self.fps else 0.0
        n = len(self.times)
        still = dict(zoom=np.ones(n), angle=np.zeros(n), shift=np.zeros((n, 2)),
                     flash=np.zeros(n))
        for name, value in still.items():
            value = value if getattr(self, name) is None else getattr(self, name)
            setattr(self, name, np.asarray(value, np.float32))
        if self.palettes is None:
            self.palettes = np.zeros((len(self.type_names), 0, 3), np.float32)
        self.symmetry = np.zeros(len(self.type_names), np.int64) if self.symmetry is None \
            else np.asarray(self.symmetry, np.int64)
        self.anchors = np.zeros((len(self.type_names), 0, 0), np.float32) \
            if self.anchors is None else np.asarray(self.anchors, np.float32)
        self.drive = np.zeros((n, 0), np.float32) if self.drive is None \
            else np.asarray(self.drive, np.float32)
        if self.size is not None:
            self.size = tuple(int(v) for v in ((self.size, self.size) if np.isscalar(self.size)
                                               else self.size))

    def __len__(self) -> int:
        return len(self.times)

    @property
    def dim_z(self) -> int:
        return self.z.shape[1] if self.z.ndim == 2 else 0

    @property
    def n_classes(self) -> int:
        return self.classes.shape[1] if self.classes.ndim == 2 else 0

    def check(self, dim_z: int | None = None, n_classes: int | None = None, *,
              source="plan") -> None:
        """Refuse a plan whose arrays disagree, hold values a generator can't take, or (given
        ``dim_z`` and ``n_classes``) do not fit the generator; one line naming the problems."""
        problems = self._problems()
        if dim_z is not None and self.z.ndim == 2 and self.dim_z != dim_z:
            problems.append(f"z is {self.dim_z}-d but the generator takes {dim_z}")
        if n_classes is not None and self.classes.ndim == 2 and self.n_classes != n_classes:
            problems.append(f"{self.n_classes} classes but the generator takes {n_classes}")
        if problems:
            raise BadInputError(f"{source} is not a usable ganclip plan: {'; '.join(problems)}"
                                + ("; make it again for this model (--plan-out)"
                                   if dim_z is not None else ""))

    def _problems(self) -> list[str]:
        n, types = len(self.times), len(self.type_names)
        problems = []
        if not (self.fps > 0 and np.isfinite(self.fps)):
            problems.append(f"fps {self.fps}")
        if self.z.ndim != 2 or len(self.z) != n:
            problems.append(f"z {self.z.shape} for {n} frames")
        if self.mix.shape != (n, types) or self.classes.ndim != 2 or \
                self.classes.shape[0] != types:
            problems.append(f"mix {self.mix.shape} / classes {self.classes.shape} for {n} "
                            f"frames and {types} types")
        if self.truncation.shape != (n,) or self.look.shape != (n,):
            problems.append("truncation or look not one per frame")
        for name in ("z", "mix", "classes", "truncation"):
            if not np.all(np.isfinite(getattr(self, name))):
                problems.append(f"{name} has NaN or infinite values")
        if len(self.truncation) and not np.all((self.truncation > 0) & (self.truncation <= 1)):
            problems.append("truncation outside (0, 1]")
        if (self.zoom.shape, self.angle.shape, self.shift.shape, self.flash.shape) != (
                (n,), (n,), (n, 2), (n,)):
            problems.append("camera arrays (zoom, angle, shift, flash) not one per frame")
        elif not all(np.all(np.isfinite(getattr(self, k))) for k in CAMERA):
            problems.append("camera has NaN or infinite values")
        elif n and not (np.all(self.zoom > 0) and np.all((self.flash >= 0) & (self.flash <= 1))):
            problems.append("zoom not positive or flash outside [0, 1]")
        if self.palettes.ndim != 3 or len(self.palettes) != types or \
                self.palettes.shape[2] != 3 or not np.all(np.isfinite(self.palettes)):
            problems.append(f"palettes {self.palettes.shape} for {types} types")
        if self.symmetry.shape != (types,) or np.any(self.symmetry < 0):
            problems.append(f"symmetry {self.symmetry.shape} for {types} types")
        if self.anchors.ndim != 3 or len(self.anchors) != types or \
                not np.all(np.isfinite(self.anchors)):
            problems.append(f"anchors {self.anchors.shape} for {types} types")
        if self.drive.ndim != 2 or len(self.drive) != n or \
                self.drive.shape[1] not in (0, len(DRIVE)) or not np.all(np.isfinite(self.drive)) \
                or np.any(self.drive < 0):
            problems.append(f"drive {self.drive.shape} for {n} frames")
        if n == 0:
            problems.append("no frames")
        return problems

    @property
    def y(self) -> np.ndarray:
        """Class vectors, np.ndarray [shape=(T, n_classes)], float32."""
        return self.mix @ self.classes

    def batch(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The generator's input for frames ``start:stop`` (B = stop - start).

        Returns
        -------
        z : np.ndarray [shape=(B, dim_z)], float32 unit latent in [-Z_LIMIT, Z_LIMIT]
        y : np.ndarray [shape=(B, n_classes)], float32 class weights (``mix @ classes``)
        truncation : np.ndarray [shape=(B,)], float32 in (0, 1]
        """
        return (self.z[start:stop], self.mix[start:stop] @ self.classes,
                self.truncation[start:stop])

    def camera(self, start: int, stop: int) -> np.ndarray:
        """The camera of frames ``start:stop``: np.ndarray [shape=(B, 5)], float32 columns
        zoom, angle (radians), shift x, shift y (frame heights), flash."""
        return np.column_stack([self.zoom[start:stop], self.angle[start:stop],
                                self.shift[start:stop], self.flash[start:stop]])

    def palette(self, start: int, stop: int) -> np.ndarray | None:
        """Each frame's palette, the image types' palettes mixed as the types are:
        np.ndarray [shape=(B, PALETTE_COLOURS, 3)], RGB 0..1; None when the types have none."""
        if self.palettes.shape[1] == 0:
            return None
        return np.einsum("bn,nkc->bkc", self.mix[start:stop], self.palettes)

    def folds(self, start: int, stop: int) -> np.ndarray:
        """Each frame's symmetry (:func:`fold_weights` of its mix): np.ndarray
        [shape=(B, 2)], float32 order and amount."""
        return fold_weights(self.mix[start:stop], self.symmetry)

    @property
    def has_anchors(self) -> bool:
        """Whether the looks are anchors in a style-based generator's W space."""
        return self.anchors.size > 0

    def looks(self, start: int, stop: int) -> np.ndarray | None:
        """Each frame's anchor in W, the looks' anchors mixed as the types are (a
        transition is a straight line in W): np.ndarray [shape=(B, num_ws, w_dim)],
        float32; None when the plan has no anchors."""
        if not self.has_anchors:
            return None
        return np.einsum("bn,nlw->blw", self.mix[start:stop], self.anchors)

    def drives(self, start: int, stop: int) -> np.ndarray | None:
        """The style drives of frames ``start:stop`` ([B, len(DRIVE)], columns
        :data:`DRIVE`), None when the plan has none (classic mode)."""
        return self.drive[start:stop] if self.drive.shape[1] else None

    def save(self, path) -> Path:
        """Write the plan as ``.npz``, atomically (a crash leaves no half file)."""
        path = Path(path)
        meta = dict(start=self.start, audio_seconds=self.audio_seconds, model=self.model,
                    size=self.size, settings=self.settings)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(
                    f, version=PLAN_VERSION, fps=self.fps, **{k: getattr(self, k) for k in
                                                              _ARRAYS},
                    type_names=np.array(self.type_names, dtype=str), meta=json.dumps(meta),
                    beats=self.beats, sections=self.sections,
                    section_labels=self.section_labels, palettes=self.palettes,
                    symmetry=self.symmetry, anchors=self.anchors, drive=self.drive,
                    **{k: getattr(self, k) for k in CAMERA})
        return path

    @classmethod
    def load(cls, path) -> "Plan":
        """Read a plan written by :meth:`save` (any version from 1)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                plan = cls._from_arrays(data, path)
        except BadInputError:
            raise
        except (ValueError, KeyError, OSError, EOFError, TypeError) as exc:
            # np.load's own advice (allow_pickle) must never reach a user: loading a
            # pickle would run whatever code it holds
            what = "a pickle, which ganclip never loads" if "pickle" in str(exc).lower() \
                else f"not a plan file ({type(exc).__name__})"
            raise BadInputError(f"{path} is not a ganclip plan: {what}; make one with "
                                "'ganclip render SONG --plan-out plan.npz'") from None
        plan.check(source=path)
        return plan

    @classmethod
    def _from_arrays(cls, data, path) -> "Plan":
        if not hasattr(data, "files") or "version" not in data.files:
            raise KeyError("version")
        version = int(data["version"])
        if version not in (1, 2, 3, 4, PLAN_VERSION):
            raise BadInputError(f"{path}: plan version {version} is not supported "
                                f"(this ganclip reads 1 to {PLAN_VERSION})")
        extra = {k: data[k] for k in ("beats", "sections", "section_labels") if version >= 2}
        if version >= 4:
            extra.update({k: data[k] for k in (*CAMERA, "palettes", "symmetry")})
        if version >= 5:
            extra.update({k: data[k] for k in ("anchors", "drive")})
        if version >= 3:
            meta = json.loads(str(data["meta"]))
            look = data["look"]
        else:  # typed metadata lived in the free-form settings, the looks under "type"
            settings = json.loads(str(data["settings"]))
            meta = {k: settings.pop(k) for k in ("start", "audio_seconds", "model", "size")
                    if k in settings}
            meta["settings"] = settings
            look = data["type"]
        return cls(fps=float(data["fps"]), times=data["times"], z=data["z"], mix=data["mix"],
                   classes=data["classes"], truncation=data["truncation"], look=look,
                   type_names=tuple(str(n) for n in data["type_names"]), **meta, **extra)
