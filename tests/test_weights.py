"""Weights: downloads from a real HTTP server on 127.0.0.1 (ranges, cuts, 404s), cache, local paths.

Nothing here reaches the internet: like every test (conftest's ``isolated``), these run with
connections and name lookups beyond loopback refused, and huggingface_hub in offline mode.
"""

import hashlib
import http.server
import json
import os
import socket
import threading
from dataclasses import replace

import pytest

from ganclip import weights
from ganclip.errors import BadInputError, WeightsError
from ganclip.weights import FileSpec, HubSource, UrlSource

NAME = "biggan-deep-128"
CONFIG = json.dumps({"output_dim": 128, "z_dim": 128, "num_classes": 1000}).encode()
CKPT = bytes(range(256)) * 24  # 6 KiB fake checkpoint
CKPT_SHA = hashlib.sha256(CKPT).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` unless ``server.ranges`` is False;
    cuts the next answer for a path short after ``server.cut[path]`` bytes (once)."""

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        srv = self.server
        srv.seen.append((self.path, self.headers.get("Range"), self.headers.get("User-Agent")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, status = 0, 200
        want = self.headers.get("Range")
        if want and srv.ranges == "from-zero":  # a broken server: 206, but the whole file
            status = 206
        elif want and srv.ranges:
            start = int(want.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')  # what the hub sends
        self.send_header("X-Repo-Commit", "0" * 40)
        self.end_headers()
        if head:
            return
        cut = srv.cut.pop(self.path, None)
        self.wfile.write(body[start:] if cut is None else body[start:start + cut])
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    """The weights cache in the test's own folder, where the tests look for what landed.
    (conftest's ``isolated`` already keeps the network, the hub and the environment out.)"""
    monkeypatch.setenv("GANCLIP_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def server():
    """A threaded HTTP server on a free 127.0.0.1 port, serving the fake model under /m/."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.files = {"/m/config.json": CONFIG, "/m/pytorch_model.bin": CKPT}
    srv.seen, srv.cut, srv.ranges = [], {}, True
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.fixture
def known(monkeypatch):
    """Give the registry entry the fake checkpoint's size and sha256 (the real ones are unknown)."""

    def set_files(size=len(CKPT), sha256=CKPT_SHA):
        spec = weights.MODELS[NAME]
        files = (FileSpec("config.json"), FileSpec("pytorch_model.bin", size, sha256))
        monkeypatch.setitem(weights.MODELS, NAME, replace(spec, files=files))

    return set_files


def good(server):
    return UrlSource(server.base + "/m/{file}")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_lands_in_cache(server, tmp_path, capsys):
    folder = weights.download(NAME, sources=[good(server)])
    assert folder == tmp_path / "cache" / NAME
    assert (folder / "config.json").read_bytes() == CONFIG
    assert (folder / "pytorch_model.bin").read_bytes() == CKPT
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "pytorch_model.bin"]
    assert weights.cached_path(NAME) == folder and weights.is_cached(NAME)
    assert "%|" not in capsys.readouterr().err  # stderr is not a terminal: no tqdm bar
    assert all(ua.startswith("ganclip/") for _, _, ua in server.seen)
    # cached: a second call asks nothing of any source
    n = len(server.seen)
    assert weights.download(NAME, sources=[good(server)], quiet=True) == folder
    assert len(server.seen) == n


def test_interrupted_download_resumes_with_range(server, tmp_path, known):
    known()
    half = len(CKPT) // 2
    server.cut["/m/pytorch_model.bin"] = half
    with pytest.raises(WeightsError, match="interrupted after 3072 bytes"):
        weights.download(NAME, sources=[good(server)], quiet=True)
    part = tmp_path / "cache" / NAME / "pytorch_model.bin.part"
    assert part.read_bytes() == CKPT[:half]
    assert not weights.is_cached(NAME)

    folder = weights.download(NAME, sources=[good(server)], quiet=True)
    assert ("/m/pytorch_model.bin", f"bytes={half}-") == server.seen[-1][:2]
    data = (folder / "pytorch_model.bin").read_bytes()
    assert hashlib.sha256(data).hexdigest() == CKPT_SHA
    assert not part.exists()


def test_server_without_ranges_restarts_cleanly(server, tmp_path, known):
    known()
    folder = tmp_path / "cache" / NAME
    folder.mkdir(parents=True)
    (folder / "pytorch_model.bin.part").write_bytes(b"\xff" * 1000)  # not a prefix of CKPT
    server.ranges = False
    weights.download(NAME, sources=[good(server)], quiet=True)
    assert ("/m/pytorch_model.bin", "bytes=1000-") in [s[:2] for s in server.seen]
    assert (folder / "pytorch_model.bin").read_bytes() == CKPT


def test_range_answer_from_the_wrong_byte_restarts(server, tmp_path):
    folder = tmp_path / "cache" / NAME
    folder.mkdir(parents=True)
    (folder / "pytorch_model.bin.part").write_bytes(CKPT[:100])
    server.ranges = "from-zero"
    weights.download(NAME, sources=[good(server)], quiet=True)
    ranges = [r for p, r, _ in server.seen if p == "/m/pytorch_model.bin"]
    assert ranges == ["bytes=100-", None]
    assert (folder / "pytorch_model.bin").read_bytes() == CKPT


def test_part_already_whole_gets_416_then_restarts(server, tmp_path):
    folder = tmp_path / "cache" / NAME
    folder.mkdir(parents=True)
    (folder / "pytorch_model.bin.part").write_bytes(CKPT)
    weights.download(NAME, sources=[good(server)], quiet=True)
    ranges = [r for p, r, _ in server.seen if p == "/m/pytorch_model.bin"]
    assert ranges == [f"bytes={len(CKPT)}-", None]
    assert (folder / "pytorch_model.bin").read_bytes() == CKPT


def test_checksum_mismatch_is_refused(server, tmp_path, known):
    known(sha256="0" * 64)
    with pytest.raises(WeightsError, match="checksum mismatch") as err:
        weights.download(NAME, sources=[good(server)], quiet=True)
    assert "file removed" in str(err.value)
    folder = tmp_path / "cache" / NAME
    assert not (folder / "pytorch_model.bin").exists()
    assert not (folder / "pytorch_model.bin.part").exists()
    assert not weights.is_cached(NAME)


def test_size_mismatch_is_refused_before_downloading(server, tmp_path, known):
    known(size=len(CKPT) + 1, sha256=None)
    with pytest.raises(WeightsError, match=f"size mismatch .*{len(CKPT)} bytes"):
        weights.download(NAME, sources=[good(server)], quiet=True)
    assert not (tmp_path / "cache" / NAME / "pytorch_model.bin.part").exists()


def test_404_falls_back_to_next_source(server):
    sources = [UrlSource(server.base + "/gone/{file}"), good(server)]
    folder = weights.download(NAME, sources=sources, quiet=True)
    assert (folder / "pytorch_model.bin").read_bytes() == CKPT
    assert server.seen[0][0] == "/gone/config.json"
    assert [p for p, _, _ in server.seen[1:]] == ["/m/config.json", "/m/pytorch_model.bin"]


def test_offline_error_lists_every_attempt_and_the_ways_out(tmp_path):
    port = closed_port()
    sources = [UrlSource(f"http://127.0.0.1:{port}/{{file}}"),
               HubSource("osanseviero/BigGAN-deep-128")]
    with pytest.raises(WeightsError) as err:
        weights.download(NAME, sources=sources, quiet=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"127.0.0.1:{port}: config.json: Connection refused" in msg
    assert ("hf.co/osanseviero/BigGAN-deep-128: config.json: offline mode (HF_HUB_OFFLINE is set)"
            in msg)
    assert "--weights PATH" in msg and "--model cppn" in msg
    assert not weights.is_cached(NAME)


def test_default_sources_without_network():
    """The built-in registry, with DNS refused and the hub offline: the original S3 URL,
    then the hub mirror, each reported."""
    with pytest.raises(WeightsError) as err:
        weights.download(NAME, quiet=True)
    msg = str(err.value)
    assert "\n" not in msg
    s3 = msg.index("s3.amazonaws.com: config.json:")
    assert msg.index("hf.co/osanseviero/BigGAN-deep-128: config.json: offline mode") > s3
    assert "--weights PATH" in msg and "--model cppn" in msg


def test_offline_hub_falls_through_to_next_source(server, tmp_path):
    sources = [HubSource("osanseviero/BigGAN-deep-128"), good(server)]
    folder = weights.download(NAME, sources=sources, quiet=True)
    assert (folder / "config.json").read_bytes() == CONFIG
    assert not (folder / ".hub").exists()


def test_hub_source_fetches_into_the_cache_layout(server, monkeypatch, known):
    """huggingface_hub online against a fake hub on 127.0.0.1: a missing repo falls through,
    a real one lands in <cache>/<name>/ with no staging left."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    known()
    server.files = {f"/hub/me/biggan/resolve/main/{k}": v for k, v in
                    [("config.json", CONFIG), ("pytorch_model.bin", CKPT)]}
    endpoint = server.base + "/hub"
    sources = [HubSource("me/missing", endpoint=endpoint),
               HubSource("me/biggan", endpoint=endpoint)]
    folder = weights.download(NAME, sources=sources, quiet=True)
    assert (folder / "pytorch_model.bin").read_bytes() == CKPT
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "pytorch_model.bin"]
    assert server.seen[0][0] == "/hub/me/missing/resolve/main/config.json"
    assert "ganclip/" in server.seen[-1][2]


def test_hub_checksum_mismatch_is_refused(server, monkeypatch, known):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    known(sha256="f" * 64)
    server.files = {f"/hub/me/biggan/resolve/main/{k}": v for k, v in
                    [("config.json", CONFIG), ("pytorch_model.bin", CKPT)]}
    source = HubSource("me/biggan", endpoint=server.base + "/hub")
    with pytest.raises(WeightsError, match="hf.co/me/biggan: pytorch_model.bin: checksum mismatch"):
        weights.download(NAME, sources=[source], quiet=True)
    assert not (weights.cache_dir() / NAME / "pytorch_model.bin").exists()
    assert not list((weights.cache_dir() / NAME).rglob("pytorch_model.bin"))


def test_mirror_from_environment_is_tried_first(server, monkeypatch):
    server.files = {f"/mirror/{NAME}/{k}": v for k, v in
                    [("config.json", CONFIG), ("pytorch_model.bin", CKPT)]}
    monkeypatch.setenv("GANCLIP_WEIGHTS_URL", server.base + "/mirror/")
    first, *rest = weights.default_sources(NAME)
    assert first == UrlSource(f"{server.base}/mirror/{NAME}/{{file}}")
    assert tuple(rest) == weights.MODELS[NAME].sources
    ckpt = weights.resolve_weights(NAME, download=True, quiet=True)
    assert ckpt.read_bytes() == CKPT and ckpt.with_name("config.json").read_bytes() == CONFIG


def test_registry_sources():
    for side in (128, 256, 512):
        spec = weights.model_spec(f"biggan-deep-{side}")
        s3, hub = spec.sources
        url = s3.url.format(file="pytorch_model.bin")
        assert url == ("https://s3.amazonaws.com/models.huggingface.co/biggan/"
                       f"biggan-deep-{side}-pytorch_model.bin")
        assert hub == HubSource(f"osanseviero/BigGAN-deep-{side}")
        assert [f.name for f in spec.files] == ["config.json", "pytorch_model.bin"]
    with pytest.raises(BadInputError, match="unknown model 'bigan-256'.*biggan-deep-256"):
        weights.model_spec("bigan-256")


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANCLIP_CACHE", str(tmp_path / "g"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert weights.cache_dir() == tmp_path / "g"
    monkeypatch.delenv("GANCLIP_CACHE")
    assert weights.cache_dir() == tmp_path / "x" / "ganclip"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.cache_dir() == tmp_path / "home" / ".cache" / "ganclip"


def test_list_models(tmp_path):
    folder = tmp_path / "cache" / "biggan-deep-256"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(CONFIG)
    (folder / "pytorch_model.bin").write_bytes(CKPT)
    (tmp_path / "cache" / NAME).mkdir()
    (tmp_path / "cache" / NAME / "config.json").write_bytes(CONFIG)  # incomplete
    info = {m.name: m for m in weights.list_models()}
    assert list(info) == ["biggan-deep-128", "biggan-deep-256", "biggan-deep-512"]
    assert info["biggan-deep-256"].cached and info["biggan-deep-256"].path == folder
    assert not info[NAME].cached and not info["biggan-deep-512"].cached
    assert info[NAME].size_mb == pytest.approx(201)


def write_model(folder, *checkpoints):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(CONFIG)
    for name in checkpoints:
        (folder / name).write_bytes(CKPT)
    return folder


def test_resolve_local_folder_and_file(tmp_path):
    folder = write_model(tmp_path / "w", "pytorch_model.bin")
    assert weights.resolve_weights(NAME, folder) == folder / "pytorch_model.bin"
    from_config = weights.resolve_weights(NAME, str(folder / "config.json"))
    assert from_config == folder / "pytorch_model.bin"
    write_model(folder, "model.safetensors")
    assert weights.resolve_weights(NAME, folder) == folder / "model.safetensors"
    other = write_model(tmp_path / "o")
    (other / "my-biggan.pt").write_bytes(CKPT)
    assert weights.resolve_weights(NAME, other / "my-biggan.pt") == other / "my-biggan.pt"


@pytest.mark.parametrize("case, expect", [
    ("missing", "no such file or folder"),
    ("no-config", "has no config.json"),
    ("no-checkpoint", "has no model.safetensors or pytorch_model.bin"),
    ("file-alone", "no config.json beside the weights file"),
])
def test_resolve_bad_paths(tmp_path, case, expect):
    path = tmp_path / case
    if case == "no-config":
        path.mkdir()
        (path / "pytorch_model.bin").write_bytes(CKPT)
    elif case == "no-checkpoint":
        write_model(path)
    elif case == "file-alone":
        path.write_bytes(CKPT)
    with pytest.raises(WeightsError, match=expect) as err:
        weights.resolve_weights(NAME, path)
    assert f"--weights {path}" in str(err.value)


def test_resolve_from_cache_or_say_how_to_download(tmp_path, server):
    with pytest.raises(WeightsError, match=f"run `ganclip models download {NAME}`"):
        weights.resolve_weights(NAME)
    assert server.seen == []  # no silent download
    write_model(tmp_path / "cache" / NAME, "pytorch_model.bin")
    assert weights.resolve_weights(NAME) == tmp_path / "cache" / NAME / "pytorch_model.bin"


def test_empty_cached_file_is_not_cached(tmp_path):
    folder = write_model(tmp_path / "cache" / NAME)
    (folder / "pytorch_model.bin").write_bytes(b"")
    assert weights.cached_path(NAME) is None
    assert not os.path.exists(folder / "pytorch_model.bin.part")


def test_unusable_cache_folder_is_one_line(tmp_path, monkeypatch, server):
    (tmp_path / "a-file").write_bytes(b"")
    monkeypatch.setenv("GANCLIP_CACHE", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(WeightsError, match="cannot create the weights cache .*GANCLIP_CACHE"):
        weights.download(NAME, sources=[good(server)], quiet=True)
    assert server.seen == []


def test_hub_without_network_fails_at_once_not_after_retries(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    called = []
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: called.append(a))
    with pytest.raises(WeightsError) as err:
        weights.download(NAME, sources=[HubSource("osanseviero/BigGAN-deep-128")], quiet=True)
    assert "cannot resolve huggingface.co" in str(err.value) and "offline?" in str(err.value)
    assert called == []  # the lookup failed first: no retry loop in huggingface_hub
    assert not (tmp_path / "cache" / NAME).exists()  # nothing half-made left in the cache
