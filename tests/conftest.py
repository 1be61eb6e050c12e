"""Synthetic audio with known answers, the real recordings when ../shared is here, and the
isolation every test runs in: no user's weights cache, environment or network."""

import ipaddress
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "audio"


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


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path_factory):
    """Every test: an empty weights cache of its own, no weights mirror or XDG cache from the
    environment, huggingface_hub offline, and no connection beyond this machine's loopback
    (a name lookup of another host fails as an unknown name, a connection with OSError).
    Subprocesses inherit the environment part; none of them is given a network anyway."""
    monkeypatch.setenv("GANCLIP_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("GANCLIP_WEIGHTS_URL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # read when it was imported; an import from now on reads the variable
        monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)

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

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


def tone(freq: float, seconds: float, sr: int = 22050, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


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
