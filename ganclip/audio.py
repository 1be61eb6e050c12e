"""Decode any audio (or the audio track of a video) as a stream of blocks.

Two backends are tried in order: libsndfile through ``soundfile`` (wav, flac,
ogg/vorbis, opus, mp3 …) and FFmpeg through PyAV for everything else (m4a/aac,
video containers …). Audio is never held whole in memory: callers pull blocks,
so analysis and muxing stay flat in song length.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ganclip.errors import AudioError, one_line

log = logging.getLogger(__name__)

ANALYSIS_RATE = 22050  # Hz; 11 kHz of bandwidth is plenty for pictures
BLOCK = 65536  # samples per decoded block at the source rate
MAX_SHORTFALL = 0.05  # a file decoding to less than 95% of its declared length is truncated


@dataclass(frozen=True)
class AudioInfo:
    """What a file declares about its audio stream."""

    path: Path
    backend: str  # "soundfile" or "pyav"
    sample_rate: int  # Hz, of the source
    channels: int
    duration: float | None  # seconds as declared by the container; None when unknown


def _check_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"{path} is a directory; give an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"cannot read {path}: permission denied")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is empty (0 bytes); give an audio file")
    return path


def _probe_soundfile(path: Path) -> AudioInfo:
    import soundfile as sf

    info = sf.info(str(path))
    if info.samplerate <= 0 or info.channels <= 0:
        raise RuntimeError("no audio in file")
    duration = info.frames / info.samplerate if info.frames > 0 else None
    return AudioInfo(path, "soundfile", int(info.samplerate), int(info.channels), duration)


def _probe_pyav(path: Path) -> AudioInfo:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise RuntimeError("no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels
        if not rate or not channels:
            raise RuntimeError("audio stream has no sample rate or channels")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
    return AudioInfo(path, "pyav", int(rate), int(channels), duration)


def probe(path) -> AudioInfo:
    """Find a backend that reads ``path`` and what it says about the audio.

    Raises
    ------
    AudioError
        When the file is missing, empty, or no backend can read it; the message
        lists each backend's failure.
    """
    path = _check_path(path)
    backends = [("soundfile", _probe_soundfile), ("PyAV", _probe_pyav)]
    if path.suffix.lower() == ".mp3":
        # libsndfile decodes mp3 through mpg123, which prints its warnings straight to
        # the terminal; FFmpeg decodes it as exactly and quietly.
        backends.reverse()
    failures = []
    for name, prober in backends:
        try:
            info = prober(path)
        except Exception as exc:  # each backend fails in its own way; report them all
            failures.append(f"{name}: {one_line(exc)}")
            log.debug("probe %s with %s failed: %s", path, name, exc)
            continue
        log.debug("probe %s: %s", path, info)
        return info
    raise AudioError(f"could not decode {path} as audio ({'; '.join(failures)}); "
                     "give a wav, flac, mp3, ogg, opus or m4a file")


def _blocks_soundfile(info: AudioInfo) -> Iterator[np.ndarray]:
    import soundfile as sf

    with sf.SoundFile(str(info.path)) as f:
        while True:
            block = f.read(BLOCK, dtype="float32", always_2d=True)
            if not len(block):
                return
            yield block.T  # [channels, n]


def _blocks_pyav(info: AudioInfo) -> Iterator[np.ndarray]:
    import av

    # Planar float at the source rate and layout: decoding only, no resampling.
    resampler = av.AudioResampler(format="fltp", rate=info.sample_rate)
    with av.open(str(info.path)) as container:
        stream = container.streams.audio[0]
        # FFmpeg drops the encoder's priming samples at the start of an MP4 but not its
        # padding at the end (up to one AAC frame, 1024 samples); the MP4 sample table
        # declares the exact length, so stop there.
        left = None
        if "mp4" in container.format.name.split(",") and stream.duration:
            left = int(round(stream.duration * stream.time_base * info.sample_rate))

        def cut(outs):
            nonlocal left
            for out in outs:
                block = out.to_ndarray()
                if left is not None:
                    block, left = block[:, :left], left - min(left, block.shape[1])
                if block.shape[1]:
                    yield block

        for frame in container.decode(stream):
            frame.pts = None  # the resampler wants a clean timeline
            yield from cut(resampler.resample(frame))
        yield from cut(resampler.resample(None))


def source_blocks(info: AudioInfo) -> Iterator[np.ndarray]:
    """Decode at the source rate with all channels.

    Yields
    ------
    block : np.ndarray [shape=(channels, n)], float32
        Consecutive blocks; together they are the whole file.

    Raises
    ------
    AudioError
        When decoding fails midway or the file turns out truncated.
    """
    reader = _blocks_soundfile if info.backend == "soundfile" else _blocks_pyav
    total = 0
    try:
        for block in reader(info):
            total += block.shape[-1]
            yield block
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{info.path} is damaged: decoding stopped after "
                         f"{total / info.sample_rate:.2f} s ({one_line(exc)})") from None
    decoded = total / info.sample_rate
    if info.duration and decoded < info.duration * (1 - MAX_SHORTFALL) - 0.1:
        raise AudioError(f"{info.path} looks truncated: it declares {info.duration:.2f} s "
                         f"but only {decoded:.2f} s decode; re-export or re-download it")


class _Resampler:
    """Streaming mono downmix and sample-rate conversion (soxr, high quality)."""

    def __init__(self, in_rate: int, out_rate: int):
        import soxr

        self.stream = None if in_rate == out_rate else soxr.ResampleStream(
            in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        mono = np.ascontiguousarray(block.mean(axis=0, dtype=np.float32))
        if self.stream is None:
            return mono
        return self.stream.resample_chunk(mono, last=last)


def stream_mono(path, *, sr: int = ANALYSIS_RATE, start: float = 0.0,
                duration: float | None = None, info: AudioInfo | None = None) -> Iterator[np.ndarray]:
    """Decode ``path`` to mono float32 at ``sr`` Hz, block by block.

    Parameters
    ----------
    path : str or Path
    sr : int > 0
        Output sample rate in Hz.
    start : float >= 0
        Seconds to skip at the beginning.
    duration : float > 0 or None
        Seconds to keep after ``start``; None keeps the rest.
    info : AudioInfo, optional
        A previous :func:`probe` result, to skip probing again.

    Yields
    ------
    block : np.ndarray [shape=(n,)], float32
    """
    info = info or probe(path)
    resample = _Resampler(info.sample_rate, sr)
    skip = int(round(start * sr))
    keep = None if duration is None else int(round(duration * sr))
    for block in _with_last(source_blocks(info)):
        mono = resample(*block)
        if skip:
            cut = min(skip, len(mono))
            mono, skip = mono[cut:], skip - cut
        if keep is not None:
            mono, keep = mono[:keep], keep - min(keep, len(mono))
        if len(mono):
            yield mono
        if keep == 0:
            return


def _with_last(blocks: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """Pair each block with whether it is the last, so a resampler can flush."""
    previous = None
    for block in blocks:
        if previous is not None:
            yield previous, False
        previous = block
    if previous is not None:
        yield previous, True


def load_audio(path, *, sr: int = ANALYSIS_RATE, start: float = 0.0,
               duration: float | None = None) -> np.ndarray:
    """Decode a whole file (or a part of it) to mono float32.

    Returns
    -------
    y : np.ndarray [shape=(n,)], float32 at ``sr`` Hz
    """
    blocks = list(stream_mono(path, sr=sr, start=start, duration=duration))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
