"""How well the picture follows the music, measured on the decoded video.

    python benchmarks/sync.py [--size 64] [--fps 30] [--modes reactive classic] [--out DIR]

Synthesises tracks whose truth is known (drums at 70-170 BPM, some swung; a sudden tempo change,
a section boundary;
an A-B-A-B song with timbrally different sections; a silent gap; and music with no beat at all:
calls gliding over a drone, rubato chords), renders each with the built-in ``cppn`` generator
in each mode, decodes the MP4 with PyAV and scores it:

- **beat F1**: peaks of the frame-to-frame image change (mean |Δpixel|; a peak is a local
  maximum 30 % of the way from the median change to its 99th percentile, at least
  100 ms from a larger one) against the true beats, with mir_eval's F-measure (±70 ms);
- **bounds hit**: true section boundaries with an image-type change within one beat (the
  image type of each frame comes from the render's ``--plan-out``);
- **stray**: image-type changes farther than one beat from every true boundary;
- **repeats**: whether every return of a section shows the type it showed before (and
  different sections different types);
- **gap**: mean image change per frame inside the silent gap, over that at the beat peaks
  (flicker; 0 is a still picture);
- **drift**: video length minus audio length, in frames, from the decoded streams.

and, in a second table, the tracks without a beat against their true event times (a call's or
a chord's start):

- **event F1**: the same change peaks against the events, mir_eval's onset F-measure (±100 ms);
- **far**: change peaks farther than 0.25 s from every event (jolts where nothing happens,
  such as a beat the music does not have);
- **beats**: beats in the render's plan (none, when the analysis hears no steady beat).

Needs ``mir_eval`` (in the dev extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.synth
import ganclip  # noqa: E402
from ganclip.choreography import Plan  # noqa: E402
from tests.synth import SR, chords, groove, pad, swells  # noqa: E402

EVENT_WINDOW = 0.1  # seconds: an event's change peak within this of it is a hit
FAR = 0.25  # seconds: a change peak farther than this from every event is a stray jolt


def tracks() -> dict[str, tuple[np.ndarray, np.ndarray, list, list]]:
    """name → (signal, true beats, true section boundaries, section letters)."""
    out = {}
    for bpm, swing in ((70, 0.5), (100, 0.67), (130, 0.67), (170, 0.5)):
        beats = np.arange(0.25, 24, 60 / bpm)
        out[f"drums {bpm}{' swing' if swing > 0.5 else ''}"] = (
            groove(beats, 24, swing=swing) + pad([110, 165], 24, amp=0.06), beats, [], [])
    first = np.arange(0.25, 14, 60 / 100)
    beats = np.concatenate([first, np.arange(first[-1] + 60 / 140, 28, 60 / 140)])
    # a sudden jump from 100 to 140 BPM is a new part of the song: its truth has a boundary
    # there (the same drums and chord on both sides; the look may change, but only there)
    out["tempo 100→140"] = (groove(beats, 28) + pad([110, 165], 28, amp=0.06), beats,
                            [float(first[-1] + 60 / 140)], [])
    section, beats, parts = 10.0, np.arange(0, 40, 0.5), []
    for k in range(4):
        local = beats[(beats >= k * section) & (beats < (k + 1) * section)] - k * section
        if k % 2 == 0:
            parts.append(groove(local, section, seed=k) + pad([110, 165, 220], section, amp=0.06))
        else:
            parts.append(0.6 * groove(local, section, seed=k, bright=True)
                         + pad([880, 1320, 1760], section, amp=0.06) * 1.5)
    out["A-B-A-B"] = (np.concatenate(parts), beats, [10.0, 20.0, 30.0], list("ABAB"))
    beats = np.concatenate([np.arange(0.25, 8, 0.5), np.arange(12.25, 20, 0.5)])
    signal = groove(beats, 20) + pad([110, 165], 20, amp=0.06)
    signal[8 * SR:12 * SR] = 0
    out["silent gap"] = (signal, beats, [], [])
    return out


def irregular(seconds: float, *, shortest: float, longest: float, seed: int) -> np.ndarray:
    """Times from 0.5 s on, each gap drawn uniformly from ``shortest`` to ``longest`` seconds."""
    rng, times = np.random.default_rng(seed), [0.5]
    while times[-1] + longest < seconds - 1.0:
        times.append(times[-1] + rng.uniform(shortest, longest))
    return np.array(times)


def beatless() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name → (signal, true event times) of music with no beat."""
    out = {}
    for seed in (1, 2):
        calls = irregular(24, shortest=0.8, longest=3.0, seed=seed)
        out[f"calls {seed}"] = (swells(calls, 24) + pad([110, 165], 24, amp=0.05), calls)
    rubato = irregular(24, shortest=0.6, longest=2.5, seed=3)
    out["rubato chords"] = (chords(rubato, 24) + pad([65.4], 24, amp=0.04), rubato)
    slow = irregular(30, shortest=1.5, longest=4.0, seed=4)
    out["slow swells"] = (swells(slow, 30, attack=0.15) + pad([55, 82.5], 30, amp=0.08), slow)
    return out


def decode(path: Path):
    """Frames as float32 [T, H, W, 3], and the video and audio durations in seconds."""
    import av

    with av.open(str(path)) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
        audio_s = float(audio.duration * audio.time_base)
        video_s = len(frames) / float(video.average_rate)
    return frames.astype(np.float32), video_s, audio_s


def change_peaks(frames: np.ndarray, *, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """The image change into each frame (mean |Δpixel|), and its peaks (frame indices into
    ``change``): local maxima 30 % of the way from its median to its 99th percentile, at
    least 100 ms from a larger one."""
    from scipy.signal import find_peaks

    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # into frame i + 1
    floor, top = np.median(change), np.percentile(change, 99)
    peaks, _ = find_peaks(change, height=floor + 0.3 * (top - floor),
                          distance=max(1, round(0.1 * fps)))
    return change, peaks


def score_events(path: Path, plan: Plan, events) -> dict:
    """Event F1 (±:data:`EVENT_WINDOW`) and change peaks farther than :data:`FAR` from every
    event, of a render of a track without a beat."""
    import mir_eval

    frames, _, _ = decode(path)
    _, peaks = change_peaks(frames, fps=plan.fps)
    peak_times = (peaks + 1) / plan.fps
    f1 = mir_eval.onset.f_measure(np.asarray(events), peak_times, window=EVENT_WINDOW)[0]
    far = np.abs(peak_times[:, None] - np.asarray(events)[None, :]).min(axis=1) > FAR
    return dict(f1=f1, peaks=len(peaks), far=int(far.sum()), beats=len(plan.beats))


def score(path: Path, plan: Plan, beats, bounds, letters, *, gap=None) -> dict:
    import mir_eval

    frames, video_s, audio_s = decode(path)
    change, peaks = change_peaks(frames, fps=plan.fps)
    peak_times = (peaks + 1) / plan.fps
    f1 = mir_eval.beat.f_measure(np.asarray(beats), peak_times, f_measure_threshold=0.07)
    beat = float(np.median(np.diff(beats)))
    switches = plan.times[np.flatnonzero(np.diff(plan.look)) + 1]
    hit = sum(bool(np.any(np.abs(switches - b) <= beat)) for b in bounds)
    stray = sum(not np.any(np.abs(np.asarray(bounds) - s) <= beat) for s in switches) \
        if bounds else len(switches)
    repeats = "-"
    if letters:
        edges = [0.0, *bounds, plan.times[-1]]
        looks = [int(plan.look[np.searchsorted(plan.times, (a + b) / 2)])
                 for a, b in zip(edges[:-1], edges[1:])]
        same = all((looks[i] == looks[j]) == (letters[i] == letters[j])
                   for i in range(len(letters)) for j in range(i))
        repeats = "yes" if same else "no"
    gap_ratio = "-"
    if gap is not None:
        inside = (np.arange(len(change)) + 1) / plan.fps
        quiet = change[(inside > gap[0] + 0.5) & (inside < gap[1])]
        gap_ratio = f"{quiet.mean() / max(change[peaks].mean(), 1e-9):.3f}"
    drift = round((video_s - audio_s) * plan.fps)
    return dict(f1=f1, peaks=len(peaks), hit=f"{hit}/{len(bounds)}", stray=stray,
                repeats=repeats, gap=gap_ratio, drift=drift,
                frames_ok=len(frames) == round(audio_s * plan.fps))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--modes", nargs="+", default=["reactive", "classic"])
    parser.add_argument("--out", help="keep the tracks and videos in this folder")
    args = parser.parse_args()
    folder = Path(args.out or tempfile.mkdtemp(prefix="ganclip-sync-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"cppn at {args.size}² and {args.fps:g} fps; files in {folder}\n")
    print(f"{'track':<16} {'mode':<9} {'beat F1':>7} {'peaks':>5} {'beats':>5} "
          f"{'bounds hit':>10} {'stray':>5} {'repeats':>7} {'gap':>6} {'drift':>5}")
    for name, (signal, beats, bounds, letters) in tracks().items():
        song = folder / f"{name.replace(' ', '_').replace('→', '-')}.wav"
        soundfile.write(song, (0.8 * signal / np.abs(signal).max()).astype(np.float32), SR)
        gap = (8.0, 12.0) if name == "silent gap" else None
        for mode in args.modes:
            video, plan_path = song.with_suffix(f".{mode}.mp4"), song.with_suffix(f".{mode}.npz")
            began = time.perf_counter()
            ganclip.render(song, output=video, size=args.size, fps=args.fps, mode=mode,
                           model="cppn", plan_out=plan_path, quiet=True)
            r = score(video, Plan.load(plan_path), beats, bounds, letters, gap=gap)
            print(f"{name:<16} {mode:<9} {r['f1']:7.3f} {r['peaks']:5d} {len(beats):5d} "
                  f"{r['hit']:>10} {r['stray']:5d} {r['repeats']:>7} {r['gap']:>6} "
                  f"{r['drift']:5d}{'' if r['frames_ok'] else ' (frame count off!)'}  "
                  f"[{time.perf_counter() - began:.0f} s]", flush=True)
    print(f"\nno beat: change peaks against the true events (±{EVENT_WINDOW * 1000:.0f} ms), "
          f"far = peaks > {FAR} s from every event\n")
    print(f"{'track':<16} {'mode':<9} {'event F1':>8} {'peaks':>5} {'events':>6} {'far':>4} "
          f"{'beats':>5}")
    for name, (signal, events) in beatless().items():
        song = folder / f"{name.replace(' ', '_')}.wav"
        soundfile.write(song, (0.8 * signal / np.abs(signal).max()).astype(np.float32), SR)
        for mode in args.modes:
            video, plan_path = song.with_suffix(f".{mode}.mp4"), song.with_suffix(f".{mode}.npz")
            began = time.perf_counter()
            ganclip.render(song, output=video, size=args.size, fps=args.fps, mode=mode,
                           model="cppn", plan_out=plan_path, quiet=True)
            r = score_events(video, Plan.load(plan_path), events)
            print(f"{name:<16} {mode:<9} {r['f1']:8.3f} {r['peaks']:5d} {len(events):6d} "
                  f"{r['far']:4d} {r['beats']:5d}  [{time.perf_counter() - began:.0f} s]",
                  flush=True)


if __name__ == "__main__":
    main()
