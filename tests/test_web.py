"""The web page, driven in a real headless Chromium (Debian's) with Playwright's Python client."""

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import two_part_song

CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[1] / "docs"

MISSING = [why for why, gone in (
    ("the web extra is not installed (pip install '.[web]')",
     importlib.util.find_spec("gradio") is None),
    ("playwright is not installed (pip install '.[dev]')",
     importlib.util.find_spec("playwright") is None),
    (f"{CHROMIUM} is absent (apt-get install chromium)", not CHROMIUM.exists())) if gone]
needs_browser = pytest.mark.skipif(bool(MISSING), reason="; ".join(MISSING))


def test_cancel_stops_a_render_between_batches_and_keeps_it(write_wav, tmp_path):
    import ganclip
    from ganclip.web import Cancelled, Jobs

    song = write_wav(np.tile(two_part_song(), 4))  # 12 s, 3 segments at 10 fps
    jobs, seen = Jobs(max_minutes=30), []

    def report(progress, desc, unit):
        seen.append(progress)
        if progress[0] >= 50:
            jobs.cancel.set()  # the Cancel button, pressed mid-render

    with pytest.raises(Cancelled) as stop:
        ganclip.render(song, output=tmp_path / "v.mp4", fps=10, size=16, batch=10,
                       progress=jobs.progress(report), quiet=True)
    assert seen[:2] == [(10, 120), (20, 120)] and seen[-1] == (50, 120)
    assert stop.value.kept.startswith("4 of 12 s of video")
    assert (tmp_path / "v.mp4.parts" / "segment_00000.mp4").exists()


def test_over_long_and_missing_songs_are_refused_in_words(write_wav):
    from ganclip.errors import BadInputError
    from ganclip.web import Jobs

    song = write_wav(two_part_song(seconds=3.0))
    with pytest.raises(BadInputError, match=r"0.1 minutes long; this page takes songs up to "
                                            r"0.04 minutes"):
        Jobs(max_minutes=0.04).song(str(song), None)
    with pytest.raises(BadInputError, match="no song: upload one"):
        Jobs(max_minutes=30).song(None, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    port = free_port()
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "ganclip", "web", "--port", str(port)],
                            cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert proc.poll() is None, (folder / "server.log").read_text()
            time.sleep(0.5)
    else:
        pytest.fail("the page did not come up in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox"] if os.geteuid() == 0 else [])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(server)
        page.locator("#render").wait_for()
        yield page
        browser.close()


def uploaded(page, path: Path) -> None:
    """Upload ``path`` into the song field and wait until the page holds it: its file link,
    which Gradio makes from the component's value once the server has the file (the name's
    text is no sign: Gradio may draw the stem and the extension as separate elements)."""
    page.locator("#song input[type=file]").set_input_files(str(path))
    name = path.name.replace("\\", "\\\\").replace('"', '\\"')
    # generous: a loaded 2-core machine once took over 30 s to show the upload
    page.locator(f'#song a[download="{name}"][href*="/file="]').wait_for(timeout=120000)


@needs_browser
def test_a_song_uploaded_in_the_page_renders_and_plays(page, tmp_path):
    from playwright.sync_api import expect

    song = tmp_path / "three seconds.wav"
    sf.write(song, two_part_song(seconds=3.0), 22050)
    uploaded(page, song)
    page.locator("#size input").fill("48x32")
    page.locator("#size input").press("Enter")
    page.locator("#fps input").fill("10")
    page.click("#render")
    page.wait_for_function("""() => {
        const v = document.querySelector('#video video');
        return v && v.readyState >= 1 && isFinite(v.duration);
    }""", timeout=180000)
    duration = page.evaluate("document.querySelector('#video video').duration")
    assert abs(duration - 3.0) < 0.1
    shape = page.evaluate("[document.querySelector('#video video').videoWidth, "
                          "document.querySelector('#video video').videoHeight]")
    assert shape == [48, 32]  # the player shows the frame shape typed
    assert page.locator('#video video[src*="three%20seconds.mp4"]').count() == 1
    expect(page.locator("#status")).to_contain_text(
        "wrote three seconds.mp4: 30 frames at 10 fps", timeout=30000)
    page.evaluate("document.querySelector('#video video').play()")
    page.wait_for_function("document.querySelector('#video video').currentTime > 0.5",
                           timeout=30000)
    assert page.locator('#download a[download="three seconds.mp4"]').count() == 1
    page.click("#analyse")  # and the analysis figure, for the README's picture
    page.locator("#analysis img").wait_for(timeout=120000)
    expect(page.locator("#status")).to_contain_text("tempo confidence", timeout=30000)
    page.screenshot(path=str(DOCS / "web.png"), full_page=True)


@needs_browser
def test_a_file_that_is_not_audio_gets_a_readable_error(page, tmp_path):
    from playwright.sync_api import expect

    notes = tmp_path / "notes.txt"
    notes.write_text("not a song\n" * 100)
    uploaded(page, notes)
    page.click("#render")
    status = page.locator("#status")
    expect(status).to_contain_text("error:", timeout=60000)
    text = status.inner_text()
    assert "notes.txt" in text and "Traceback" not in text
    assert np.isnan(page.evaluate(
        "(() => { const v = document.querySelector('#video video'); "
        "return v ? v.duration : NaN; })()"))


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="no gradio")
@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False),
                                          ("::1", False), ("0.0.0.0", True),
                                          ("192.168.1.5", True)])
def test_listening_beyond_loopback_is_warned_about(host, warned, monkeypatch):
    import ganclip.web as web

    launched = {}

    class Page:
        jobs = web.Jobs(max_minutes=30)

        def queue(self, **kwargs):
            launched["queue"] = kwargs

        def launch(self, **kwargs):
            launched.update(kwargs)

    said = []
    monkeypatch.setattr(web, "build", lambda **kwargs: Page())
    monkeypatch.setattr(web.log, "warning", said.append)
    web.serve(host=host, port=7999)
    assert launched["server_name"] == host and launched["queue"] == {
        "default_concurrency_limit": 1}
    assert any("anyone who can reach this machine" in line for line in said) == warned


def test_an_empty_number_field_is_refused_in_words():
    from ganclip.errors import BadInputError
    from ganclip.web import CHOICES, _options, preview_size

    def choices(**given):
        values = dict(model="auto", mode="reactive", fps=30, size="256x256", fit="extend",
                      types=[], transitions=-1, pulse=0.7, motion=1, smoothing=0.25,
                      sensitivity=1, truncation_lo=0.6, truncation_hi=1.3,
                      classes_from="sections", zoom=1, rotate=1, shake=1, flash=1,
                      looks="", structure=1, texture=1, noise=1, seed=0,
                      start=0, duration=0, quality=20, preset="veryfast") | given
        return [values[name] for name in CHOICES]

    with pytest.raises(BadInputError, match="Frames per second is empty; give it a number"):
        _options(*choices(fps=None))
    with pytest.raises(BadInputError, match="Frame size is empty"):
        _options(*choices(size=None))
    o = _options(*choices(model="cppn", mode="classic", fps=24, size="portrait",
                          types=["coral reef"], seed=3, duration=5, zoom=0.5))
    assert o["fps"] == 24.0 and o["size"] == "portrait" and o["type_names"] == ["coral reef"]
    assert o["transitions"] is None and o["start"] is None and o["duration"] == 5.0
    assert o["zoom"] == 0.5 and o["quality"] == 20
    # a preview keeps the shape, at most PREVIEW_SIZE on its long side
    assert preview_size("portrait") == (72, 128) and preview_size("64x32") == (64, 32)


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="no gradio")
def test_a_port_in_use_is_one_line(capsys):
    from ganclip.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["web", "--port", str(port)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith(f"error: cannot listen on 127.0.0.1 port {port}")
    assert err.endswith("choose another --port or --host")


def test_show_looks_draws_a_stylegan_s_looks_and_refuses_other_models(tmp_path):
    from tiny_stylegan import tiny
    from ganclip.web import CHOICES, Jobs, _Page

    model = tiny("stylegan2", tmp_path / "sg2.safetensors")
    page = _Page(Jobs(max_minutes=30))
    values = dict(model=str(model), mode="reactive", fps=30, size="256x256", fit="extend",
                  types=[], transitions=-1, pulse=0.7, motion=1, smoothing=0.25,
                  sensitivity=1, truncation_lo=0.6, truncation_hi=1.3,
                  classes_from="sections", zoom=1, rotate=1, shake=1, flash=1,
                  looks="seeds:3,17", structure=1, texture=1, noise=1, seed=0, start=0,
                  duration=0, quality=20, preset="veryfast")
    gallery, said = page.show_looks(*[values[name] for name in CHOICES])
    assert [name for _, name in gallery] == ["seed 3", "seed 17"]
    assert gallery[0][0].shape == (32, 32, 3) and said.startswith("looks of")
    gallery, said = page.show_looks(*[dict(values, model="cppn")[name] for name in CHOICES])
    assert gallery is None and "draws image types, not looks" in said
