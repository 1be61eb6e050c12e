"""``ganclip analyze``: one picture of what the reactive analysis heard and chose.

Top to bottom: the mel spectrogram with the section boundaries; the percussive onset
envelope with the beats; the sections coloured by image type and named; a strip with one
small frame of each image type, drawn by the generator the render would use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganclip.files import atomic_path
from ganclip.plan import fold_weights

THUMB = 128  # pixels, side of a thumbnail


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _pulse(features) -> str:
    """The tempo and its confidence, or that there is no steady beat."""
    if not features.steady:
        return f"no steady beat (tempo confidence {features.tempo_confidence:.2f})"
    return f"tempo {features.tempo:.1f} BPM (confidence {features.tempo_confidence:.2f})"


def describe(plan, features) -> list[str]:
    """The analysis as lines of text: tempo (or no steady beat), beats, events, sections and
    the image type of each."""
    lines = [f"{_pulse(features)}, {len(features.beats)} beats, "
             f"{len(features.onsets)} percussive onsets, {len(features.events)} events, "
             f"{features.duration:.1f} s"]
    chroma = plan.settings.get("classes_from") == "chroma"
    lines.append(_count(len(features.sections), "section")
                 + (" (image types follow the chroma, not the sections)" if chroma else ":"))
    for (a, b), label in zip(features.sections, features.section_labels):
        look = "" if chroma else f"  {plan.type_names[label % len(plan.type_names)]}"
        lines.append(f"  {_clock(a)}-{_clock(b)}  section {_letter(label)}{look}")
    lines.append("image types: " + ", ".join(
        f"{_letter(i)}={name}" if not chroma else name
        for i, name in enumerate(plan.type_names)))
    return lines


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:05.2f}"


def _letter(label: int) -> str:
    return chr(ord("A") + label) if label < 26 else str(label)


def thumbnails(plan, generator, *, palette: bool = False) -> np.ndarray:
    """One frame per image type: the plan's frame where that type weighs most; with
    ``palette`` (a generator that takes one, :attr:`GeneratorSpec.camera`) in its colours.

    Returns
    -------
    frames : np.ndarray [shape=(n_types, side, side, 3)], uint8
    """
    rows = plan.mix.argmax(axis=0)
    z, y, t = plan.z[rows], plan.classes, plan.truncation[rows]
    if plan.has_anchors:  # each look as it is, without the music's reach
        return generator(z, y, t, looks=plan.anchors, drive=None)
    if palette and plan.palettes.shape[1]:
        folds = fold_weights(np.eye(len(plan.type_names)), plan.symmetry)  # each type pure
        return generator(z, y, t, palette=plan.palettes, symmetry=folds)
    return generator(z, y, t)


def _camera_curves(ax, plan, *, duration: float) -> None:
    """The plan's camera over time, each curve in the unit it is felt in."""
    t = plan.times + 1.0 / plan.fps  # a frame shows the audio up to its end
    ax.plot(t, (plan.zoom - 1) * 100, lw=0.8, color="tab:blue", label="zoom in, %")
    ax.plot(t, np.degrees(plan.angle), lw=0.8, color="tab:green", label="turn, degrees")
    ax.plot(t, np.linalg.norm(plan.shift, axis=1) * 100, lw=0.8, color="tab:orange",
            label="shake, % of height")
    ax.plot(t, plan.flash * 100, lw=0.8, color="tab:red", label="flash, %")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set(xlim=(0, duration), ylabel="camera")
    ax.legend(loc="upper right", fontsize=7, ncols=4)


def write_figure(path, plan, features, frames: np.ndarray, *, title: str) -> Path:
    """Draw the analysis figure into ``path`` (PNG, or any format matplotlib knows by suffix).

    Written to a temporary file and renamed, so a failed draw never leaves half a picture.
    """
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    n_types = len(plan.type_names)
    colours = plt.get_cmap("tab10" if n_types <= 10 else "tab20")(np.arange(n_types) % 20)
    fig = plt.figure(figsize=(12, 10), layout="constrained")
    grid = fig.add_gridspec(5, max(n_types, 1), height_ratios=[3, 1.6, 1.4, 0.7, 2])
    spec, onset, camera, bar = (fig.add_subplot(grid[i, :]) for i in range(4))
    db = librosa.power_to_db(features.mel, ref=np.max, top_db=80)
    librosa.display.specshow(db, sr=features.sr, hop_length=features.hop, x_axis="time",
                             y_axis="mel", fmin=30, ax=spec, cmap="magma")
    spec.set(title=f"{title} — {_pulse(features)}, {len(features.beats)} beats, "
             f"{_count(len(features.sections), 'section')}", xlabel=None)
    for a in features.boundaries:
        spec.axvline(a, color="white", lw=1.2, ls="--")
    onset.plot(features.times, features.onset, lw=0.8, color="0.2", label="percussive onsets")
    onset.vlines(features.beats, 0, features.onset.max() if len(features.onset) else 1,
                 color="tab:red", lw=0.8, alpha=0.7, label="beats")
    onset.set(xlim=(0, features.duration), ylabel="onset", yticks=[])
    onset.legend(loc="upper right", fontsize=8)
    _camera_curves(camera, plan, duration=features.duration)
    chroma = plan.settings.get("classes_from") == "chroma"
    for (a, b), label in zip(features.sections, features.section_labels):
        kind = label % n_types
        bar.axvspan(a, b, color="0.8" if chroma else colours[kind], ec="white")
        name = _letter(label) + ("" if chroma else f": {plan.type_names[kind]}")
        bar.text((a + b) / 2, 0.5, name, ha="center", va="center", fontsize=8, clip_on=True)
    bar.set(xlim=(0, features.duration), yticks=[], xlabel="time (s)",
            ylabel="sections", ylim=(0, 1))
    for i, frame in enumerate(frames):
        ax = fig.add_subplot(grid[4, i])
        ax.imshow(frame)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(plan.type_names[i], fontsize=8, color="black")
        for side in ax.spines.values():
            side.set(color=colours[i], linewidth=4)
    try:
        with atomic_path(path, suffix=path.suffix or ".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return path
