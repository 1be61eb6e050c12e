"""Test media: synthetic signals (``synth``) written with soundfile or encoded with PyAV,
decoders that read them back without going through ganclip, so tests compare against known
answers, and where the real recordings are (``SHARED_AUDIO``)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "audio"
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_soundfile(path: Path, x: np.ndarray, sr: int, **kw) -> Path:
    """Write ``x`` [shape=(channels, n)] with libsndfile; format from the extension or ``kw``."""
    import soundfile as sf

    sf.write(str(path), x.T, sr, **kw)
    return path


def encode(path: Path, x: np.ndarray, sr: int, codec: str, *, fmt: str | None = None,
           video_fps: int | None = None, video_size: int = 32) -> Path:
    """Encode ``x`` [shape=(channels, n)] with an FFmpeg audio ``codec`` through PyAV.

    With ``video_fps`` the file also gets a black libx264 video track as long as the audio.
    """
    import av

    channels, n = x.shape
    with av.open(str(path), "w", format=fmt) as container:
        video = None
        if video_fps:
            video = container.add_stream("libx264", rate=video_fps)
            video.width = video.height = video_size
            video.pix_fmt = "yuv420p"
        audio = container.add_stream(codec, rate=sr)
        audio.layout = LAYOUTS[channels]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x, np.float32), format="fltp",
                                           layout=LAYOUTS[channels])
        frame.sample_rate = sr
        frame.pts, frame.time_base = 0, Fraction(1, sr)
        for packet in audio.encode(frame):
            container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
        if video is not None:
            black = np.zeros((video_size, video_size, 3), np.uint8)
            for i in range(int(round(n / sr * video_fps))):
                vf = av.VideoFrame.from_ndarray(black, format="rgb24")
                vf.pts = i
                for packet in video.encode(vf):
                    container.mux(packet)
            for packet in video.encode(None):
                container.mux(packet)
    return path


def decode_audio(path) -> tuple[np.ndarray, int]:
    """All of the first audio stream, as float32 [shape=(channels, n)], and its rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        planar = av.AudioResampler(format="fltp", rate=rate)  # only the sample format changes
        blocks = []
        for frame in container.decode(stream):
            frame.pts = None
            blocks += [out.to_ndarray() for out in planar.resample(frame)]
        blocks += [out.to_ndarray() for out in planar.resample(None)]
    return np.concatenate(blocks, axis=1), rate


def decode_frames(path) -> list:
    """Every decoded video frame of the first video stream (PyAV VideoFrames)."""
    import av

    with av.open(str(path)) as container:
        return list(container.decode(container.streams.video[0]))


def peak_frequency(y: np.ndarray, sr: int) -> float:
    """Frequency in Hz of the strongest FFT bin of a Hann-windowed mono signal."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spectrum)])


def first_above(y: np.ndarray, sr: int, level: float = 0.1) -> float:
    """Seconds to the first sample whose magnitude exceeds ``level``."""
    loud = np.flatnonzero(np.abs(y) > level)
    return float(loud[0] / sr) if len(loud) else float("inf")


def envelope(y: np.ndarray, sr: int, window: float = 0.01) -> np.ndarray:
    """RMS in consecutive windows of ``window`` seconds."""
    hop = int(round(window * sr))
    n = len(y) // hop
    return np.sqrt(np.mean(y[:n * hop].reshape(n, hop) ** 2, axis=1))
