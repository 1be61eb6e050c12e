"""BigGAN through the whole pipeline: CLI, --weights, auto model choice, resizing."""

import json

import numpy as np
import pytest
import torch

from conftest import probe_video
from ganclip.cli import main
from ganclip.generators import load_generator, resolve_model
from ganclip.generators.biggan import random_state_dict
from tiny_biggan import TINY


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random BigGAN-deep in the published layout."""
    folder = tmp_path_factory.mktemp("tiny-biggan")
    torch.save(random_state_dict(TINY, seed=0), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(TINY.to_dict()))
    return folder


def test_render_with_local_weights_end_to_end(song, tmp_path, checkpoint, capsys):
    out = tmp_path / "big.mp4"
    code = main(["render", str(song), "-o", str(out), "--model", "biggan-deep-128",
                 "--weights", str(checkpoint), "--fps", "8", "--size", "48", "--types", "2",
                 "--precision", "fp32", "-q"])
    assert code == 0, capsys.readouterr().err
    frames, video_s, audio_s, codecs = probe_video(out)
    assert (frames, codecs) == (24, ("h264", "aac")) and abs(audio_s - video_s) <= 1 / 8
    import av

    with av.open(str(out)) as container:  # drawn at 32², resized to --size
        first = next(container.decode(video=0))
    assert (first.width, first.height) == (48, 48)


def test_image_types_and_truncation_reach_biggan(checkpoint):
    gen = load_generator("biggan-deep-128", weights=checkpoint, precision="fp32")
    z = np.zeros((2, 128), np.float32) + 0.5
    y = np.zeros((2, 1000), np.float32)
    y[0, 1], y[1, 985] = 1, 1
    a = gen(z, y, np.array([0.6, 0.6], np.float32))
    assert a.shape == (2, 32, 32, 3)
    assert np.abs(a[0].astype(int) - a[1]).mean() > 1  # class vectors change the picture
    b = gen(z, y, np.array([0.2, 1.0], np.float32))
    assert np.abs(a.astype(int) - b).mean() > 1  # so does a per-frame truncation


def test_auto_uses_cached_biggan_else_cppn(tmp_path, monkeypatch, checkpoint):
    monkeypatch.setenv("GANCLIP_CACHE", str(tmp_path))
    assert resolve_model("auto")[0] == "cppn"
    cached = tmp_path / "biggan-deep-256"
    cached.mkdir()
    for name in ("config.json", "pytorch_model.bin"):
        (cached / name).write_bytes((checkpoint / name).read_bytes())
    name, notice = resolve_model("auto")
    assert name == "biggan-deep-256" and str(cached) in notice
    assert resolve_model("auto", weights=checkpoint)[0] == "biggan-deep-256"


def test_missing_weights_offline_is_one_line_with_the_ways_out(song, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.setenv("GANCLIP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("ganclip.weights.default_sources", lambda name: ())
    code = main(["render", str(song), "-o", str(tmp_path / "x.mp4"), "--model",
                 "biggan-deep-256"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and err[-1].startswith("error: could not download biggan-deep-256")
    assert "--weights PATH" in err[-1] and "--model cppn" in err[-1]
    assert not (tmp_path / "x.mp4").exists()


def test_bad_weights_path_is_one_line(song, tmp_path, capsys):
    code = main(["render", str(song), "-o", str(tmp_path / "x.mp4"), "--model",
                 "biggan-deep-128", "--weights", str(tmp_path / "nothing")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "nothing" in err[0] and err[0].startswith("error:")


def test_models_lists_cache_state(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANCLIP_CACHE", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "cppn" in out and "biggan-deep-512" in out and "not cached" in out
    assert str(tmp_path) in out


def test_the_first_map_extends_by_mirroring_outward():
    from ganclip.generators.biggan import extend_grid, grid_for
    from ganclip.generators.biggan.model import _mirrored

    assert _mirrored(7).tolist() == [1, 0, 1, 2, 3, 2, 1]  # the trained 0-3 in the middle
    assert _mirrored(4).tolist() == [0, 1, 2, 3]
    assert grid_for((1920, 1080)) == (4, 7) and grid_for((1080, 1920)) == (7, 4)
    assert grid_for((1080, 1350)) == (5, 4) and grid_for((512, 512)) == (4, 4)
    assert grid_for((4096, 16)) == (4, 16)  # at most 4:1; wider frames are cropped
    x = torch.arange(16.0).view(1, 1, 4, 4)
    wide = extend_grid(x, (4, 7))
    assert wide.shape == (1, 1, 4, 7) and torch.equal(wide[..., 1:5], x)


def test_an_extended_grid_draws_the_same_by_the_fast_path_and_the_module(checkpoint):
    gen = load_generator("biggan-deep-128", weights=checkpoint, precision="fp32",
                         size=(64, 36), fit="extend")
    assert gen.size == (56, 32)  # 4×7 first map: 32 rows, 56 columns
    z = np.random.default_rng(0).uniform(-1, 1, (2, 128)).astype(np.float32)
    y = np.zeros((2, 1000), np.float32)
    y[:, 985] = 1
    t = np.array([0.6, 0.6], np.float32)
    fast = gen(z, y, t)
    assert fast.shape == (2, 32, 56, 3)
    with torch.no_grad():
        reference = gen.model(torch.as_tensor(z * t[:, None]), torch.as_tensor(y), t,
                              grid=(4, 7))
    from ganclip.generators.biggan import to_uint8

    assert np.abs(to_uint8(reference).astype(int) - fast).max() <= 1
    square = load_generator("biggan-deep-128", weights=checkpoint, precision="fp32",
                            size=(64, 36), fit="crop")
    assert square.size == (32, 32)


@pytest.mark.parametrize("fit", ["extend", "crop"])
def test_biggan_renders_a_wide_frame_either_way(fit, song, tmp_path, checkpoint):
    import ganclip

    out = tmp_path / f"{fit}.mp4"
    ganclip.render(song, output=out, model="biggan-deep-128", weights=checkpoint, fit=fit,
                   size="64x36", fps=8, precision="fp32", quiet=True)
    frames, video_s, audio_s, _ = probe_video(out)
    from conftest import video_shape

    assert video_shape(out) == (64, 36) and frames == 24 and abs(audio_s - video_s) <= 1 / 8
