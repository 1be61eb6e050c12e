"""Synthetic audio with known answers, the real recordings when ../shared is here, and the
isolation every test runs in: no user's weights cache, environment or network."""

import ipaddress
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from media import SHARED_AUDIO
from synth import tone

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def _loopback(host) -> bool:
    if host is None:  # getaddrinfo(None, port): the local wildcard or loopback
        return True
    if isinstance(host, bytes):
        host = host.decode()
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name
        return False


def _block_the_network(mp: pytest.MonkeyPatch) -> None:
    """Refuse name lookups of other hosts (an unknown name) and connections to them
    (OSError); loopback keeps working, for the tests' own servers and the browser."""
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not _loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"the tests block {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def refuse(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise OSError(f"the tests block connecting to {address[0]}")

    def connect(self, address):
        refuse(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        refuse(self, address)
        return real_connect_ex(self, address)

    mp.setattr(socket, "getaddrinfo", getaddrinfo)
    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket.socket, "connect_ex", connect_ex)


def _isolate(mp: pytest.MonkeyPatch, cache: Path) -> None:
    mp.setenv("GANCLIP_CACHE", str(cache))
    mp.delenv("XDG_CACHE_HOME", raising=False)
    mp.delenv("GANCLIP_WEIGHTS_URL", raising=False)
    mp.setenv("HF_HUB_OFFLINE", "1")
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # read when it was imported; an import from now on reads the variable
        mp.setattr(hub, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session", autouse=True)
def isolated_session(tmp_path_factory):
    """The isolation below for the whole session, so session and module fixtures (the
    shared reference render) have it too; the network is blocked once, here."""
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, tmp_path_factory.mktemp("session-cache"))
        _block_the_network(mp)
        yield


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path_factory):
    """Every test: an empty weights cache of its own, no weights mirror or XDG cache from the
    environment, huggingface_hub offline, and no connection beyond this machine's loopback
    (``isolated_session``). Subprocesses inherit the environment part; none of them is given
    a network anyway."""
    _isolate(monkeypatch, tmp_path_factory.mktemp("cache"))


def two_part_song(sr: int = 22050, seconds: float = 3.0) -> np.ndarray:
    """A low hum for the first half, a bright chord for the second: two clear image types."""
    half = seconds / 2
    low = tone(110, half, sr) + tone(220, half, sr, 0.2)
    high = tone(1760, half, sr) + tone(2637, half, sr, 0.2) + tone(3520, half, sr, 0.1)
    return np.concatenate([low, high])


@pytest.fixture
def write_wav(tmp_path):
    """Factory: write_wav(signal, sr=22050, name='song.wav') -> path."""

    def write(signal, sr=22050, name="song.wav"):
        path = tmp_path / name
        sf.write(path, np.asarray(signal, np.float32), sr)
        return path

    return write


@pytest.fixture
def song(write_wav):
    """3 s, two timbrally distinct halves, 22.05 kHz mono wav."""
    return write_wav(two_part_song())


@pytest.fixture
def shared_audio():
    if not SHARED_AUDIO.is_dir():
        pytest.skip("../shared/audio is not here")
    return SHARED_AUDIO


LONG_FPS, LONG_SIZE = 10, 32  # the long song's renders: 160 frames of 32², in 4 segments


@pytest.fixture(scope="session")
def long_song(tmp_path_factory):
    """16 s (the two-part song four times over): 160 frames at 10 fps, four resumable
    segments of 4 s; a name with a space and an é. Shared: write nothing beside it."""
    path = tmp_path_factory.mktemp("long") / "long song é.wav"
    sf.write(path, np.tile(two_part_song(seconds=4.0), 4), 22050)
    return path


@dataclass(frozen=True)
class Reference:
    """An uninterrupted render of the long song, what resumed renders must equal."""
    path: Path  # the video
    plan: Path  # its plan (--plan-out)
    frames: np.ndarray  # decoded, uint8 [shape=(160, 32, 32, 3)]


@pytest.fixture(scope="session")
def reference(long_song, tmp_path_factory):
    """The long song rendered once for the session, at LONG_FPS and LONG_SIZE with every
    other option at its default (batch 8, cpu, model auto: the built-in cppn here)."""
    import ganclip
    from media import decode_frames

    folder = tmp_path_factory.mktemp("reference")
    result = ganclip.render(long_song, output=folder / "reference.mp4", fps=LONG_FPS,
                            size=LONG_SIZE, plan_out=folder / "plan.npz", quiet=True)
    frames = np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(result.path)])
    frames.flags.writeable = False
    return Reference(path=result.path, plan=folder / "plan.npz", frames=frames)


SLOWLY = """\
import sys, time
from ganclip import video
write = video.VideoWriter.write
def slow(self, frames):
    time.sleep({delay})
    return write(self, frames)
video.VideoWriter.write = slow
from ganclip.cli import main
sys.exit(main())
"""


def ganclip_cli(*args, delay: float | None = None) -> list[str]:
    """The command line ``python -m ganclip ARGS``. With ``delay``, in a Python that writes
    every batch of frames ``delay`` seconds late, as a slow generator would: a 16 s song at
    32² draws a segment in 0.05 s, too fast to stop a render in the middle of one; 0.08 s
    in batches of 8 makes a segment 0.4 s."""
    args = [str(a) for a in args]
    if delay is None:
        return [sys.executable, "-m", "ganclip", *args]
    return [sys.executable, "-c", SLOWLY.format(delay=delay), *args]


def encode_audio(path, signal, sr: int = 22050, codec: str = "libmp3lame"):
    """Write a mono signal with an FFmpeg encoder through PyAV (mp3, aac, opus …)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sr)
        stream.layout = "mono"
        for i in range(0, len(signal), 4096):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(signal[None, i:i + 4096], np.float32), format="fltp",
                layout="mono")
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Path(path)


def probe_video(path):
    """(video frames, video seconds, audio seconds, codec names) of a written file."""
    import av

    with av.open(str(path)) as container:
        frames = [f.time for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        # the audio ends where its last packet ends: MP4 trims AAC's padding there,
        # as players do, while a decoder hands out the whole last AAC frame
        stream = container.streams.audio[0]
        audio = max(float((p.pts + p.duration) * p.time_base)
                    for p in container.demux(stream) if p.size)
        codecs = tuple(s.codec_context.name for s in container.streams)
        rate = container.streams.video[0].average_rate
    return len(frames), len(frames) / float(rate), audio, codecs


def video_shape(path) -> tuple[int, int]:
    """(width, height) of the first decoded frame of a written file."""
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height
