"""Mutated audio files and the checks every one must pass: decoded, or refused in one line.

Used by ``tests/test_fuzz.py`` (a few dozen files in CI) and ``benchmarks/fuzz.py``
(hundreds). A mutation is a truncation, bit flips in the body or the header, a zeroed or a
repeated stretch of bytes of one of the real recordings in ``../shared/audio``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from media import SHARED_AUDIO
SOURCES = ("choice_drum_bass.ogg", "solo_trumpet.ogg", "madmom_sample.wav",
           "madmom_stereo_sample.flac", "madmom_stereo_sample.m4a")
KINDS = ("truncate", "flip body", "flip header", "zero stretch", "repeat stretch")


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """One mutation of a file's bytes."""
    b = bytearray(data)
    n = len(b)
    if kind == "truncate":
        return bytes(b[:int(rng.integers(1, n))])
    if kind in ("flip body", "flip header"):
        lo, hi = (0, min(n, 512)) if kind == "flip header" else (min(n - 1, 512), n)
        for at in rng.integers(lo, hi, size=int(rng.integers(1, 64))):
            b[at] ^= 1 << int(rng.integers(0, 8))
        return bytes(b)
    a = int(rng.integers(0, n))
    length = int(rng.integers(1, max(2, n // 10)))
    if kind == "zero stretch":
        b[a:a + length] = bytes(len(b[a:a + length]))
        return bytes(b)
    return bytes(b[:a + length] + b[a:a + length] + b[a + length:])  # repeat stretch


def mutated_files(folder: Path, count: int, *, seed: int = 0) -> list[Path]:
    """``count`` mutated copies of the recordings, each kind in turn on a random source."""
    rng = np.random.default_rng(seed)
    originals = {name: (SHARED_AUDIO / name).read_bytes() for name in SOURCES}
    out = []
    for i in range(count):
        name = SOURCES[int(rng.integers(len(SOURCES)))]
        kind = KINDS[i % len(KINDS)]
        path = folder / f"{i:04d} {kind} {name}"
        path.write_bytes(mutate(originals[name], kind, rng))
        out.append(path)
    return out


def check_decode(path: Path, *, timeout: float = 60.0) -> str:
    """Decode a file with ganclip, in a thread given ``timeout`` seconds. Returns "decoded" or
    "refused"; raises AssertionError on a hang, a non-ganclip exception, a message of more
    than one line or one not naming the file, or samples that are not finite."""
    from ganclip.audio import load_audio
    from ganclip.errors import GanclipError

    result = {}

    def work():
        try:
            result["samples"] = load_audio(path)
        except BaseException as exc:  # judged below, in the calling thread
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{path.name}: decoding hung for {timeout:g} s"
    error = result.get("error")
    if error is not None:
        assert isinstance(error, GanclipError), f"{path.name}: {type(error).__name__}: {error}"
        message = str(error)
        assert "\n" not in message and path.name in message, f"{path.name}: {message!r}"
        return "refused"
    assert np.all(np.isfinite(result["samples"])), f"{path.name}: non-finite samples"
    return "decoded"


def check_cli(path: Path, output: Path, *, timeout: float = 180.0) -> str:
    """Render a file with the CLI in its own process, killed after ``timeout`` seconds.
    Returns "video" or "refused"; raises AssertionError on a hang, a crash, a traceback, an
    error of more than one line, or a file left under the output's name after a refusal."""
    command = [sys.executable, "-m", "ganclip", "render", str(path), "-o", str(output),
               "--size", "16", "--fps", "5", "--duration", "8", "-q"]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{path.name}: the CLI hung for {timeout:g} s") from None
    assert "Traceback" not in run.stderr, f"{path.name}: {run.stderr}"
    if run.returncode == 0:
        assert output.is_file() and output.stat().st_size > 0, f"{path.name}: no video"
        return "video"
    lines = run.stderr.strip().splitlines()
    assert run.returncode in (1, 2) and len(lines) == 1 and lines[0].startswith("error: "), \
        f"{path.name}: exit {run.returncode}, {run.stderr!r}"
    assert not output.exists(), f"{path.name}: refused but left {output.name}"
    return "refused"
