"""The tests' isolation (conftest's ``isolated``): a user's weights cache, environment and
network change no result."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def fake_biggan_home(home: Path) -> Path:
    """A home whose ~/.cache/ganclip holds what looks like cached BigGAN-deep-256 weights:
    enough for ``auto`` to pick it, useless for drawing."""
    folder = home / ".cache" / "ganclip" / "biggan-deep-256"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"output_dim": 256, "z_dim": 128,
                                                    "num_classes": 1000}))
    (folder / "pytorch_model.bin").write_bytes(b"not a checkpoint" * 64)
    return home


def test_a_cached_biggan_in_the_users_home_changes_no_test(tmp_path):
    """Tests that expect ``auto`` to be the built-in generator, run as a user with BigGAN
    cached would run them: with that home and none of the cache variables set."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GANCLIP_CACHE", "XDG_CACHE_HOME", "GANCLIP_WEIGHTS_URL",
                        "HF_HUB_OFFLINE", "PYTEST_ADDOPTS")}
    env["HOME"] = str(fake_biggan_home(tmp_path / "home"))
    subset = ["tests/test_cppn.py::test_registry_and_auto",
              "tests/test_render.py::test_render_makes_a_synced_video_with_sound"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--basetemp", str(tmp_path / "inner"), *subset],
                         cwd=ROOT, env=env, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=300)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr


def test_auto_is_the_built_in_generator_whatever_home_holds(tmp_path, monkeypatch):
    from ganclip import weights
    from ganclip.generators import resolve_model

    monkeypatch.setenv("HOME", str(fake_biggan_home(tmp_path / "home")))
    assert not weights.cache_dir().is_relative_to(tmp_path / "home")
    assert resolve_model("auto")[0] == "cppn"


def test_the_network_beyond_loopback_is_refused_and_loopback_works():
    with pytest.raises(socket.gaierror, match="the tests block example.org"):
        socket.getaddrinfo("example.org", 443)
    with pytest.raises(OSError, match="the tests block"):
        socket.create_connection(("93.184.215.14", 80), timeout=1)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "XDG_CACHE_HOME" not in os.environ and "GANCLIP_WEIGHTS_URL" not in os.environ
