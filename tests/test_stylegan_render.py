"""Your own model, end to end: StyleGAN files rendered, looks, the style layers, models
add / list / convert, and the bad inputs each getting one line."""

import http.server
import os
import threading
from functools import partial

import numpy as np
import pytest

import ganclip
from conftest import probe_video
from ganclip.cli import main
from ganclip.errors import BadInputError
from ganclip.generators import load_generator, spec
from ganclip.plan import DRIVE, Plan
from media import decode_frames
from tiny_stylegan import FIXTURES, tiny

MARKER = "/tmp/GANCLIP_PICKLE_CODE_RAN"


def frames_of(path) -> np.ndarray:
    return np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(path)])


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and err[-1].startswith("error: ")
    assert not any("Traceback" in line for line in err)
    return err[-1]


@pytest.fixture
def sg2(tmp_path):
    return tiny("stylegan2", tmp_path / "sg2.safetensors")


@pytest.fixture
def sg3(tmp_path):
    return tiny("stylegan3-r", tmp_path / "sg3.safetensors")


def test_spec_is_read_from_the_file_before_the_analysis(sg2):
    s = spec(str(sg2))
    assert (s.dim_z, s.n_classes, s.native_size, s.looks, s.camera) == (24, 0, 32, True, False)
    g = load_generator(str(sg2), size=64)
    assert (g.dim_z, g.n_classes, g.num_ws, g.w_dim, g.size) == (24, 0, 8, 16, (32, 32))


def test_a_stylegan2_render_with_looks_in_w(song, sg2, tmp_path):
    result = ganclip.render(song, output=tmp_path / "v.mp4", model=str(sg2), fps=10, size=48,
                            types=2, plan_out=tmp_path / "plan.npz", quiet=True)
    frames, video_s, _, codecs = probe_video(result.path)
    assert codecs == ("h264", "aac") and frames == 30
    plan = Plan.load(tmp_path / "plan.npz")
    assert plan.z.shape == (30, 24) and plan.classes.shape == (2, 0)
    assert plan.anchors.shape == (2, 8, 16) and plan.drive.shape == (30, len(DRIVE))
    assert all(name.startswith("seed ") for name in plan.type_names)
    # the same plan drawn again gives the same video
    again = ganclip.render(song, output=tmp_path / "again.mp4", model=str(sg2), size=48,
                           plan_in=tmp_path / "plan.npz", quiet=True)
    np.testing.assert_array_equal(frames_of(again.path), frames_of(result.path))


def test_a_plan_for_another_w_space_is_one_line(song, sg2, tmp_path, capsys):
    other = tiny("stylegan2", tmp_path / "wide.safetensors", w_dim=20)
    ganclip.render(song, output=tmp_path / "a.mp4", model=str(sg2), fps=10, size=32,
                   plan_out=tmp_path / "p.npz", quiet=True)
    assert main(["render", str(song), "--model", str(other), "--plan-in",
                 str(tmp_path / "p.npz"), "-o", str(tmp_path / "b.mp4")]) == 2
    assert "make the plan again for this model" in one_error(capsys)
    assert not (tmp_path / "b.mp4").exists()


def test_a_look_anchor_is_what_the_frame_is_drawn_from(sg2):
    g = load_generator(str(sg2), size=32)
    from ganclip.looks import seed_latents

    anchor = g.map(seed_latents([3], 24), np.zeros((1, 0)))
    z = np.zeros((1, 24), np.float32)
    still = g(z, np.zeros((1, 0)), np.ones(1), looks=anchor, drive=None)
    other = g(z, np.zeros((1, 0)), np.ones(1),
              looks=g.map(seed_latents([4], 24), np.zeros((1, 0))), drive=None)
    # the anchor, not z, decides a still frame: z does nothing without a drive
    moved_z = g(np.ones((1, 24), np.float32), np.zeros((1, 0)), np.ones(1), looks=anchor,
                drive=None)
    np.testing.assert_array_equal(still, moved_z)
    assert np.abs(still.astype(int) - other).mean() > 1


def test_each_drive_moves_its_own_layers(sg2):
    from ganclip.generators.stylegan.generator import layer_groups

    g = load_generator(str(sg2), size=32)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1, 24)).astype(np.float32)
    looks = g.map(rng.standard_normal((1, 24)), np.zeros((1, 0)))
    coarse, middle, fine = layer_groups(g.num_ws)
    rest = np.zeros((1, len(DRIVE)), np.float32)
    rest[0, 4] = 1  # all chroma on C
    base = g.styles(z, np.zeros((1, 0)), np.ones(1), looks=looks, drive=rest).numpy()
    np.testing.assert_allclose(base, looks, atol=1e-5)
    for column, group in ((0, coarse), (1, middle), (2, fine)):
        drive = rest.copy()
        drive[0, column] = 1
        w = g.styles(z, np.zeros((1, 0)), np.ones(1), looks=looks, drive=drive).numpy()
        changed = np.abs(w - base).max(axis=(0, 2)) > 1e-4
        assert changed[group].all() and changed.sum() == changed[group].sum(), column
    # the onsets stir StyleGAN2's noise: a frame at a full onset is not the quiet one
    quiet = g(z, np.zeros((1, 0)), np.ones(1), looks=looks, drive=rest)
    loud = rest.copy()
    loud[0, 3] = 1
    assert np.abs(g(z, np.zeros((1, 0)), np.ones(1), looks=looks, drive=loud).astype(int)
                  - quiet).max() > 0


def test_stylegan3_draws_the_camera_through_its_input(song, sg3, tmp_path):
    g = load_generator(str(sg3), size=(64, 32))
    assert spec(str(sg3)).camera and g.size == (64, 32)
    z = np.zeros((2, 24), np.float32)
    looks = g.map(np.random.default_rng(1).standard_normal((2, 24)), np.zeros((2, 0)))
    looks[1] = looks[0]
    camera = np.array([[1, 0, 0, 0, 0], [1, 0.4, 0.1, 0, 0]], np.float32)
    frames = g(z, np.zeros((2, 0)), np.ones(2), looks=looks, drive=None, camera=camera)
    assert frames.shape == (2, 32, 64, 3)
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 0.5  # the turn is drawn
    result = ganclip.render(song, output=tmp_path / "v.mp4", model=str(sg3), fps=10,
                            size="64x32", quiet=True)
    assert probe_video(result.path)[0] == 30


def test_classic_mode_and_the_analysis_figure(song, sg2, tmp_path):
    result = ganclip.render(song, output=tmp_path / "c.mp4", model=str(sg2), fps=10, size=32,
                            mode="classic", types=2, plan_out=tmp_path / "c.npz", quiet=True)
    assert probe_video(result.path)[0] == 30
    plan = Plan.load(tmp_path / "c.npz")
    assert plan.look[2] != plan.look[-1] and plan.anchors.shape == (2, 8, 16)
    frames = frames_of(result.path)  # the two halves of the song, two looks
    assert np.abs(frames[2].astype(int) - frames[-1]).mean() > 1
    from ganclip.analysis import analysis_figure

    path, lines = analysis_figure(song, output=tmp_path / "a.png", model=str(sg2))
    assert path.is_file() and any("seed" in line for line in lines)


def test_looks_by_seed_on_the_command_line(song, sg2, tmp_path, capsys):
    out = tmp_path / "s.mp4"
    assert main(["render", str(song), "--model", str(sg2), "--looks", "seeds:3,17", "--fps",
                 "10", "--size", "32", "-o", str(out), "--plan-out", str(tmp_path / "p.npz"),
                 "-q"]) == 0
    assert Plan.load(tmp_path / "p.npz").type_names == ("seed 3", "seed 17")
    assert main(["render", str(song), "--model", str(sg2), "--looks", "seeds:", "-o",
                 str(tmp_path / "x.mp4")]) == 2
    assert "seeds: needs seed numbers" in one_error(capsys)
    assert main(["render", str(song), "--model", str(sg2), "--looks", "seeds:1,2",
                 "--classes-from", "chroma", "-o", str(tmp_path / "x.mp4")]) == 2
    assert "mixes 12 looks" in one_error(capsys)
    assert main(["render", str(song), "--looks", "auto", "--model", "cppn", "-o",
                 str(tmp_path / "x.mp4")]) == 2
    assert "--looks is for models that draw from a W space" in one_error(capsys)
    assert not (tmp_path / "x.mp4").exists()


def test_a_w_file_of_the_wrong_shape_is_one_line(song, sg2, tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.zeros(17, np.float32))
    (tmp_path / "t.toml").write_text('[[type]]\nname = "sunset"\nw = "w.npy"\n')
    assert main(["render", str(song), "--model", str(sg2), "--types-file",
                 str(tmp_path / "t.toml"), "--type-names", "sunset", "-o",
                 str(tmp_path / "x.mp4")]) == 2
    line = one_error(capsys)
    assert "w.npy" in line and "[16] or [8, 16]" in line
    assert not (tmp_path / "x.mp4").exists()


def test_conditional_models_draw_their_classes(tmp_path):
    path = tiny("stylegan2", tmp_path / "cond.safetensors", c_dim=5)
    g = load_generator(str(path), size=32)
    assert g.n_classes == 5 and spec(str(path)).n_classes == 5
    z = np.zeros((2, 24), np.float32)
    frames = g(z, np.eye(5, dtype=np.float32)[[0, 3]], np.ones(2))
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 0.5


# -- models add, list, convert --------------------------------------------------------------


def test_models_add_a_file_then_render_by_name(song, sg2, tmp_path, capsys):
    assert main(["models", "add", "tiny", str(sg2)]) == 0
    said = capsys.readouterr().out
    assert "added tiny: StyleGAN2 32x32" in said
    assert main(["models"]) == 0
    assert any(line.startswith("tiny") and "StyleGAN2, 32x32" in line
               for line in capsys.readouterr().out.splitlines())
    assert "tiny" in ganclip.generators.available_models()
    result = ganclip.render(song, output=tmp_path / "n.mp4", model="tiny", fps=10, size=32,
                            quiet=True)
    assert result.model == "tiny" and probe_video(result.path)[0] == 30
    assert main(["models", "add", "cppn", str(sg2)]) == 2
    assert "built in" in one_error(capsys)


def test_models_add_downloads_checked(sg2, tmp_path, capsys):
    import hashlib

    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(sg2.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{sg2.name}"
    try:
        digest = hashlib.sha256(sg2.read_bytes()).hexdigest()
        assert main(["models", "add", "fetched", url, "--sha256", digest, "-q"]) == 0
        assert spec("fetched").dim_z == 24
        assert main(["models", "add", "wrong", url, "--sha256", "0" * 64, "-q"]) != 0
        line = one_error(capsys)
        assert "sha256" in line and "wrong" not in ganclip.generators.available_models()
    finally:
        server.shutdown()


def test_models_add_refuses_a_bad_file_and_keeps_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["models", "add", "bad", str(bad)]) != 0
    assert "bad.safetensors" in one_error(capsys)
    from ganclip.usermodels import folder

    assert not any(folder().glob("bad/*")) and "bad" not in ganclip.generators.available_models()


def test_a_safetensors_without_a_config_is_one_line(song, tmp_path, capsys):
    from safetensors.torch import save_file
    import torch

    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    assert main(["render", str(song), "--model", str(tmp_path / "plain.safetensors"), "-o",
                 str(tmp_path / "x.mp4")]) != 0
    assert "plain.safetensors" in one_error(capsys)


def test_convert_refuses_what_it_cannot_write(sg2, tmp_path, capsys):
    assert main(["models", "convert", str(sg2), str(tmp_path / "no" / "x.safetensors")]) == 2
    assert "folder of" in one_error(capsys)
    assert main(["models", "convert", str(sg2), str(tmp_path / "x.safetensors")]) != 0
    assert "snapshot" in one_error(capsys)  # a safetensors is converted already
    assert not (tmp_path / "x.safetensors").exists()


def test_model_file_paths_that_are_not_there(song, tmp_path, capsys):
    assert main(["render", str(song), "--model", str(tmp_path / "nope.pkl")]) == 2
    assert "no such file" in one_error(capsys)
    (tmp_path / "m.h5").write_text("x")
    assert main(["render", str(song), "--model", str(tmp_path / "m.h5")]) == 2
    assert ".onnx" in one_error(capsys)


# -- NVIDIA's snapshots (../shared) ---------------------------------------------------------

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared is not here")


@needs_fixtures
def test_the_malicious_snapshot_runs_nothing_through_any_path(song, tmp_path, capsys):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    evil = FIXTURES / "malicious.pkl"
    load_generator(str(evil), size=32)
    assert main(["render", str(song), "--model", str(evil), "--fps", "10", "--size", "32",
                 "-o", str(tmp_path / "m.mp4"), "-q"]) == 0
    assert main(["models", "convert", str(evil), str(tmp_path / "m.safetensors")]) == 0
    assert main(["models", "add", "evil", str(evil), "-q"]) == 0
    assert not os.path.exists(MARKER)


@needs_fixtures
def test_convert_then_render_without_a_pickle(song, tmp_path, capsys):
    out = tmp_path / "sg3r.safetensors"
    assert main(["models", "convert", str(FIXTURES / "sg3-r-32.pkl"), str(out)]) == 0
    assert "no pickle needed" in capsys.readouterr().out
    z = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    a = load_generator(str(out), size=32)(z, np.zeros((2, 0)), np.full(2, 0.7))
    b = load_generator(str(FIXTURES / "sg3-r-32.pkl"), size=32)(z, np.zeros((2, 0)),
                                                                 np.full(2, 0.7))
    np.testing.assert_array_equal(a, b)


@needs_fixtures
def test_render_an_nvidia_stylegan3_snapshot(song, tmp_path, capsys):
    out = tmp_path / "sg3.mp4"
    assert main(["render", str(song), "--model", str(FIXTURES / "sg3-r-32.pkl"), "--fps",
                 "10", "--size", "32", "-o", str(out), "-q"]) == 0
    assert probe_video(out)[0] == 30


@needs_fixtures
@pytest.mark.parametrize("damage", ["truncated", "tensorflow", "not a snapshot"])
def test_bad_pickles_are_one_line(song, tmp_path, capsys, damage):
    import pickle

    path = tmp_path / "bad.pkl"
    if damage == "truncated":
        path.write_bytes((FIXTURES / "sg2-32.pkl").read_bytes()[:300_000])
    elif damage == "tensorflow":
        path.write_bytes(b"\x80\x03cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    else:
        path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    assert main(["render", str(song), "--model", str(path), "-o", str(tmp_path / "x.mp4")]) != 0
    line = one_error(capsys)
    assert "bad.pkl" in line and {"truncated": "truncated", "tensorflow": "TensorFlow",
                                  "not a snapshot": "not a StyleGAN snapshot"}[damage] in line
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("family", ["stylegan2", "stylegan3-r"])
def test_the_fp16_probe_that_auto_precision_runs_on_cuda(tmp_path, family):
    # auto picks fp16 on CUDA when its probe batch is within MIN_PSNR_DB of fp32; the probe
    # itself runs on a CPU too (slowly), so its fp16 path is drawn here
    from ganclip.generators.common import MIN_PSNR_DB, auto_precision, psnr

    g = load_generator(str(tiny(family, tmp_path / "n.safetensors")), size=32)
    assert g.precision == "fp32" and auto_precision(g._probe, "cpu", model="x") == "fp32"
    assert psnr(g._probe("fp32"), g._probe("fp16")) >= MIN_PSNR_DB
