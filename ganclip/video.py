"""Streaming video out: H.264 + AAC into MP4 or MKV, written as frames arrive.

Frames are encoded as soon as the generator draws them and the song's audio is
interleaved alongside, so nothing grows with the song's length. The file is
written under a temporary name in the target folder and renamed only once it is
complete: a failed render never leaves a file under the final name.
:class:`SegmentEncoder` runs writers in a thread of their own, beside the drawing.
"""

from __future__ import annotations

import errno
import numbers
import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ganclip.audio import AudioInfo, source_blocks
from ganclip.errors import BadInputError, EncodingError
from ganclip.files import atomic_path
from ganclip.timebase import frame_rate

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
# AAC-LC as every player decodes it (profile level 2) stops at 48 kHz; higher source
# rates are resampled to 48 kHz, far past what the ear (or a music video) needs.
AAC_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


def container_format(path) -> str:
    """FFmpeg muxer for an output file name; MP4 unless the extension says otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        raise BadInputError(f"cannot write video to {path}: use a .mp4 or .mkv name (--output)")
    return CONTAINERS[suffix]


def check_output(path) -> Path:
    """Fail early, before any work, when ``path`` cannot be written."""
    path = Path(path)
    container_format(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BadInputError(f"output folder {parent} does not exist; create it or choose "
                            "another --output")
    if path.is_dir():
        raise BadInputError(f"output {path} is a directory; give a file name (--output)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInputError(f"output folder {parent} is not writable; choose another --output")
    return path


def aac_rate(rate: int) -> int:
    """The source rate when AAC carries it, else the nearest higher AAC rate, at most 48 kHz."""
    if rate in AAC_RATES:
        return rate
    higher = [r for r in AAC_RATES if r >= rate]
    return min(higher) if higher else max(AAC_RATES)


class _AudioFeed:
    """Pulls the song's samples for ``[start, start + duration)`` at its own rate."""

    def __init__(self, info: AudioInfo, *, start: float, duration: float):
        self.info = info
        self.skip = int(round(start * info.sample_rate))
        self.left = int(round(duration * info.sample_rate))
        self.blocks: Iterator[np.ndarray] = source_blocks(info)
        self.sent = 0  # samples handed out

    def next_block(self) -> np.ndarray | None:
        for block in self.blocks:
            if self.skip:
                cut = min(self.skip, block.shape[1])
                block, self.skip = block[:, cut:], self.skip - cut
            block = block[:, :self.left]
            self.left -= block.shape[1]
            if block.shape[1]:
                self.sent += block.shape[1]
                return block
            if self.left <= 0:
                return None
        return None


class VideoWriter:
    """Encode frames (and the song) to ``path`` as they come.

    Parameters
    ----------
    path : output file (.mp4 or .mkv)
    fps : float, frames per second
    size : (width, height) or one side of a square, in pixels (even; H.264 4:2:0 needs it)
    audio : AudioInfo or None, the song to mux, cut to ``[audio_start, audio_start + audio_duration)``
    frames_dir : folder to also write every frame as PNG, or None
    first_frame : int, number of the first frame in the PNG names (a segment of a longer video)
    template : path of a video written by a VideoWriter, or None. Given, the writer copies
        encoded video instead of encoding frames: :meth:`append` adds whole files made with
        the same settings (the first of them is the template), without re-encoding.
    """

    def __init__(self, path, *, fps: float, size: int, audio: AudioInfo | None = None,
                 audio_start: float = 0.0, audio_duration: float | None = None,
                 crf: int = 20, preset: str = "veryfast", frames_dir=None,
                 first_frame: int = 0, template=None):
        import av

        self.path = check_output(path)
        shape = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
        if not (len(shape) == 2 and all(isinstance(v, numbers.Integral) and v > 0
                                        and v % 2 == 0 for v in shape)):
            raise BadInputError(f"video size must be positive even numbers of pixels "
                                f"(H.264 4:2:0), not {size!r}")
        if not (np.isfinite(fps) and fps > 0):
            raise BadInputError(f"frames per second must be positive, not {fps!r}")
        self.width, self.height = (int(v) for v in shape)
        self.rate = frame_rate(fps)
        self.frames_dir = Path(frames_dir) if frames_dir else None
        self.count, self.first_frame = 0, first_frame
        self.copying = template is not None
        self.closed = False
        self._atomic = atomic_path(self.path, suffix=".part")
        self.tmp = self._atomic.__enter__()  # renamed by close(), removed by abort()
        try:
            fmt = container_format(self.path)
            options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
            self.container = av.open(str(self.tmp), "w", format=fmt, options=options)
            if self.copying:
                with av.open(str(template)) as source:
                    self.video = self.container.add_stream_from_template(
                        source.streams.video[0])
            else:
                self.video = self.container.add_stream("libx264", rate=self.rate)
                self.video.width, self.video.height = self.width, self.height
                self.video.pix_fmt = "yuv420p"
                self.video.options = {"crf": str(crf), "preset": preset}
                self.video.thread_type = "AUTO"
            self.audio = self.feed = None
            if audio is not None:
                self._add_audio(audio, audio_start, audio_duration)
        except BaseException as exc:
            self.tmp.unlink(missing_ok=True)
            if isinstance(exc, Exception):
                raise EncodingError(f"cannot start writing {self.path}: {exc}") from None
            raise
        self._png = None

    def _add_audio(self, info: AudioInfo, start: float, duration: float | None):
        rate = aac_rate(info.sample_rate)
        self.audio = self.container.add_stream("aac", rate=rate)
        self.audio.layout = "mono" if info.channels == 1 else "stereo"
        self.audio.bit_rate = 96000 * min(info.channels, 2)
        # FFmpeg downmixes surround to the stereo AAC track with its standard matrices.
        self.in_layout = LAYOUTS.get(info.channels, "mono")
        self.feed = _AudioFeed(info, start=start, duration=duration if duration else 1e12)
        self.audio_pts = 0

    def _encode_audio_until(self, seconds: float | None) -> None:
        """Encode the song up to ``seconds`` of video time (all of it when None)."""
        import av

        if self.feed is None:
            return
        rate = self.feed.info.sample_rate
        while seconds is None or self.feed.sent < seconds * rate:
            block = self.feed.next_block()
            if block is None:
                for packet in self.audio.encode(None):
                    self.container.mux(packet)
                self.feed = None
                return
            if self.in_layout == "mono" and len(block) > 1:  # exotic channel counts
                block = block.mean(axis=0, keepdims=True)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, np.float32),
                                               format="fltp", layout=self.in_layout)
            frame.sample_rate = rate
            frame.pts, frame.time_base = self.audio_pts, Fraction(1, rate)
            self.audio_pts += block.shape[1]
            for packet in self.audio.encode(frame):
                self.container.mux(packet)

    def _write_png(self, frame, index: int) -> None:
        import av

        if self._png is None:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
            self._png = av.CodecContext.create("png", "w")
            self._png.width, self._png.height = self.width, self.height
            self._png.pix_fmt = "rgb24"
        data = b"".join(bytes(p) for p in self._png.encode(frame))
        (self.frames_dir / f"frame_{index:06d}.png").write_bytes(data)

    def write(self, frames: np.ndarray) -> None:
        """Encode a batch of frames.

        Parameters
        ----------
        frames : np.ndarray [shape=(B, H, W, 3)], uint8 RGB, of the output's shape or
            another (resized to it with a Lanczos filter in the same pass as the colour
            conversion).
        """
        import av

        w, h = self.width, self.height
        try:
            for rgb in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                if self.frames_dir is not None:
                    self._write_png(frame if rgb.shape[:2] == (h, w) else frame.reformat(
                        w, h, "rgb24", interpolation="LANCZOS"), self.first_frame + self.count)
                frame = frame.reformat(w, h, "yuv420p", interpolation="LANCZOS")
                # Set the time base too: a frame copies it from its source, which the PNG
                # encoder may have stamped with its own.
                frame.pts, frame.time_base = self.count, 1 / self.rate
                self.count += 1
                for packet in self.video.encode(frame):
                    self.container.mux(packet)
            self._encode_audio_until(float(self.count / self.rate))
        except (OSError, av.FFmpegError) as exc:
            raise self._oserror(exc) from None

    def append(self, segment) -> int:
        """Copy the encoded video of ``segment`` (a file a VideoWriter made with the same
        size, rate and encoder settings) after what is written, and the song's audio up to
        its end. Returns the number of frames added.

        Each segment starts with a keyframe, so the joined stream decodes to exactly the
        segments' frames; timestamps are shifted by the frames before it.
        """
        import av

        try:
            with av.open(str(segment)) as source:
                stream = source.streams.video[0]
                offset = Fraction(self.count) / self.rate / stream.time_base
                shift = int(round(offset))
                added = 0
                for packet in source.demux(stream):
                    if packet.size == 0:  # the demuxer's end marker
                        continue
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts = None if packet.dts is None else packet.dts + shift
                    packet.stream = self.video
                    self.container.mux(packet)
                    added += 1
            self.count += added
            self._encode_audio_until(float(self.count / self.rate))
        except (OSError, av.FFmpegError) as exc:
            raise self._oserror(exc) from None
        return added

    def _oserror(self, exc: Exception) -> EncodingError:
        if getattr(exc, "errno", None) == errno.ENOSPC:
            return EncodingError(f"disk full while writing {self.path}; free some space and "
                                 "run again")
        return EncodingError(f"could not write {self.path}: {exc}")

    def close(self) -> Path:
        """Flush both streams, finish the file and move it to its final name.

        Leaving the ``with`` block without an exception closes too; closing twice is harmless.
        """
        import av

        if self.closed:
            return self.path
        try:
            if not self.copying:
                for packet in self.video.encode(None):
                    self.container.mux(packet)
            self._encode_audio_until(None)
            self.container.close()
            self._atomic.__exit__(None, None, None)
            self.closed = True
        except (OSError, av.FFmpegError) as exc:
            self.abort()
            raise self._oserror(exc) from None
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file."""
        try:
            self.container.close()
        except Exception:  # closing a broken container may fail again; the file goes anyway
            pass
        if not self.closed and self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            try:  # the write-then-rename's own cleanup: the unfinished file goes
                atomic.__exit__(EncodingError, EncodingError("aborted"), None)
            except Exception:  # already finished (its rename failed): nothing is left
                pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


AHEAD = 2  # batches waiting for a SegmentEncoder at most


class SegmentEncoder:
    """A thread that encodes the batches it is given into a series of files (a render's
    segments), while the caller draws the next batch; each file is finished, and renamed
    into place, with its last frame.

    Parameters
    ----------
    open_segment : callable ``k -> VideoWriter``, the writer of segment ``k``
    lengths : sequence of int, the frames of each segment
    on_finished : callable ``k -> None``, told once segment ``k`` is in place
    """

    def __init__(self, open_segment, *, lengths, on_finished=lambda k: None):
        self.open_segment, self.lengths, self.on_finished = open_segment, lengths, on_finished
        self.queue: queue.Queue = queue.Queue(maxsize=AHEAD)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.busy, self.began = 0.0, time.perf_counter()  # seconds encoding, since
        self.thread = threading.Thread(target=self._run, daemon=True, name="ganclip-encoder")
        self.thread.start()

    def put(self, k: int, frames: np.ndarray) -> None:
        """Hand over a batch of segment ``k``; waits while :data:`AHEAD` batches wait."""
        while True:
            self._raise()
            try:
                self.queue.put((k, frames), timeout=0.1)
                return
            except queue.Full:
                pass

    def load(self) -> float:
        """The share of the time since it started that the encoder has been working."""
        return self.busy / max(time.perf_counter() - self.began, 1e-9)

    def finish(self) -> None:
        """Encode what is left, close the last segment, and stop."""
        self.put(None, None)
        while self.thread.is_alive():
            self.thread.join(0.1)
        self._raise()

    def abort(self) -> None:
        """Stop: what was handed over is still encoded (a batch or two), so a segment it
        completes is kept; the unfinished segment is dropped."""
        self.stop.set()
        while self.thread.is_alive():
            self.thread.join(0.1)

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        writer = None
        try:
            while True:
                try:
                    k, frames = self.queue.get(timeout=0.1)
                except queue.Empty:
                    if self.stop.is_set():
                        return
                    continue
                if k is None:
                    return
                if writer is None:
                    writer = self.open_segment(k)
                began = time.perf_counter()
                writer.write(frames)
                self.busy += time.perf_counter() - began
                if writer.count == self.lengths[k]:  # the segment is whole: kept from here on
                    writer.close()
                    self.on_finished(k)
                    writer = None
        except BaseException as exc:  # handed to the drawing thread
            self.error = exc
        finally:
            if writer is not None:  # stopped, or failed, inside a segment
                writer.abort()
